//! Links to a dongle: something that carries one wire-protocol request and brings back its
//! answer. The same code path serves USB (libusb) for the real key and sockets for the
//! emulated dongle and the LAN key server: each transport only moves frames ([`FrameIo`]),
//! and [`FramedLink`] adds the request ids and, with a paired host key, the encrypted session.

pub mod socket;
pub mod usb;

use std::path::Path;

use vbzkey_protocol::session::{self, Transport};
use vbzkey_protocol::stream::Frame;
use vbzkey_protocol::wire::{self, FrameKind, Request, Response};
use vbzkey_protocol::{PublicKey, SecretKey};
use zeroize::Zeroizing;

/// Why a link failed. Any of these means "drop the link and reconnect".
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No dongle found (unplugged, emulator not running).
    #[error("no dongle found: {0}")]
    NotFound(String),
    /// The transport failed mid-exchange.
    #[error("dongle link failed: {0}")]
    Io(String),
    /// The dongle answered something that is not a valid answer.
    #[error("the dongle's answer is invalid: {0}")]
    Protocol(String),
    /// The dongle refused this host's session.
    #[error("the dongle refused this host: {0}")]
    Refused(String),
}

/// Told when the dongle waits for a press of its button (with its timeout in seconds).
pub type PresenceNotice = Box<dyn FnMut(u16) + Send>;

/// One open connection to one dongle.
pub trait Link: Send {
    /// Send a request and wait for its final answer (interim `PresenceNeeded` frames go to
    /// the presence notice, if one is set).
    fn call(&mut self, req: &Request) -> Result<Response, LinkError>;
    /// Whom to tell when the dongle asks for its button.
    fn on_presence(&mut self, _notice: PresenceNotice) {}
    /// Where this link goes, for status and logs ("usb:SERIAL", "unix:/path").
    fn describe(&self) -> String;
}

/// Makes links: finds the dongle and opens it.
pub trait Connector: Send + Sync {
    /// Open a fresh link to the configured dongle.
    fn connect(&self) -> Result<Box<dyn Link>, LinkError>;
    /// Serial numbers of every matching dongle currently present (for status), where the
    /// transport can tell without opening them.
    fn present(&self) -> Vec<String> {
        Vec::new()
    }
    /// A counter that changes when devices come or go (hot-plug); a link opened under an
    /// older value is dropped before use. Transports without events keep it at 0.
    fn generation(&self) -> u64 {
        0
    }
}

/// Moves whole frames to and from one dongle.
pub trait FrameIo: Send {
    /// Send one frame (header and payload).
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError>;
    /// Receive one frame.
    fn recv(&mut self) -> Result<Frame, LinkError>;
    /// Where it goes.
    fn describe(&self) -> String;
}

/// This host's identity for encrypted sessions with paired dongles.
pub struct SessionKeys {
    host_secret: Zeroizing<[u8; 32]>,
    /// The dongle's device key; `None` asks the dongle for it (trust on first use, for local
    /// links the admin can see; the bridge's LAN method always pins it).
    device_public: Option<[u8; 32]>,
}

impl SessionKeys {
    /// From a host key file (`vksec1.` line, as `vbzkey keygen` writes) and the dongle's
    /// device key (`vkpub1.`), if pinned.
    pub fn load(host_key_file: &Path, device_key: Option<&str>) -> Result<Self, String> {
        let text = Zeroizing::new(
            std::fs::read_to_string(host_key_file)
                .map_err(|e| format!("cannot read {}: {e}", host_key_file.display()))?,
        );
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default();
        let key =
            SecretKey::from_text(line).map_err(|e| format!("{}: {e}", host_key_file.display()))?;
        let device_public = device_key
            .map(|d| {
                PublicKey::from_text(d)
                    .map(|k| *k.as_bytes())
                    .map_err(|e| format!("device key: {e}"))
            })
            .transpose()?;
        Ok(SessionKeys { host_secret: key.to_bytes(), device_public })
    }

    /// The host's public key (what the dongle pairs).
    pub fn host_public(&self) -> [u8; 32] {
        session::public_of(&self.host_secret)
    }

