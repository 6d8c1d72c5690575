//! Which hosts the dongle serves: pairing and unpairing.

use vbzkey_protocol::KeyId;
use vbzkey_protocol::wire::{DongleError, PairingInfo, Response};

use super::{Dongle, Now, Pairings, Peer, Platform, storage_failed};
use crate::audit::Event;
use crate::storage::Storage;

impl<S: Storage, P: Platform> Dongle<S, P> {
    fn hosts(&self) -> Vec<PairingInfo> {
        match &self.pairings {
            Pairings::Hosts(h) => h.clone(),
            // Damaged: start again from none (every host pairs again).
            Pairings::Damaged => Vec::new(),
        }
    }

    fn store_hosts(&mut self, hosts: Vec<PairingInfo>) -> Result<(), DongleError> {
        crate::pairing::store(&mut self.storage, &hosts).map_err(storage_failed)?;
        self.pairings = Pairings::Hosts(hosts);
        Ok(())
    }

    pub(super) fn pair(
        &mut self,
        host_key: [u8; 32],
        label: String,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        if label.len() > crate::pairing::MAX_LABEL || label.chars().any(char::is_control) {
            return Err(DongleError::BadPairing);
        }
        let mut hosts = self.hosts();
        hosts.retain(|h| h.host_key != host_key);
        hosts.push(PairingInfo { host_key, label, paired_at: now.unix_secs });
        self.store_hosts(hosts)?;
        self.log(now, Event::Pair, &KeyId::of(&host_key).to_string(), 0, 0, &peer.label)?;
        Ok(Response::Ok)
    }

    pub(super) fn unpair(
        &mut self,
        host_key: [u8; 32],
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let mut hosts = self.hosts();
        let before = hosts.len();
        hosts.retain(|h| h.host_key != host_key);
        if hosts.len() == before {
            return Err(DongleError::BadPairing);
        }
        self.store_hosts(hosts)?;
        self.log(now, Event::Unpair, &KeyId::of(&host_key).to_string(), 0, 0, &peer.label)?;
        Ok(Response::Ok)
    }
}
