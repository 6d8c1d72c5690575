//! Links over stream sockets: the emulated dongle (Unix socket) and the LAN key server (TCP).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use vbzkey_protocol::endpoint::Endpoint;
use vbzkey_protocol::stream::{Frame, FrameError, read_frame_kind, write_frame};

use crate::connector::Connector;
use crate::error::{LinkError, TransportError};
use crate::link::{FrameIo, Link};
use crate::session::SessionKeys;

/// How long one exchange may take: a batch may wait up to 15 s for the dongle's button.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TCP connection may take to open: a LAN peer answers in milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames over a connected stream socket.
pub struct SocketIo<S> {
    stream: S,
    what: String,
}

impl<S: Read + Write + Send> SocketIo<S> {
    /// Frames over a connected stream (for example to a firmware under test); `what` names it.
    pub fn new(stream: S, what: impl Into<String>) -> Self {
        SocketIo { stream, what: what.into() }
    }
}

impl<S: Read + Write + Send> FrameIo for SocketIo<S> {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        Ok(write_frame(&mut self.stream, frame)?)
    }

    fn recv(&mut self) -> Result<Frame, TransportError> {
        match read_frame_kind(&mut self.stream) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(TransportError::Closed),
            Err(FrameError::Io(e)) => Err(TransportError::Io(e)),
            Err(FrameError::Wire(e)) => Err(TransportError::Frame(e)),
        }
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// Connects to a socket dongle, in a session when host keys are given.
pub struct SocketConnector {
    endpoint: Endpoint,
    keys: Option<Arc<SessionKeys>>,
}

impl SocketConnector {
    /// A connector to `endpoint`.
    pub fn new(endpoint: Endpoint, keys: Option<Arc<SessionKeys>>) -> Self {
        SocketConnector { endpoint, keys }
    }

    fn io(&self) -> Result<Box<dyn FrameIo>, std::io::Error> {
        let what = self.endpoint.to_string();
        Ok(match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_read_timeout(Some(CALL_TIMEOUT))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT))?;
                Box::new(SocketIo { stream, what })
            }
            Endpoint::Tcp { host, port } => {
                let mut last = std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the host name does not resolve to any address",
                );
                let mut connected = None;
                for addr in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let stream = connected.ok_or(last)?;
                stream.set_read_timeout(Some(CALL_TIMEOUT))?;
                stream.set_write_timeout(Some(CALL_TIMEOUT))?;
                let _ = stream.set_nodelay(true);
                Box::new(SocketIo { stream, what })
            }
        })
    }
}

impl Connector for SocketConnector {
    fn connect(&self) -> Result<Link, LinkError> {
        let io = self
            .io()
            .map_err(|source| LinkError::Unreachable { addr: self.endpoint.clone(), source })?;
        Link::open(io, self.keys.as_deref())
    }
}
