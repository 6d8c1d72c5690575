//! Which hosts the dongle serves, and which hold a share of its master key: pairing and
//! unpairing.
//!
//! Split custody: while no host is paired, the host half of the master key lies in an open
//! slot and the PIN alone protects the store. The first pairing draws a **new** host half (so a
//! card copied before it is worth nothing afterwards), re-seals the keys under the new master
//! key and wraps that half for the paired host only; later pairings wrap the same half for
//! each new host. Unpairing deletes the host's wrap; unpairing the last host puts the half back
//! in the open (the dongle says so: PIN-only again).

use vbzkey_protocol::KeyId;
use vbzkey_protocol::wire::{DongleError, PairingInfo, Response, UnlockSecret};

use super::{Dongle, Now, Pairings, Peer, Platform, storage_failed};
use crate::audit::Event;
use crate::keystore::{Halves, Slot, SlotKind};
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
        unlock: &UnlockSecret,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        if label.len() > crate::pairing::MAX_LABEL || label.chars().any(char::is_control) {
            return Err(DongleError::BadPairing);
        }
        let file = &self.ready()?.file;
        let first = !file.split_custody();
        let old = self.admin_keys()?.1.duplicate();
        let halves =
            if first { Halves::new(old.device.clone(), self.random::<32>()?) } else { old };
        // Every slot but the open host half and this host's earlier wrap, plus its new wrap.
        let mut slots: Vec<Slot> = self
            .ready()?
            .file
            .slots()
            .iter()
            .filter(|s| s.kind() != SlotKind::HostOpen && s.host_key() != Some(&host_key))
            .cloned()
            .collect();
        slots.push(self.host_slot(host_key, unlock, &halves)?);
        let mut hosts = self.hosts();
        hosts.retain(|h| h.host_key != host_key);
        hosts.push(PairingInfo { host_key, label, paired_at: now.unix_secs });
        self.logged(now, Event::Pair, &KeyId::of(&host_key).to_string(), peer, |d| {
            // The key store first: a host in the pairings without its wrap can open a session
            // but not unlock (re-pair it); the reverse cannot happen.
            d.rewrite_slots(&slots, &halves)?;
            d.store_hosts(hosts)?;
            Ok(Response::Ok)
        })
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
        let halves = self.admin_keys()?.1.duplicate();
        let mut slots: Vec<Slot> = self
            .ready()?
            .file
            .slots()
            .iter()
            .filter(|s| s.host_key() != Some(&host_key))
            .cloned()
            .collect();
        if !slots.iter().any(|s| s.kind() == SlotKind::Host) {
            tracing::warn!("the last host was unpaired: the dongle is protected by its PIN only");
            slots.push(Slot::host_open(&halves.host));
        }
        self.logged(now, Event::Unpair, &KeyId::of(&host_key).to_string(), peer, |d| {
            d.rewrite_slots(&slots, &halves)?;
            d.store_hosts(hosts)?;
            Ok(Response::Ok)
        })
    }
}
