//! Stream-socket transports: a Unix socket (the emulated dongle in development and tests)
//! and TCP (the LAN key server, loopback only until host sessions are authenticated).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use vbzkey_protocol::stream::{FrameError, read_frame_kind, write_frame};
use vbzkey_protocol::wire::{self, DongleError, Response};

use super::{Connection, Reply, Shared};
use crate::dongle::Platform;
use crate::storage::Storage;

/// Connections served at once; more are refused (closed) at accept.
pub const MAX_CONNECTIONS: usize = 8;
/// A connection silent this long is closed (a bridge keeps its own pool and reconnects).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding failed.
    #[error("cannot listen on {what}: {source}")]
    Bind {
        /// Address or path.
        what: String,
        /// Why.
        source: io::Error,
    },
}

/// Serve one connection until it closes, errs or idles out; then its admin window closes.
pub fn serve_stream<S: Storage, P: Platform>(
    mut stream: impl Read + Write,
    shared: &Shared<S, P>,
    mut conn: Connection,
) {
    serve_frames(&mut stream, shared, &mut conn);
    shared.disconnect(&conn);
}

fn serve_frames<S: Storage, P: Platform>(
    stream: &mut (impl Read + Write),
    shared: &Shared<S, P>,
    conn: &mut Connection,
) {
    loop {
        match read_frame_kind(stream) {
            Ok(None) => return,
            Ok(Some((kind, payload))) => {
                let mut interim_failed = false;
                let reply = shared.on_frame(conn, kind, &payload, &mut |frame| {
                    interim_failed |= write_frame(stream, frame).is_err();
                });
                match reply {
                    Reply::Send(answer) if !interim_failed => {
                        if write_frame(stream, &answer).is_err() {
                            return;
                        }
                    }
                    Reply::SendAndClose(answer) => {
                        let _ = write_frame(stream, &answer);
                        return;
                    }
                    Reply::Send(_) | Reply::Close => return,
                }
            }
            Err(FrameError::Wire(e)) => {
                // The stream is out of sync: answer once, then hang up.
                tracing::warn!("{e}; closing the connection");
                let _ =
                    write_frame(stream, &wire::encode(0, &Response::Error(DongleError::Malformed)));
                return;
            }
            Err(FrameError::Io(e)) => {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!("{e}");
                }
                return;
            }
        }
    }
}

/// Run `serve` on a thread per connection, at most `MAX_CONNECTIONS` at once.
fn spawn_bounded(active: &Arc<AtomicUsize>, serve: impl FnOnce() + Send + 'static) -> bool {
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    let active = Arc::clone(active);
    std::thread::spawn(move || {
        serve();
        active.fetch_sub(1, Ordering::SeqCst);
    });
    true
}

/// Serve on a Unix socket at `path` (created 0600; a stale socket file is replaced) until
/// `stop` is set.
pub fn serve_unix<S, P>(
    path: &Path,
    shared: Arc<Shared<S, P>>,
    stop: Arc<AtomicBool>,
) -> Result<(), ListenError>
where
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    let bind_err = |source| ListenError::Bind { what: path.display().to_string(), source };
    if path.exists() {
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    tracing::info!("serving on unix:{}", path.display());
    accept(listener.incoming(), shared, stop, |shared, stream: &UnixStream| {
        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
        shared.connect("unix", false)
    });
    Ok(())
}

/// Serve on TCP at `addr` until `stop` is set: the LAN key server. Every TCP connection must
/// open an encrypted session as a paired host before anything but `Hello` is answered.
pub fn serve_tcp<S, P>(
    addr: SocketAddr,
    shared: Arc<Shared<S, P>>,
    stop: Arc<AtomicBool>,
) -> Result<(), ListenError>
where
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .map_err(|source| ListenError::Bind { what: addr.to_string(), source })?;
    tracing::info!("serving on tcp:{}", listener.local_addr().map_or(addr, |a| a));
    accept(listener.incoming(), shared, stop, |shared, stream: &TcpStream| {
        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
        let _ = stream.set_nodelay(true);
        let host = stream.peer_addr().map_or_else(|_| "tcp".to_string(), |a| format!("tcp:{a}"));
        shared.connect(host, true)
    });
    Ok(())
}

/// Accept connections until `stop` is set, each served on its own thread (at most
/// `MAX_CONNECTIONS` at once); `setup` prepares the stream and says what kind of connection it is.
fn accept<T, S, P>(
    incoming: impl Iterator<Item = io::Result<T>>,
    shared: Arc<Shared<S, P>>,
    stop: Arc<AtomicBool>,
    setup: impl Fn(&Shared<S, P>, &T) -> Connection,
) where
    T: Read + Write + Send + 'static,
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    for conn in incoming {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let connection = setup(&shared, &stream);
        let shared = Arc::clone(&shared);
        if !spawn_bounded(&active, move || serve_stream(stream, &shared, connection)) {
            tracing::warn!("too many connections; refusing one");
        }
    }
}
