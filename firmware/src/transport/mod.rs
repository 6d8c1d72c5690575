//! Transports: thin loops that move frames between a byte channel and the [`Dongle`].
//!
//! [`Dongle`]: crate::dongle::Dongle

pub mod ffs;
pub mod preauth;
pub mod socket;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use vbzkey_protocol::KeyId;
use vbzkey_protocol::session::{Responder, SessionError, Transport};
use vbzkey_protocol::wire::{self, DongleError, FrameKind, Request, Response};

use crate::dongle::{Dongle, FrameOutcome, Now, Peer, Platform, Press};
use crate::platform::PresenceGate;
use crate::storage::Storage;

/// Session randomness comes from the OS, like the transports themselves.
fn os_fill(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}

/// One connection's state: who it is to the core, and its session once a host completes a
/// handshake.
pub struct Connection {
    peer: Peer,
    session: Option<Transport>,
}

impl Connection {
    /// Whether a host completed a handshake on this connection.
    pub fn in_session(&self) -> bool {
        self.session.is_some()
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

/// A dongle shared by the connections of a transport (one request at a time), and the one
/// button they wait on.
pub struct Shared<S: Storage, P: Platform> {
    dongle: Mutex<Dongle<S, P>>,
    clock: Clock,
    presence: PresenceGate,
    next_peer: AtomicU64,
}

impl<S: Storage, P: Platform> Shared<S, P> {
    /// Share `dongle`; requests that need the button wait on `presence`.
    pub fn new(dongle: Dongle<S, P>, clock: Clock, presence: PresenceGate) -> Arc<Self> {
        Arc::new(Shared {
            dongle: Mutex::new(dongle),
            clock,
            presence,
            next_peer: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Dongle<S, P>> {
        // A panic while holding the lock cannot leave the dongle half-updated in a way that
        // matters: every state change is written to storage before it is applied.
        self.dongle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn peer(&self, label: String, session: Option<[u8; 32]>, network: bool) -> Peer {
        Peer { id: self.next_peer.fetch_add(1, Ordering::Relaxed), label, session, network }
    }

    /// A new connection from `label` (transport name); `network` for TCP, where only paired
    /// hosts' sessions are served.
    pub fn connect(&self, label: impl Into<String>, network: bool) -> Connection {
        Connection { peer: self.peer(label.into(), None, network), session: None }
    }

    /// The connection ended: its admin window closes.
    pub fn disconnect(&self, conn: &Connection) {
        let now = self.clock.now();
        self.lock().disconnect(conn.peer.id, now);
    }

    /// Handle one request payload of `peer`: if the policy asks for the button, `asking` is
    /// given the interim `PresenceNeeded` frame payload to send, the press is awaited outside
    /// the core's lock, and the request is handled again with its outcome. Returns the
    /// answer's payload (no frame header).
    fn run(&self, payload: &[u8], peer: &Peer, asking: impl FnOnce(Vec<u8>)) -> Vec<u8> {
        let first = {
            let now = self.clock.now();
            self.lock().handle_frame(payload, now, peer, Press::NotAsked)
        };
        let request_id = match first {
            FrameOutcome::Answer(frame) => return strip_header(frame),
            FrameOutcome::NeedsPresence { request_id } => request_id,
        };
        let timeout_secs = u16::try_from(self.presence.timeout().as_secs()).unwrap_or(u16::MAX);
        let waiting = Response::PresenceNeeded { timeout_secs };
        let pressed = self.presence.wait(|| asking(wire::encode_payload(request_id, &waiting)));
        let press = if pressed { Press::Pressed } else { Press::NotPressed };
        let now = self.clock.now();
        match self.lock().handle_frame(payload, now, peer, press) {
            FrameOutcome::Answer(frame) => strip_header(frame),
            FrameOutcome::NeedsPresence { request_id } => {
                wire::encode_payload(request_id, &Response::Error(DongleError::NotConfirmed))
            }
        }
    }

    /// Handle one frame of a connection. `send` writes an interim frame (the request for a
    /// press) before the final answer comes back as the [`Reply`].
    pub fn on_frame(
        &self,
        conn: &mut Connection,
        kind: FrameKind,
        payload: &[u8],
        send: &mut dyn FnMut(&[u8]),
    ) -> Reply {
        match kind {
            FrameKind::Plain => {
                if conn.session.is_some() {
                    return Reply::Close;
                }
                let answer =
                    self.run(payload, &conn.peer, |p| send(&wire::frame(FrameKind::Plain, &p)));
                Reply::Send(wire::frame(FrameKind::Plain, &answer))
            }
            FrameKind::Handshake => {
                if conn.session.is_some() {
                    return Reply::Close;
                }
                let dongle = self.lock();
                let Some(secret) = dongle.device_secret() else {
                    return Reply::SendAndClose(wire::encode(
                        0,
                        &Response::Error(dongle.no_device_key()),
                    ));
                };
                let responder = match Responder::read(secret, payload, os_fill) {
                    Ok(r) => r,
                    Err(e @ SessionError::UnsupportedVersion { .. }) => {
                        tracing::warn!("refused a session from {}: {e}", conn.peer.label);
                        return Reply::SendAndClose(wire::encode(
                            0,
                            &Response::Error(DongleError::UnsupportedVersion),
                        ));
                    }
                    Err(_) => return Reply::Close,
                };
                match responder.host_key() {
                    Some(host) if dongle.accepts_session(&host, conn.peer.network) => {
                        match responder.accept() {
                            Ok((msg, transport)) => {
                                drop(dongle);
                                // A session is a new peer: an admin window of the plain link
                                // (or an earlier session on USB) does not carry over.
                                self.disconnect(conn);
                                let label = format!("host:{}", KeyId::of(&host));
                                tracing::info!("session opened with {label}");
                                conn.peer = self.peer(label, Some(host), conn.peer.network);
                                conn.session = Some(transport);
                                Reply::Send(wire::frame(FrameKind::Handshake, &msg))
                            }
                            Err(_) => Reply::Close,
                        }
                    }
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
                let (Some(transport), Some(host)) = (conn.session.as_mut(), conn.peer.session)
                else {
                    return Reply::Close;
                };
                // An unpaired host loses its open session at its next message.
                if !self.lock().accepts_session(&host, conn.peer.network) {
                    return Reply::Close;
                }
                // A frame whose chunks do not close exactly, or whose payload is not exactly
                // one request, ends the session: nothing of it runs (docs/PROTOCOL.md).
                let plain = match transport.open(payload) {
                    Ok(plain) => plain,
                    Err(e) => {
                        tracing::warn!("closing the session of {}: {e}", conn.peer.label);
                        return Reply::Close;
                    }
                };
                if let Err((_, e)) = wire::decode::<Request>(&plain) {
                    tracing::warn!(
                        "closing the session of {}: sealed request: {e}",
                        conn.peer.label
                    );
                    return Reply::Close;
                }
                let mut seal_failed = false;
                let answer = self.run(&plain, &conn.peer, |p| match transport.seal(&p) {
                    Ok(sealed) => send(&wire::frame(FrameKind::Sealed, &sealed)),
                    Err(_) => seal_failed = true,
                });
                match transport.seal(&answer) {
                    Ok(sealed) if !seal_failed => {
                        Reply::Send(wire::frame(FrameKind::Sealed, &sealed))
                    }
                    _ => Reply::Close,
                }
            }
        }
    }

    /// Let the idle locks run.
    pub fn tick(&self) {
        let now = self.clock.now();
        self.lock().tick(now);
    }
}

fn strip_header(mut frame: Vec<u8>) -> Vec<u8> {
    frame.drain(..wire::FRAME_HEADER_LEN);
    frame
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
        while !stop.load(Ordering::Relaxed) {
            shared.tick();
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    })
}
