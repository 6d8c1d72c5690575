//! Stream-socket transports: a Unix socket (the emulated dongle in development and tests)
//! and TCP (the LAN key server, sessions of paired hosts only).
//!
//! Every frame is read header first, and `preauth::verdict` decides from the header whether
//! its payload is read at all (docs/PROTOCOL.md, "Before a session"). On TCP a connection
//! also has a handshake deadline and counts against per-peer slots (`preauth::Slots`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vbzkey_protocol::stream::{FrameError, read_header, write_frame};
use vbzkey_protocol::wire::{self, DongleError, Response};
use zeroize::Zeroizing;

use super::preauth::{self, REFUSAL_PREFIX, Slot, Slots, Stage, TcpLimits, Verdict};
use super::{Connection, Reply, Shared};
use crate::dongle::Platform;
use crate::storage::Storage;

/// Unix-socket connections served at once; more are refused (closed) at accept. (TCP counts
/// its connections per peer: `preauth::TcpLimits`.)
pub const MAX_CONNECTIONS: usize = 8;
/// A Unix-socket connection silent this long is closed (a bridge keeps its own pool and
/// reconnects).
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
    /// A process still answers on the socket path: replacing it would cut that dongle off.
    #[error(
        "another process is serving on {0} (it accepted a connection); stop it first or \
         choose another socket path"
    )]
    InUse(String),
    /// Something other than a socket is at the path: it is not ours to delete.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(String),
}

/// A stream socket whose reads and writes can time out.
pub trait Timed: Read + Write {
    /// `set_read_timeout` of the socket.
    fn read_timeout(&self, t: Duration) -> io::Result<()>;
    /// `set_write_timeout` of the socket.
    fn write_timeout(&self, t: Duration) -> io::Result<()>;
}

impl Timed for TcpStream {
    fn read_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn write_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(t))
    }
}

impl Timed for UnixStream {
    fn read_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn write_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(t))
    }
}

/// How long each read and write of a connection may wait.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Until when a connection without a session may stay (TCP only).
    handshake_by: Option<Instant>,
    /// How long a connection with a session (or a local one) may be silent.
    idle: Duration,
}

/// A connection's socket with the time it may wait on each read or write: the idle time, or,
/// before its session, what is left of its handshake deadline (so a peer that trickles bytes
/// cannot stretch it).
struct Paced<'a, T: Timed> {
    stream: &'a mut T,
    until: Option<Instant>,
    idle: Duration,
}

impl<T: Timed> Paced<'_, T> {
    fn wait(&self) -> io::Result<Duration> {
        match self.until {
            None => Ok(self.idle),
            Some(until) => until
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "handshake deadline")),
        }
    }
}

impl<T: Timed> Read for Paced<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read_timeout(self.wait()?)?;
        self.stream.read(buf)
    }
}

impl<T: Timed> Write for Paced<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write_timeout(self.wait()?)?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Read and drop a payload of `len` bytes, keeping its first `REFUSAL_PREFIX` bytes: a
/// refused frame costs no buffer of its announced size.
fn skip(r: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut prefix = vec![0u8; len.min(REFUSAL_PREFIX)];
    r.read_exact(&mut prefix)?;
    let rest = (len - prefix.len()) as u64;
    if io::copy(&mut r.by_ref().take(rest), &mut io::sink())? < rest {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(prefix)
}

/// Serve one connection until it closes, errs, idles out or misses its handshake deadline;
/// then its admin window closes. On TCP, `slot` moves to a session slot when a session opens
/// (and the connection closes if none is free).
fn serve_stream<S: Storage, P: Platform, T: Timed>(
    mut stream: T,
    shared: &Shared<S, P>,
    mut conn: Connection,
    pace: Pace,
    mut slot: Option<Slot>,
) {
    serve_frames(&mut stream, shared, &mut conn, pace, &mut slot);
    shared.disconnect(&conn);
}

fn serve_frames<S: Storage, P: Platform, T: Timed>(
    stream: &mut T,
    shared: &Shared<S, P>,
    conn: &mut Connection,
    pace: Pace,
    slot: &mut Option<Slot>,
) {
    loop {
        let until = if conn.session.is_some() { None } else { pace.handshake_by };
        let mut s = Paced { stream: &mut *stream, until, idle: pace.idle };
        let (kind, len) = match read_header(&mut s) {
            Ok(Some(header)) => header,
            Ok(None) => return,
            Err(FrameError::Wire(e)) => {
                // The stream is out of sync: answer once, then hang up.
                tracing::warn!("{}: {e}; closing the connection", conn.peer.label);
                let _ =
                    write_frame(&mut s, &wire::encode(0, &Response::Error(DongleError::Malformed)));
                return;
            }
            Err(FrameError::Io(e)) => {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!("{}: {e}", conn.peer.label);
                }
                return;
            }
        };
        let reply = match preauth::verdict(shared.standing(conn), kind, len) {
            Verdict::Read => {
                let mut payload = Zeroizing::new(vec![0u8; len]);
                if s.read_exact(&mut payload).is_err() {
                    return;
                }
                let mut interim_failed = false;
                let reply = shared.on_frame(conn, kind, &payload, &mut |frame| {
                    interim_failed |= write_frame(&mut s, frame).is_err();
                });
                if interim_failed {
                    return;
                }
                reply
            }
            Verdict::Refuse => match skip(&mut s, len) {
                Ok(prefix) => Reply::Send(preauth::refusal(&prefix)),
                Err(_) => return,
            },
            Verdict::Close => {
                tracing::debug!("{}: a {kind:?} frame of {len} bytes; closing", conn.peer.label);
                return;
            }
        };
        // A session just opened: it needs a session slot before its handshake answer goes out.
        if conn.session.is_some()
            && let Some(slot) = slot.as_mut()
            && slot.stage() == Stage::Unauthenticated
            && let Err(full) = slot.promote()
        {
            tracing::warn!("{}: {full}; closing its new session", conn.peer.label);
            return;
        }
        match reply {
            Reply::Send(answer) => {
                if write_frame(&mut s, &answer).is_err() {
                    return;
                }
            }
            Reply::SendAndClose(answer) => {
                let _ = write_frame(&mut s, &answer);
                return;
            }
            Reply::Close => return,
        }
    }
}