    /// The host's unlock secret (split custody), sent with the PIN inside the session.
    pub fn unlock_secret(&self) -> vbzkey_protocol::wire::UnlockSecret {
        vbzkey_protocol::wire::UnlockSecret(
            SecretKey::from_bytes(*self.host_secret).unlock_secret(),
        )
    }
}

fn os_fill(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}

/// A link over any frame channel, plain or in a session.
pub struct FramedLink {
    io: Box<dyn FrameIo>,
    session: Option<Transport>,
    next_id: u32,
    presence_notice: Option<PresenceNotice>,
}

impl FramedLink {
    /// A plain link, or a session when `keys` are given.
    pub fn open(io: Box<dyn FrameIo>, keys: Option<&SessionKeys>) -> Result<Self, LinkError> {
        let mut link = FramedLink { io, session: None, next_id: 0, presence_notice: None };
        if let Some(keys) = keys {
            let device = match keys.device_public {
                Some(d) => d,
                None => match link.call(&Request::DeviceKey)? {
                    Response::DeviceKey(d) => d,
                    other => return Err(LinkError::Protocol(format!("no device key: {other:?}"))),
                },
            };
            let (m1, init) = session::initiate(&keys.host_secret, &device, os_fill)
                .map_err(|e| LinkError::Protocol(e.to_string()))?;
            link.io.send(&wire::frame(FrameKind::Handshake, &m1))?;
            match link.io.recv()? {
                (FrameKind::Handshake, m2) => {
                    link.session =
                        Some(init.finish(&m2).map_err(|e| LinkError::Refused(e.to_string()))?);
                }
                (FrameKind::Plain, p) => {
                    let refusal = wire::decode::<Response>(&p).map(|(_, r)| r);
                    return Err(match refusal {
                        Ok(Response::Error(e)) => LinkError::Refused(e.to_string()),
                        _ => LinkError::Protocol(
                            "the dongle answered the handshake with nonsense".into(),
                        ),
                    });
                }
                (FrameKind::Sealed, _) => {
                    return Err(LinkError::Protocol("sealed frame during the handshake".into()));
                }
            }
        }
        Ok(link)
    }
}

impl FramedLink {
    /// Receive one answer payload (opened, in a session).
    fn receive(&mut self) -> Result<Zeroizing<Vec<u8>>, LinkError> {
        match (self.session.as_mut(), self.io.recv()?) {
            (Some(t), (FrameKind::Sealed, p)) => {
                t.open(&p).map_err(|e| LinkError::Protocol(e.to_string()))
            }
            (Some(_), _) => Err(LinkError::Protocol("a plain answer inside a session".into())),
            (None, (FrameKind::Plain, p)) => Ok(p),
            (None, _) => Err(LinkError::Protocol("an unexpected frame kind".into())),
        }
    }
}

impl Link for FramedLink {
    fn call(&mut self, req: &Request) -> Result<Response, LinkError> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        match self.session.as_mut() {
            Some(t) => {
                let sealed = t
                    .seal(&wire::encode_payload(id, req))
                    .map_err(|e| LinkError::Protocol(e.to_string()))?;
                self.io.send(&wire::frame(FrameKind::Sealed, &sealed))?;
            }
            None => self.io.send(&wire::encode(id, req))?,
        }
        loop {
            let payload = self.receive()?;
            let (got, resp) = wire::decode::<Response>(&payload)
                .map_err(|(_, e)| LinkError::Protocol(e.to_string()))?;
            if got != id {
                return Err(LinkError::Protocol(format!("answer to request {got}, expected {id}")));
            }
            match resp {
                Response::PresenceNeeded { timeout_secs } => {
                    if let Some(notice) = self.presence_notice.as_mut() {
                        notice(timeout_secs);
                    }
                }
                other => return Ok(other),
            }
        }
    }

    fn on_presence(&mut self, notice: PresenceNotice) {
        self.presence_notice = Some(notice);
    }

    fn describe(&self) -> String {
        self.io.describe() + if self.session.is_some() { " (session)" } else { "" }
    }
}
