//! The dongle methods (USB, or a socket for the emulated dongle and the LAN key server): the
//! bridge forwards requests through `vbzkey-client`; keys never leave the dongle. Reconnecting
//! after an unplug, and which requests may be sent again, are the client's.

use std::path::PathBuf;

use vbzkey_client::{Client, ClientError, LinkError};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::{DongleError, LockState, Pin, SealedItem};

use super::{Custody, ItemResult, KeyMethod, KeyStatus, MethodError, State, Status};

/// A dongle reached through a client.
pub struct DongleMethod {
    name: &'static str,
    client: Client,
    /// The configured `host_key`, if any: named when the dongle refuses this workstation.
    host_key: Option<PathBuf>,
}

impl DongleMethod {
    /// `name` is `dongle` or `lan`; `host_key` is the configuration's setting, if given.
    pub fn new(name: &'static str, client: Client, host_key: Option<PathBuf>) -> Self {
        DongleMethod { name, client, host_key }
    }

    /// The client's error as the staff page sees it. A dongle that refuses the session of an
    /// unpaired host is the bridge's configuration to fix: the answer names the setting.
    fn error(&self, e: ClientError) -> MethodError {
        match e {
            ClientError::Link(LinkError::Refused(
                DongleError::NotPaired | DongleError::PairingRequired,
            )) => {
                let e = MethodError::NotPaired(self.host_key.clone());
                tracing::warn!("{e}");
                e
            }
            other => other.into(),
        }
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
            Err(e) => {
                let e = self.error(e);
                if let MethodError::NotPaired(_) = e {
                    status.state = State::NotPaired;
                }
                status.detail = Some(e.to_string());
            }
        }
        status
    }

    fn unlock(&self, secret: &[u8]) -> Result<(), MethodError> {
        self.client.unlock(Pin::new(secret)).map_err(|e| self.error(e))
    }

    fn lock(&self) -> Result<(), MethodError> {
        self.client.lock().map_err(|e| self.error(e))
    }

    fn unseal(&self, items: Vec<SealedItem>) -> Result<Vec<ItemResult>, MethodError> {
        self.client.unseal(items).map_err(|e| self.error(e))
    }

    fn unlock_only_on_bridge_page(&self) -> bool {
        false
    }
}
