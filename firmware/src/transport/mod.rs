//! Transports: thin loops that move frames between a byte channel and the [`Dongle`].
//!
//! [`Dongle`]: crate::dongle::Dongle

pub mod ffs;
pub mod socket;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vbzkey_protocol::KeyId;
use vbzkey_protocol::session::{Responder, SessionError, Transport};
use vbzkey_protocol::wire::{self, DongleError, FrameKind, Request, Response};

use crate::dongle::{Dongle, Now, Platform};
use crate::storage::Storage;

/// Session randomness comes from the OS, like the transports themselves.
fn os_fill(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}

/// One connection's session state: plain until a paired host completes a handshake.
pub struct Connection {
    label: String,
    require_session: bool,
    session: Option<(Transport, [u8; 32])>,
}

impl Connection {
    /// A connection from `label` (transport name); `require_session` for TCP, where plain
    /// requests (other than `Hello` and `DeviceKey`) are never served.
    pub fn new(label: impl Into<String>, require_session: bool) -> Self {
        Connection { label: label.into(), require_session, session: None }
    }
}

/// What to send back for a frame.
pub enum Reply {
    /// Send this frame and keep going.
    Send(Vec<u8>),
    /// Send this frame, then close the connection.
    SendAndClose(Vec<u8>),
    /// Close without a word (a failed handshake or session message).
    Close,
}

/// The real clock: monotonic since start, plus wall-clock seconds for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { start: Instant::now() }
    }
}

impl Clock {
    /// The time now.
    pub fn now(&self) -> Now {
        Now {
            mono_ms: self.start.elapsed().as_millis() as u64,
            unix_secs: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

/// A dongle shared by the connections of a transport (one request at a time).
pub struct Shared<S: Storage, P: Platform> {
    dongle: Mutex<Dongle<S, P>>,
    clock: Clock,
}

impl<S: Storage, P: Platform> Shared<S, P> {
    /// Share `dongle`.
    pub fn new(dongle: Dongle<S, P>, clock: Clock) -> Arc<Self> {
        Arc::new(Shared { dongle: Mutex::new(dongle), clock })
    }

    fn lock(&self) -> MutexGuard<'_, Dongle<S, P>> {
        // A panic while holding the lock cannot leave the dongle half-updated in a way that
        // matters: every state change is written to storage before it is applied.
        self.dongle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Handle one frame payload; returns the full answer frame.
    pub fn handle(&self, payload: &[u8], host: &str) -> Vec<u8> {
        let now = self.clock.now();
        self.lock().handle_frame(payload, now, host)
    }

    /// Handle one frame of a connection: the session gate in front of the dongle.
    pub fn on_frame(&self, conn: &mut Connection, kind: FrameKind, payload: &[u8]) -> Reply {
        match kind {
            FrameKind::Plain => {
                if conn.session.is_some() {
                    return Reply::Close;
                }
                let required = conn.require_session || self.lock().pairing_required();
                if required {
                    match wire::decode::<Request>(payload) {
                        Ok((_, Request::Hello | Request::DeviceKey)) => {}
                        Ok((id, _)) => {
                            return Reply::Send(wire::encode(
                                id,
                                &Response::Error(DongleError::PairingRequired),
                            ));
                        }
                        Err(_) => {}
                    }
                }
                Reply::Send(self.handle(payload, &conn.label))
            }
            FrameKind::Handshake => {
                if conn.session.is_some() {
                    return Reply::Close;
                }
                let dongle = self.lock();
                let Some(secret) = dongle.device_secret() else {
                    return Reply::SendAndClose(wire::encode(
                        0,
                        &Response::Error(DongleError::Storage),
                    ));
                };
                let responder = match Responder::read(secret, payload, os_fill) {
                    Ok(r) => r,
                    Err(e @ SessionError::UnsupportedVersion { .. }) => {
                        tracing::warn!("refused a session from {}: {e}", conn.label);
                        return Reply::SendAndClose(wire::encode(
                            0,
                            &Response::Error(DongleError::UnsupportedVersion),
                        ));
                    }
                    Err(_) => return Reply::Close,
                };
                match responder.host_key() {
                    Some(host) if dongle.is_paired(&host) => match responder.accept() {
                        Ok((msg, transport)) => {
                            conn.label = format!("host:{}", KeyId::of(&host));
                            conn.session = Some((transport, host));
                            tracing::info!("session opened with paired {}", conn.label);
                            Reply::Send(wire::frame(FrameKind::Handshake, &msg))
                        }
                        Err(_) => Reply::Close,
                    },
                    other => {
                        let who = other.map_or_else(|| "?".into(), |k| KeyId::of(&k).to_string());
                        tracing::warn!("refused a session from unpaired host {who}");
                        Reply::SendAndClose(wire::encode(
                            0,
                            &Response::Error(DongleError::NotPaired),
                        ))
                    }
                }
            }
            FrameKind::Sealed => {
                let Some((transport, host)) = conn.session.as_mut() else { return Reply::Close };
                // An unpaired host loses its open session at its next message.
                if !self.lock().is_paired(host) {
                    return Reply::Close;
                }
                // A frame whose chunks do not close exactly, or whose payload is not exactly
                // one request, ends the session: nothing of it runs (docs/PROTOCOL.md).
                let plain = match transport.open(payload) {
                    Ok(plain) => plain,
                    Err(e) => {
                        tracing::warn!("closing the session of {}: {e}", conn.label);
                        return Reply::Close;
                    }
                };
                if let Err((_, e)) = wire::decode::<Request>(&plain) {
                    tracing::warn!("closing the session of {}: sealed request: {e}", conn.label);
                    return Reply::Close;
                }
                let answer = self.handle(&plain, &conn.label);
                match conn.session.as_mut().map(|(t, _)| t.seal(&answer[wire::FRAME_HEADER_LEN..]))
                {
                    Some(Ok(sealed)) => Reply::Send(wire::frame(FrameKind::Sealed, &sealed)),
                    _ => Reply::Close,
                }
            }
        }
    }

    /// Let the idle lock run.
    pub fn tick(&self) {
        let now = self.clock.now();
        self.lock().tick(now);
    }
}

/// Call `tick` every second until `stop` is set, so keys are forgotten on time even when no
/// request arrives.
pub fn spawn_ticker<S, P>(
    shared: Arc<Shared<S, P>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()>
where
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            shared.tick();
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    })
}
