//! The dongle methods (USB, or a socket for the emulated dongle and the LAN key server): the
//! bridge forwards requests through `vbzkey-client`; keys never leave the dongle. Reconnecting
//! after an unplug, and which requests may be sent again, are the client's.

use vbzkey_client::Client;
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::{LockState, Pin, SealedItem};

use super::{Custody, ItemResult, KeyMethod, KeyStatus, MethodError, State, Status};

/// A dongle reached through a client.
pub struct DongleMethod {
    name: &'static str,
    client: Client,
}

impl DongleMethod {
    /// `name` is `dongle` or `lan`.
    pub fn new(name: &'static str, client: Client) -> Self {
        DongleMethod { name, client }
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
            custody: None,
        };
        match self.client.hello() {
            Ok(h) => {
                status.state = match h.state {
                    LockState::Uninitialised => State::Uninitialised,
                    LockState::Locked => State::Locked,
                    LockState::Unlocked => State::Unlocked,
                    LockState::LockedOut => State::LockedOut,
                    LockState::DeviceSecretMissing => State::DeviceSecretMissing,
                };
                status.source = self.client.describe();
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
                    self.client.present().into_iter().filter(|s| *s != h.serial).collect();
                status.serial = Some(h.serial);
                status.firmware_version = Some(h.firmware_version);
                if h.split_custody {
                    status.custody = Some(Custody::Split);
                } else {
                    status.custody = Some(Custody::PinOnly);
                    status.detail = Some(
                        "a stolen dongle is protected by its PIN only: pair this workstation \
                         (vbzkey-admin pair) so that the dongle alone opens nothing"
                            .into(),
                    );
                }
            }
            Err(e) => status.detail = Some(MethodError::from(e).to_string()),
        }
        status
    }

    fn unlock(&self, secret: &[u8]) -> Result<(), MethodError> {
        Ok(self.client.unlock(Pin::new(secret))?)
    }

    fn lock(&self) -> Result<(), MethodError> {
        Ok(self.client.lock()?)
    }

    fn unseal(&self, items: Vec<SealedItem>) -> Result<Vec<ItemResult>, MethodError> {
        Ok(self.client.unseal(items)?)
    }

    fn unlock_only_on_bridge_page(&self) -> bool {
        false
    }
}
