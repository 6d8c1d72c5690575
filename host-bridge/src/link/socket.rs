//! A link over a stream socket: the emulated dongle (Unix socket) or the LAN key server (TCP).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vbzkey_protocol::stream::Frame;
use vbzkey_protocol::stream::{FrameError, read_frame_kind, write_frame};

use super::{Connector, FrameIo, FramedLink, Link, LinkError, SessionKeys};

/// How long one exchange may take: a batch may wait up to 15 s for the dongle's button.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the socket is.
#[derive(Debug, Clone)]
pub enum SocketTarget {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

struct SocketIo<S> {
    stream: S,
    what: String,
}

impl<S: Read + Write + Send> FrameIo for SocketIo<S> {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        write_frame(&mut self.stream, frame).map_err(|e| LinkError::Io(e.to_string()))
    }

    fn recv(&mut self) -> Result<Frame, LinkError> {
        match read_frame_kind(&mut self.stream) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(LinkError::Io("the dongle closed the connection".into())),
            Err(FrameError::Io(e)) => Err(LinkError::Io(e.to_string())),
            Err(FrameError::Wire(e)) => Err(LinkError::Protocol(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// Connects to a socket dongle, in a session when host keys are given.
pub struct SocketConnector {
    target: SocketTarget,
    keys: Option<Arc<SessionKeys>>,
}

impl SocketConnector {
    /// A connector to `target`.
    pub fn new(target: SocketTarget, keys: Option<Arc<SessionKeys>>) -> Self {
        SocketConnector { target, keys }
    }
}

impl Connector for SocketConnector {
    fn connect(&self) -> Result<Box<dyn Link>, LinkError> {
        let not_found =
            |what: String| move |e: std::io::Error| LinkError::NotFound(format!("{what}: {e}"));
        let io: Box<dyn FrameIo> = match &self.target {
            SocketTarget::Unix(path) => {
                let what = format!("unix:{}", path.display());
                let stream = UnixStream::connect(path).map_err(not_found(what.clone()))?;
                stream.set_read_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                Box::new(SocketIo { stream, what })
            }
            SocketTarget::Tcp(addr) => {
                let what = format!("tcp:{addr}");
                let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5))
                    .map_err(not_found(what.clone()))?;
                stream.set_read_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                let _ = stream.set_nodelay(true);
                Box::new(SocketIo { stream, what })
            }
        };
        Ok(Box::new(FramedLink::open(io, self.keys.as_deref())?))
    }
}
