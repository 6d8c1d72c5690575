//! The dongle methods (USB, or a socket for the emulated dongle and the LAN key server): the
//! bridge forwards requests; keys never leave the dongle.

use std::sync::Mutex;

use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::{
    DongleError, HelloInfo, LockState, Pin, Request, Response, SealedItem,
};

use super::{ItemResult, KeyMethod, KeyStatus, MethodError, State, Status};
use crate::link::{Connector, Link, LinkError};

struct Open {
    link: Box<dyn Link>,
    generation: u64,
}

/// A dongle reached through a connector.
pub struct DongleMethod {
    name: &'static str,
    connector: Box<dyn Connector>,
    open: Mutex<Option<Open>>,
}

fn from_dongle(e: DongleError) -> MethodError {
    match e {
        DongleError::Locked => MethodError::Locked,
        DongleError::LockedOut => MethodError::LockedOut,
        DongleError::WrongPin { tries_left } => {
            MethodError::WrongSecret { tries_left: Some(tries_left) }
        }
        DongleError::RateLimited { retry_after_ms } => MethodError::RateLimited { retry_after_ms },
        DongleError::NotInitialised => MethodError::NotInitialised,
        other => MethodError::Refused(other.to_string()),
    }
}

impl DongleMethod {
    /// `name` is `dongle` or `lan`.
    pub fn new(name: &'static str, connector: Box<dyn Connector>) -> Self {
        DongleMethod { name, connector, open: Mutex::new(None) }
    }

    /// Send `req`, opening the link if needed. A link that fails is dropped and, once, a fresh
    /// one is tried: after an unplug/replug or an emulator restart the old link is dead, and
    /// the request never reached the new dongle, so sending it again is safe.
    fn call(&self, req: &Request) -> Result<Response, MethodError> {
        let mut slot = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.connector.generation();
        if slot.as_ref().is_some_and(|o| o.generation != generation) {
            *slot = None;
        }
        let reused = slot.is_some();
        for attempt in 0..2 {
            if slot.is_none() {
                match self.connector.connect() {
                    Ok(link) => *slot = Some(Open { link, generation }),
                    Err(e) => return Err(MethodError::Absent(e.to_string())),
                }
            }
            let open = slot.as_mut().expect("just opened");
            match open.link.call(req) {
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    tracing::warn!("{}: {e}", open.link.describe());
                    *slot = None;
                    if attempt == 1 || !reused || matches!(e, LinkError::Protocol(_)) {
                        return Err(MethodError::Absent(e.to_string()));
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }

    fn hello(&self) -> Result<HelloInfo, MethodError> {
        match self.call(&Request::Hello)? {
            Response::Hello(h) => Ok(h),
            Response::Error(e) => Err(from_dongle(e)),
            other => Err(MethodError::Refused(format!("unexpected answer {other:?}"))),
        }
    }

    fn source(&self) -> Option<String> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|o| o.link.describe())
    }
}

impl KeyMethod for DongleMethod {
    fn name(&self) -> &'static str {
        self.name
    }

    fn status(&self) -> Status {
        let mut status = Status {
            method: self.name,
            state: State::Absent,
            source: None,
            serial: None,
            firmware_version: None,
            pin_tries_left: None,
            keys: Vec::new(),
            also_present: Vec::new(),
            detail: None,
        };
        match self.hello() {
            Ok(h) => {
                status.state = match h.state {
                    LockState::Uninitialised => State::Uninitialised,
                    LockState::Locked => State::Locked,
                    LockState::Unlocked => State::Unlocked,
                    LockState::LockedOut => State::LockedOut,
                    LockState::DeviceSecretMissing => State::DeviceSecretMissing,
                };
                status.source = self.source();
                status.pin_tries_left = h.pin_set.then_some(h.pin_tries_left);
                status.keys = h
                    .keys
                    .iter()
                    .map(|k| KeyStatus {
                        key_id: k.key_id.to_string(),
                        version: k.version,
                        active: k.active,
                        public_key: PublicKey::from_bytes(k.public_key).to_text(),
                    })
                    .collect();
                status.also_present =
                    self.connector.present().into_iter().filter(|s| *s != h.serial).collect();
                status.serial = Some(h.serial);
                status.firmware_version = Some(h.firmware_version);
            }
            Err(e) => status.detail = Some(e.to_string()),
        }
        status
    }

    fn unlock(&self, secret: &[u8]) -> Result<(), MethodError> {
        match self.call(&Request::Unlock { pin: Pin::new(secret) })? {
            Response::Ok => Ok(()),
            Response::Error(DongleError::BadPin) => {
                Err(MethodError::WrongSecret { tries_left: None })
            }
            Response::Error(e) => Err(from_dongle(e)),
            other => Err(MethodError::Refused(format!("unexpected answer {other:?}"))),
        }
    }

    fn lock(&self) -> Result<(), MethodError> {
        match self.call(&Request::Lock)? {
            Response::Ok => Ok(()),
            Response::Error(e) => Err(from_dongle(e)),
            other => Err(MethodError::Refused(format!("unexpected answer {other:?}"))),
        }
    }

    fn unseal(&self, items: Vec<SealedItem>) -> Result<Vec<ItemResult>, MethodError> {
        match self.call(&Request::UnsealBatch { items })? {
            Response::Unsealed(results) => {
                Ok(results.into_iter().map(|r| r.map_err(|e| e.code())).collect())
            }
            Response::Error(e) => Err(from_dongle(e)),
            other => Err(MethodError::Refused(format!("unexpected answer {other:?}"))),
        }
    }

    fn unlock_only_on_bridge_page(&self) -> bool {
        false
    }
}
