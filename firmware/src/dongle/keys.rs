//! Using the keys: opening records for staff, re-wrapping, rotating and retiring versions.

use vbzkey_protocol::record::{self, RecordErrorCode};
use vbzkey_protocol::wire::{DongleError, ItemError, Plaintext, Response, SealedItem};
use vbzkey_protocol::{KeyId, PublicKey, SecretKey};

use super::{Dongle, Now, Peer, Platform, Store, key_infos};
use crate::audit::Event;
use crate::keystore::Keys;
use crate::parallel;
use crate::storage::Storage;
use vbzkey_protocol::wire::MAX_BATCH;

fn check_batch(n: usize) -> Result<(), DongleError> {
    if n == 0 || n > MAX_BATCH { Err(DongleError::BadBatchSize) } else { Ok(()) }
}

/// The distinct key ids a batch used, for its audit line.
#[derive(Default)]
struct KeyIds(Vec<KeyId>);

impl KeyIds {
    fn add(&mut self, id: KeyId) {
        if !self.0.contains(&id) {
            self.0.push(id);
        }
    }

    fn text(&self) -> String {
        if self.0.is_empty() {
            return "-".into();
        }
        self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
}

impl<S: Storage, P: Platform> Dongle<S, P> {
    fn staff_keys(&self) -> Result<&Keys, DongleError> {
        let s = self.ready()?.staff.as_ref().ok_or(DongleError::Locked)?;
        Ok(&s.opened.keys)
    }

    pub(super) fn unseal(
        &mut self,
        items: &[SealedItem],
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        check_batch(items.len())?;
        self.bucket
            .take(items.len() as u32, now.mono_ms)
            .map_err(|retry_after_ms| DongleError::RateLimited { retry_after_ms })?;
        let keys = self.staff_keys()?;
        let opened = parallel::map_ordered(items, self.cfg.open_threads, |item| {
            parallel::open_one(keys, item)
        });
        let mut used = KeyIds::default();
        let results: Vec<Result<Plaintext, ItemError>> = opened
            .into_iter()
            .map(|r| {
                r.map(|(id, pt)| {
                    used.add(id);
                    Plaintext(pt)
                })
            })
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count() as u32;
        self.log_transfers_refused(&results, now, peer)?;
        // Logged before anything is answered: no plaintext leaves without its audit line.
        self.log(now, Event::Unseal, &used.text(), ok, items.len() as u32 - ok, &peer.label)?;
        Ok(Response::Unsealed(results))
    }

    pub(super) fn rewrap(
        &mut self,
        items: &[SealedItem],
        to: [u8; 32],
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        check_batch(items.len())?;
        // Re-wrapping to a foreign key would be exfiltration without the rate limit; the
        // target must be one of this dongle's own keys (normally the one just rotated to).
        if !self.ready()?.file.public().iter().any(|p| p.public_key == to) {
            return Err(DongleError::NotAllowed);
        }
        let target = PublicKey::from_bytes(to);
        let mut used = KeyIds::default();
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let opened = parallel::open_one(self.admin_keys()?.0, item);
            let result = match opened {
                Ok((id, pt)) => {
                    used.add(id);
                    let platform = &mut self.platform;
                    let mut fill = |b: &mut [u8]| platform.fill_random(b).is_ok();
                    match record::seal_with_rng(&target, &item.context, &pt, &mut fill) {
                        Err(record::RecordError::Rng) => return Err(DongleError::Rng),
                        sealed => sealed.map_err(|e| ItemError::Record((&e).into())),
                    }
                }
                Err(e) => Err(e),
            };
            results.push(result);
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u32;
        self.log_transfers_refused(&results, now, peer)?;
        self.log(now, Event::Rewrap, &used.text(), ok, items.len() as u32 - ok, &peer.label)?;
        Ok(Response::Rewrapped(results))
    }

    /// A clone's key transfer blob given as a record is refused item by item; its own line says
    /// so (whoever sends one is probing for the keys).
    fn log_transfers_refused<T>(
        &mut self,
        results: &[Result<T, ItemError>],
        now: Now,
        peer: &Peer,
    ) -> Result<(), DongleError> {
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(ItemError::Record(RecordErrorCode::KeyTransfer))))
            .count() as u32;
        if refused > 0 {
            self.log(now, Event::KeyTransferRefused, "-", 0, refused, &peer.label)?;
        }
        Ok(())
    }

    pub(super) fn rotate(&mut self, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        let (keys, halves) = self.admin_keys()?;
        let (mut keys, halves) = (keys.duplicate(), halves.duplicate());
        let version = keys.keys.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1;
        let key = SecretKey::from_bytes(*self.random::<32>()?);
        let key_id = key.key_id().to_string();
        keys.keys.push((version, key));
        let slots = self.ready()?.file.slots().to_vec();
        self.logged(now, Event::Rotate, &key_id, peer, |d| {
            d.write_store(&keys, version, &slots, &halves)?;
            Ok(Response::PublicKeys(key_infos(d.ready()?.file.public())))
        })
    }

    pub(super) fn retire(
        &mut self,
        key_id: KeyId,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let entry = self
            .ready()?
            .file
            .public()
            .iter()
            .find(|p| p.key_id() == key_id)
            .cloned()
            .ok_or(DongleError::NoSuchKey)?;
        if entry.active {
            return Err(DongleError::KeyIsActive);
        }
        let (keys, halves) = self.admin_keys()?;
        let (mut keys, halves) = (keys.duplicate(), halves.duplicate());
        keys.keys.retain(|(v, _)| *v != entry.version);
        let active = self.active_version();
        let slots = self.ready()?.file.slots().to_vec();
        self.logged(now, Event::Retire, &key_id.to_string(), peer, |d| {
            d.write_store(&keys, active, &slots, &halves)?;
            Ok(Response::Ok)
        })
    }

    /// Whether the dongle's own keys include `public` (clone and re-wrap targets).
    pub(super) fn holds_public(&self, public: &[u8; 32]) -> bool {
        matches!(&self.store, Store::Ready(r) if r.file.public().iter().any(|p| &p.public_key == public))
    }
}