/// Run `serve` on a thread per connection, at most `MAX_CONNECTIONS` at once.
fn spawn_bounded(active: &Arc<AtomicUsize>, serve: impl FnOnce() + Send + 'static) -> bool {
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    let mine = Arc::clone(active);
    let spawned = std::thread::Builder::new().spawn(move || {
        serve();
        mine.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        active.fetch_sub(1, Ordering::SeqCst);
    }
    spawned.is_ok()
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
    clear_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    tracing::info!("serving on unix:{}", path.display());
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let conn = shared.connect("unix", false);
        let shared = Arc::clone(&shared);
        let pace = Pace { handshake_by: None, idle: IDLE_TIMEOUT };
        if !spawn_bounded(&active, move || serve_stream(stream, &shared, conn, pace, None)) {
            tracing::warn!("too many connections on the Unix socket; refusing one");
        }
    }
    Ok(())
}

/// Make way for the listener at `path`: a socket file left by a process that is gone is
/// removed; a socket some process still accepts on, or a file that is not a socket, is
/// refused (a second firmware would otherwise silently take over the first one's socket).
fn clear_stale_socket(path: &Path) -> Result<(), ListenError> {
    use std::os::unix::fs::FileTypeExt;
    let what = || path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(ListenError::Bind { what: what(), source }),
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket(what()));
    }
    match UnixStream::connect(path) {
        Ok(_) => return Err(ListenError::InUse(what())),
        // Nobody listens: the file is what a killed process left behind.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
        // Anything else (no permission…) proves nothing either way: leave the file alone.
        Err(source) => return Err(ListenError::Bind { what: what(), source }),
    }
    tracing::info!("removing the stale socket {} (nothing answers on it)", what());
    std::fs::remove_file(path).map_err(|source| ListenError::Bind { what: what(), source })
}

/// Serve on TCP at `addr` until `stop` is set: the LAN key server. Every TCP connection must
/// open an encrypted session as a paired host before anything but `Hello` and `DeviceKey` is
/// answered, within the default [`TcpLimits`].
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
    serve_tcp_on(listener, shared, stop, TcpLimits::default());
    Ok(())
}

/// Serve connections accepted on `listener` under `limits` until `stop` is set (checked at
/// each accept).
pub fn serve_tcp_on<S, P>(
    listener: TcpListener,
    shared: Arc<Shared<S, P>>,
    stop: Arc<AtomicBool>,
    limits: TcpLimits,
) where
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    let slots = Slots::new(limits);
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let accepted = Instant::now();
        let Ok(stream) = stream else { continue };
        let Ok(peer) = stream.peer_addr() else { continue };
        // Refused here, the connection is closed before anything of it is read.
        let slot = match slots.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                tracing::warn!("refusing a connection from {peer}: {full}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = shared.connect(format!("tcp:{peer}"), true);
        let pace = Pace {
            handshake_by: Some(accepted + limits.handshake_deadline),
            idle: limits.session_idle,
        };
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .spawn(move || serve_stream(stream, &shared, conn, pace, Some(slot)));
        if let Err(e) = spawned {
            tracing::warn!("cannot serve a connection from {peer}: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
