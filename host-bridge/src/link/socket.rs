//! A link over a stream socket: the emulated dongle (Unix socket) or the LAN key server (TCP).

use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use vbzkey_protocol::stream::{self, CallError};
use vbzkey_protocol::wire::{Request, Response};

use super::{Connector, Link, LinkError};

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

struct SocketLink<S> {
    stream: S,
    what: String,
    next_id: u32,
}

impl<S: std::io::Read + std::io::Write + Send> Link for SocketLink<S> {
    fn call(&mut self, req: &Request) -> Result<Response, LinkError> {
        self.next_id = self.next_id.wrapping_add(1);
        stream::call(&mut self.stream, self.next_id, req).map_err(|e| match e {
            CallError::Frame(e) => LinkError::Io(e.to_string()),
            CallError::Closed => LinkError::Io("the dongle closed the connection".into()),
            e => LinkError::Protocol(e.to_string()),
        })
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// Connects to a socket dongle.
#[derive(Debug, Clone)]
pub struct SocketConnector(pub SocketTarget);

impl Connector for SocketConnector {
    fn connect(&self) -> Result<Box<dyn Link>, LinkError> {
        let not_found =
            |what: String| move |e: std::io::Error| LinkError::NotFound(format!("{what}: {e}"));
        match &self.0 {
            SocketTarget::Unix(path) => {
                let what = format!("unix:{}", path.display());
                let stream = UnixStream::connect(path).map_err(not_found(what.clone()))?;
                stream.set_read_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                Ok(Box::new(SocketLink { stream, what, next_id: 0 }))
            }
            SocketTarget::Tcp(addr) => {
                let what = format!("tcp:{addr}");
                let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5))
                    .map_err(not_found(what.clone()))?;
                stream.set_read_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT)).map_err(not_found(what.clone()))?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(SocketLink { stream, what, next_id: 0 }))
            }
        }
    }
}
