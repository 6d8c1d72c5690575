//! Keys leaving or entering the dongle, wrapped: M-of-N recovery shares and clones.

use vbzkey_protocol::PublicKey;
use vbzkey_protocol::record;
use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{DongleError, Pin, Response};

use super::{Dongle, Now, Peer, Platform, Store};
use crate::audit::Event;
use crate::backup::{self, KeySet, PlatformRng};
use crate::storage::Storage;

/// Most recovery shares one backup makes: enough for any board of trustees, small enough to
/// print.
const MAX_SHARES: u8 = 16;
impl<S: Storage, P: Platform> Dongle<S, P> {
    /// Every key version and the active one, from the admin window.
    fn admin_key_set(&self) -> Result<KeySet, DongleError> {
        let keys = self.admin_keys()?.0;
        Ok(KeySet::from_keys(keys, self.active_version()))
    }

    pub(super) fn backup(
        &mut self,
        threshold: u8,
        count: u8,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        if threshold < 2 || count < threshold || count > MAX_SHARES {
            return Err(DongleError::BadBackupParameters);
        }
        let secret = self.admin_key_set()?.to_bytes();
        let platform = &mut self.platform;
        let mut fill = |b: &mut [u8]| platform.fill_random(b).is_ok();
        let mut rng = PlatformRng::new(&mut fill);
        let shares = backup::deal(&secret, threshold, count, &mut rng);
        if rng.failed {
            return Err(DongleError::Rng);
        }
        self.log(now, Event::Backup, "-", u32::from(count), u32::from(threshold), &peer.label)?;
        Ok(Response::Shares(shares))
    }

    pub(super) fn restore(
        &mut self,
        shares: &[Share],
        pin: Option<Pin>,
        admin_pin: Pin,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let secret = backup::combine(shares).map_err(|e| match e {
            backup::ShareError::Mixed => DongleError::SharesMixed,
            backup::ShareError::TooFew { need, got } => {
                DongleError::TooFewShares { need, got: got.min(255) as u8 }
            }
            backup::ShareError::WrongShare => DongleError::WrongShare,
        })?;
        let set = KeySet::from_bytes(&secret).ok_or(DongleError::WrongShare)?;
        let (keys, active) = set.into_keys().ok_or(DongleError::WrongShare)?;
        let ids = key_ids(&keys);
        self.logged(now, Event::Restore, &ids, peer, |d| {
            d.install(keys, active, pin, &admin_pin, now)
        })
    }

    pub(super) fn clone_begin(&mut self) -> Result<Response, DongleError> {
        let key = vbzkey_protocol::SecretKey::from_bytes(*self.random::<32>()?);
        let public = *key.public_key().as_bytes();
        if let Store::Empty { clone_key } = &mut self.store {
            *clone_key = Some(key);
        }
        Ok(Response::CloneKey(public))
    }

    pub(super) fn clone_export(
        &mut self,
        to: [u8; 32],
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        // Sealed to one of the dongle's own record keys, the blob would open as a record.
        if self.holds_public(&to) {
            return Err(DongleError::BadPublicKey);
        }
        // In the key transfer domain: the blob never opens as a record, whatever it is given.
        let set = self.admin_key_set()?.to_bytes();
        let target = PublicKey::from_bytes(to);
        let platform = &mut self.platform;
        let mut fill = |b: &mut [u8]| platform.fill_random(b).is_ok();
        let blob = record::seal_key_transfer(&target, &set, &mut fill).map_err(|e| match e {
            record::RecordError::Rng => DongleError::Rng,
            _ => DongleError::BadPublicKey,
        })?;
        self.log(now, Event::CloneExport, &target.key_id().to_string(), 0, 0, &peer.label)?;
        Ok(Response::CloneBlob(blob))
    }

    pub(super) fn clone_import(
        &mut self,
        blob: &[u8],
        pin: Option<Pin>,
        admin_pin: Pin,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let Store::Empty { clone_key: Some(key) } = &self.store else {
            return Err(DongleError::NoCloneInProgress);
        };
        let bytes = record::open_key_transfer(key, blob).map_err(|_| DongleError::BadCloneBlob)?;
        let set = KeySet::from_bytes(&bytes).ok_or(DongleError::BadCloneBlob)?;
        let (keys, active) = set.into_keys().ok_or(DongleError::BadCloneBlob)?;
        let ids = key_ids(&keys);
        self.logged(now, Event::CloneImport, &ids, peer, |d| {
            d.install(keys, active, pin, &admin_pin, now)
        })
    }
}

fn key_ids(keys: &crate::keystore::Keys) -> String {
    keys.keys.iter().map(|(_, k)| k.key_id().to_string()).collect::<Vec<_>>().join(",")
}
