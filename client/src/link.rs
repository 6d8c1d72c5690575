//! One open connection to one dongle: a transport that moves whole frames ([`FrameIo`]:
//! USB or a socket), request ids, and, with host keys, the encrypted session.

use vbzkey_protocol::session::{self, Transport};
use vbzkey_protocol::stream::Frame;
use vbzkey_protocol::wire::{self, FrameKind, Request, Response};
use zeroize::Zeroizing;

use vbzkey_protocol::PublicKey;

use crate::error::{LinkError, ProtocolError, TransportError};
use crate::session::{DevicePin, SessionKeys, read_known_dongle, record_known_dongle};

/// Moves whole frames to and from one dongle.
pub trait FrameIo: Send {
    /// Send one frame (header and payload).
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError>;
    /// Receive one frame.
    fn recv(&mut self) -> Result<Frame, TransportError>;
    /// Where it goes (`usb:SERIAL`, `unix:/path`), for status and logs.
    fn describe(&self) -> String;
}

fn os_fill(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}

/// Told when the dongle waits for a press of its button (with its timeout in seconds).
pub type PresenceNotice = Box<dyn FnMut(u16) + Send>;

/// A link over any frame transport, plain or in a session. Strictly one request at a time.
pub struct Link {
    io: Box<dyn FrameIo>,
    session: Option<Transport>,
    next_id: u32,
    presence_notice: Option<PresenceNotice>,
}

impl Link {
    /// A plain link, or, when `keys` are given, a session (asking the dongle for its device
    /// key first when none is pinned).
    pub fn open(io: Box<dyn FrameIo>, keys: Option<&SessionKeys>) -> Result<Self, LinkError> {
        let mut link = Link { io, session: None, next_id: 0, presence_notice: None };
        if let Some(keys) = keys {
            // The device key the dongle claims (public; only the real holder can complete the
            // handshake below), checked against the pinned one before anything else is sent.
            let claimed = match link.call(&Request::DeviceKey)? {
                Response::DeviceKey(d) => PublicKey::from_bytes(d),
                Response::Error(e) => return Err(LinkError::Refused(e)),
                _ => return Err(ProtocolError::NoDeviceKey.into()),
            };
            let first_use = match &keys.device {
                DevicePin::Ask => None,
                DevicePin::Key(k) => {
                    link.check_device(k, &claimed)?;
                    None
                }
                DevicePin::FirstUse(path) => match read_known_dongle(path)
                    .map_err(|source| LinkError::KnownDongleFile { path: path.clone(), source })?
                {
                    Some(k) => {
                        link.check_device(&k, &claimed)?;
                        None
                    }
                    None => Some(path),
                },
            };
            let device = *claimed.as_bytes();
            let (m1, init) = session::initiate(&keys.host_secret, &device, os_fill)?;
            link.io.send(&wire::frame(FrameKind::Handshake, &m1)).map_err(LinkError::Send)?;
            match link.io.recv() {
                Ok((FrameKind::Handshake, m2)) => link.session = Some(init.finish(&m2)?),
                Ok((FrameKind::Plain, p)) => {
                    return Err(match wire::decode::<Response>(&p) {
                        Ok((_, Response::Error(e))) => LinkError::Refused(e),
                        Ok(_) => ProtocolError::FrameKind {
                            expected: FrameKind::Handshake,
                            got: FrameKind::Plain,
                        }
                        .into(),
                        Err((_, e)) => ProtocolError::Wire(e).into(),
                    });
                }
                Ok((got, _)) => {
                    return Err(
                        ProtocolError::FrameKind { expected: FrameKind::Handshake, got }.into()
                    );
                }
                Err(TransportError::Closed) => return Err(LinkError::HandshakeRejected),
                Err(e) => return Err(LinkError::Recv(e)),
            }
            // The session proved the dongle holds that key: record it, once.
            if let Some(path) = first_use {
                let at = link.io.describe();
                record_known_dongle(path, &claimed, &at)
                    .map_err(|source| LinkError::KnownDongleFile { path: path.clone(), source })?;
                tracing::warn!(
                    "trusting the dongle at {at} on first use: its device key {claimed} is now \
                     recorded in {}; check it against what `vbzkey-admin pair` printed",
                    path.display()
                );
            }
        }
        Ok(link)
    }

    fn check_device(&self, pinned: &PublicKey, claimed: &PublicKey) -> Result<(), LinkError> {
        if pinned == claimed {
            return Ok(());
        }
        Err(LinkError::DeviceKeyMismatch {
            at: self.io.describe(),
            expected: pinned.clone(),
            got: claimed.clone(),
        })
    }

    /// Whom to tell when the dongle asks for its button (an interim `PresenceNeeded`).
    pub fn on_presence(&mut self, notice: PresenceNotice) {
        self.presence_notice = Some(notice);
    }

    /// Send `req` and wait for its final answer (which may be the dongle's
    /// `Response::Error`); interim `PresenceNeeded` answers go to the presence notice.
    pub fn call(&mut self, req: &Request) -> Result<Response, LinkError> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let expected = if self.session.is_some() { FrameKind::Sealed } else { FrameKind::Plain };
        // The request may carry a PIN: its encodings are wiped once sent.
        let frame = Zeroizing::new(match self.session.as_mut() {
            Some(t) => {
                let payload = Zeroizing::new(wire::encode_payload(id, req));
                wire::frame(FrameKind::Sealed, &t.seal(&payload)?)
            }
            None => wire::encode(id, req),
        });
        self.io.send(&frame).map_err(LinkError::Send)?;
        loop {
            let (kind, payload) = self.io.recv().map_err(LinkError::Recv)?;
            if kind != expected {
                return Err(ProtocolError::FrameKind { expected, got: kind }.into());
            }
            let payload = match self.session.as_mut() {
                Some(t) => t.open(&payload)?,
                None => payload,
            };
            let (got, resp) =
                wire::decode::<Response>(&payload).map_err(|(_, e)| ProtocolError::Wire(e))?;
            if got != id {
                return Err(ProtocolError::WrongId { expected: id, got }.into());
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

    /// Where it goes, and whether in a session.
    pub fn describe(&self) -> String {
        self.io.describe() + if self.session.is_some() { " (session)" } else { "" }
    }
}
