//! The two credentials: setting them (init), presenting them (unlock, admin auth — the one
//! counted path), changing them, and ending what they opened.

use subtle::ConstantTimeEq;
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::wire::{
    DongleError, MAX_PIN_LEN, MIN_ADMIN_PIN_LEN, MIN_PIN_LEN, Pin, Response, UnlockSecret,
};

use super::{
    AdminWindow, Dongle, Now, Opened, Peer, Platform, Ready, StaffUnlock, Store, key_infos,
    storage_failed,
};
use crate::audit::Event;
use crate::keystore::{
    self, Credential, Halves, KeyStore, KeyStoreError, Keys, NewStore, Secret32, Slot, SlotKind,
    SlotNonce,
};
use crate::pin_counter::Counters;
use crate::storage::{File, Storage};

fn check_len(who: Credential, pin: &[u8]) -> Result<(), DongleError> {
    let min = match who {
        Credential::Staff => MIN_PIN_LEN,
        Credential::Admin => MIN_ADMIN_PIN_LEN,
    };
    if (min..=MAX_PIN_LEN).contains(&pin.len()) { Ok(()) } else { Err(DongleError::BadPin) }
}

impl<S: Storage, P: Platform> Dongle<S, P> {
    fn max_tries(&self, who: Credential) -> u8 {
        match who {
            Credential::Staff => self.cfg.max_pin_tries,
            Credential::Admin => self.cfg.max_admin_tries,
        }
    }

    fn write_counters(&mut self, c: Counters) -> Result<(), DongleError> {
        self.storage.store(File::PinCounter, &c.encode()).map_err(storage_failed)?;
        if let Store::Ready(r) = &mut self.store {
            r.counters = c;
        }
        Ok(())
    }

    /// The host half for `peer`: from the open slot while no host is paired, else from the
    /// peer's session host's slot with the unlock secret it gave. Checked before any PIN is
    /// counted: a host without a share gets no PIN guess at all.
    fn host_half(
        &mut self,
        unlock: Option<&UnlockSecret>,
        now: Now,
        peer: &Peer,
    ) -> Result<Secret32, DongleError> {
        let file = &self.ready()?.file;
        let host = peer.session.as_ref().zip(unlock.map(|u| &u.0));
        match file.host_half(&self.binding, host) {
            Ok(h) => Ok(h),
            Err(KeyStoreError::WrongKey | KeyStoreError::NoSlot) => {
                self.log(now, Event::HostNotTrusted, "-", 0, 1, &peer.label)?;
                Err(DongleError::HostNotTrusted)
            }
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// A key store that would not open for a reason other than a credential. (The policy
    /// refuses a store that needs a missing device secret before this; the mapping stays so a
    /// missing secret is never reported as damage.)
    fn store_error(&self, e: KeyStoreError) -> DongleError {
        tracing::error!("{e}");
        match e {
            KeyStoreError::MissingDeviceSecret => DongleError::DeviceSecretMissing,
            _ => DongleError::KeyStoreDamaged,
        }
    }

    /// Present `who`'s credential (and, in split custody, the host's unlock secret): the
    /// credential's counter is written **before** the comparison and reset only by a correct
    /// entry, after `ok_event` is logged: a right guess whose line cannot be written looks
    /// exactly like a wrong one (counted, not reset). The one place a PIN is checked.
    fn present(
        &mut self,
        who: Credential,
        secret: &[u8],
        unlock: Option<&UnlockSecret>,
        ok_event: Event,
        now: Now,
        peer: &Peer,
    ) -> Result<Opened, DongleError> {
        let max = self.max_tries(who);
        let counters = self.ready()?.counters;
        let before = counters.get(who);
        let (locked_out, failed_event, lockout_event) = match who {
            Credential::Staff => (DongleError::LockedOut, Event::UnlockFailed, Event::LockedOut),
            Credential::Admin => {
                (DongleError::AdminLockedOut, Event::AdminAuthFailed, Event::AdminLockedOut)
            }
        };
        if before >= max {
            return Err(locked_out);
        }
        check_len(who, secret)?;
        let host = self.host_half(unlock, now, peer)?;
        self.write_counters(counters.with(who, before.saturating_add(1)))?;
        let file = self.ready()?.file.clone();
        let opened = file.device_half(who, &self.binding, secret).and_then(|device| {
            let halves = Halves::new(device, host);
            Ok(Opened { keys: file.open(&halves.master_key())?, halves })
        });
        match opened {
            Ok(opened) => {
                self.log(now, ok_event, "-", 0, 0, &peer.label)?;
                self.write_counters(counters.with(who, 0))?;
                Ok(opened)
            }
            Err(KeyStoreError::WrongKey) => {
                let left = max.saturating_sub(before.saturating_add(1));
                if left > 0 {
                    self.log(now, failed_event, "-", 0, 1, &peer.label)?;
                    return Err(match who {
                        Credential::Staff => DongleError::WrongPin { tries_left: left },
                        Credential::Admin => DongleError::WrongAdminPin { tries_left: left },
                    });
                }
                if let Store::Ready(r) = &mut self.store {
                    match who {
                        Credential::Staff => r.staff = None,
                        Credential::Admin => r.admin = None,
                    }
                }
                self.log(now, lockout_event, "-", 0, 1, &peer.label)?;
                Err(locked_out)
            }
            Err(e) => {
                // Not a wrong credential (damage, a missing OTP secret): give the try back.
                self.write_counters(counters)?;
                Err(self.store_error(e))
            }
        }
    }

    fn fresh(&mut self) -> Result<SlotNonce, DongleError> {
        Ok(SlotNonce { salt: *self.random::<16>()?, nonce: *self.random::<12>()? })
    }

    /// A credential slot wrapping the device half under `secret`.
    pub(super) fn device_slot(
        &mut self,
        kind: SlotKind,
        secret: &[u8],
        halves: &Halves,
    ) -> Result<Slot, DongleError> {
        let fresh = self.fresh()?;
        Slot::device(kind, self.cfg.kdf, fresh, &self.binding, secret, &halves.device)
            .map_err(|_| DongleError::Storage)
    }

    fn staff_slot(&mut self, pin: Option<&Pin>, halves: &Halves) -> Result<Slot, DongleError> {
        match pin {
            Some(p) => self.device_slot(SlotKind::StaffPin, &p.0, halves),
            None => self.device_slot(SlotKind::StaffOpen, b"", halves),
        }
    }

    /// A host slot wrapping the host half for `host_key` under its unlock secret.
    pub(super) fn host_slot(
        &mut self,
        host_key: [u8; 32],
        unlock: &UnlockSecret,
        halves: &Halves,
    ) -> Result<Slot, DongleError> {
        let fresh = self.fresh()?;
        Slot::host(host_key, fresh, &self.binding, &unlock.0, &halves.host)
            .map_err(|_| DongleError::Storage)
    }

    /// Seal `keys` under the master key of `halves` with `slots` into the key store file,
    /// crash-safely, and make it the dongle's store. Whoever holds the keys (staff unlock,
    /// admin window) sees the new versions and halves.
    pub(super) fn write_store(
        &mut self,
        keys: &Keys,
        active: u32,
        slots: &[Slot],
        halves: &Halves,
    ) -> Result<(), DongleError> {
        let nonce = *self.random::<12>()?;
        let bytes = keystore::seal(
            &NewStore { keys: &keys.keys, active, slots, nonce },
            &halves.master_key(),
        )
        .map_err(|_| DongleError::Storage)?;
        self.storage.store(File::KeyStore, &bytes).map_err(storage_failed)?;
        let file = KeyStore::parse(&bytes).map_err(|_| DongleError::Storage)?;
        match &mut self.store {
            Store::Ready(r) => {
                r.file = file;
                let holders = [
                    r.staff.as_mut().map(|s| &mut s.opened),
                    r.admin.as_mut().map(|a| &mut a.opened),
                ];
                for opened in holders.into_iter().flatten() {
                    opened.keys = keys.duplicate();
                    opened.halves = halves.duplicate();
                }
            }
            other => {
                *other = Store::Ready(Box::new(Ready {
                    file,
                    counters: Counters::default(),
                    staff: None,
                    admin: None,
                }));
            }
        }
        Ok(())
    }

    /// Store `keys` into an uninitialised dongle under new credentials (init, restore, clone).
    pub(super) fn install(
        &mut self,
        keys: Keys,
        active: u32,
        pin: Option<Pin>,
        admin_pin: &Pin,
        now: Now,
    ) -> Result<Response, DongleError> {
        if let Some(p) = &pin {
            check_len(Credential::Staff, &p.0)?;
            if bool::from(p.0.ct_eq(&admin_pin.0)) {
                return Err(DongleError::SamePin);
            }
        }
        check_len(Credential::Admin, &admin_pin.0)?;
        // Two fresh halves; the host half lies open until the first host is paired.
        let halves = Halves::new(self.random::<32>()?, self.random::<32>()?);
        let slots = [
            self.staff_slot(pin.as_ref(), &halves)?,
            self.device_slot(SlotKind::Admin, &admin_pin.0, &halves)?,
            Slot::host_open(&halves.host),
        ];
        // Counters first: a key store without them is treated as tampered with.
        self.storage
            .store(File::PinCounter, &Counters::default().encode())
            .map_err(storage_failed)?;
        self.write_store(&keys, active, &slots, &halves)?;
        self.open_without_pin(now);
        Ok(Response::PublicKeys(key_infos(self.ready()?.file.public())))
    }

    pub(super) fn init(
        &mut self,
        pin: Option<Pin>,
        admin_pin: Pin,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let key = SecretKey::from_bytes(*self.random::<32>()?);
        let key_id = key.key_id().to_string();
        let keys = Keys { keys: vec![(1, key)] };
        self.logged(now, Event::Init, &key_id, peer, |d| d.install(keys, 1, pin, &admin_pin, now))
    }

    pub(super) fn unlock(
        &mut self,
        pin: &Pin,
        unlock: Option<&UnlockSecret>,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let file = &self.ready()?.file;
        let (pin_set, split) = (file.staff_pin_set(), file.split_custody());
        if !pin_set && !split {
            self.open_without_pin(now);
            return Ok(Response::Ok);
        }
        let opened = if pin_set {
            self.present(Credential::Staff, &pin.0, unlock, Event::UnlockOk, now, peer)?
        } else {
            // No staff PIN, but split custody: the host's share alone unlocks.
            let host = self.host_half(unlock, now, peer)?;
            let file = self.ready()?.file.clone();
            let device = file
                .device_half(Credential::Staff, &self.binding, b"")
                .map_err(|e| self.store_error(e))?;
            let halves = Halves::new(device, host);
            let keys = file.open(&halves.master_key()).map_err(|e| self.store_error(e))?;
            self.log(now, Event::UnlockOk, "-", 0, 0, &peer.label)?;
            Opened { keys, halves }
        };
        if let Store::Ready(r) = &mut self.store {
            r.staff = Some(StaffUnlock { opened, last_use_ms: now.mono_ms });
        }
        Ok(Response::Ok)
    }

    pub(super) fn admin_auth(
        &mut self,
        admin_pin: &Pin,
        unlock: Option<&UnlockSecret>,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let opened =
            self.present(Credential::Admin, &admin_pin.0, unlock, Event::AdminAuth, now, peer)?;
        if let Store::Ready(r) = &mut self.store {
            // One admin window at a time: the newest authentication takes it.
            r.admin = Some(AdminWindow { peer: peer.id, opened, last_use_ms: now.mono_ms });
        }
        Ok(Response::Ok)
    }

    /// Lock: the staff unlock ends (for everyone) and the asker's admin window closes. Always
    /// succeeds; the audit line is best effort, as taking rights away must never fail.
    pub(super) fn lock(&mut self, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        let Store::Ready(r) = &mut self.store else { return Ok(Response::Ok) };
        let had_staff =
            r.staff.take().is_some() && (r.file.staff_pin_set() || r.file.split_custody());
        let had_admin = r.admin.as_ref().is_some_and(|w| w.peer == peer.id);
        if had_admin {
            r.admin = None;
        }
        self.open_without_pin(now);
        if had_staff {
            let _ = self.log(now, Event::Lock, "-", 0, 0, &peer.label);
        }
        if had_admin {
            let _ = self.log(now, Event::AdminEnd, "-", 0, 0, &peer.label);
        }
        Ok(Response::Ok)
    }

    pub(super) fn end_admin(&mut self, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        if let Store::Ready(r) = &mut self.store
            && r.admin.as_ref().is_some_and(|w| w.peer == peer.id)
        {
            r.admin = None;
            let _ = self.log(now, Event::AdminEnd, "-", 0, 0, &peer.label);
        }
        Ok(Response::Ok)
    }

    /// The admin window's keys and halves (the policy has checked it is this peer's).
    pub(super) fn admin_keys(&self) -> Result<(&Keys, &Halves), DongleError> {
        let w = self.ready()?.admin.as_ref().ok_or(DongleError::AdminRequired)?;
        Ok((&w.opened.keys, &w.opened.halves))
    }

    /// Re-seal the store with the admin window's keys and `slots`.
    pub(super) fn rewrite_slots(
        &mut self,
        slots: &[Slot],
        halves: &Halves,
    ) -> Result<(), DongleError> {
        let keys = self.admin_keys()?.0.duplicate();
        let active = self.active_version();
        self.write_store(&keys, active, slots, halves)
    }

    /// Whether `secret` opens `who`'s slot (to refuse a staff PIN equal to the admin PIN).
    /// Not counted: only an admin, in its window, can ask.
    fn opens(&self, who: Credential, secret: &[u8]) -> Result<bool, DongleError> {
        match self.ready()?.file.device_half(who, &self.binding, secret) {
            Ok(_) => Ok(true),
            Err(KeyStoreError::WrongKey | KeyStoreError::NoSlot) => Ok(false),
            Err(_) => Err(DongleError::KeyStoreDamaged),
        }
    }

    pub(super) fn set_staff_pin(
        &mut self,
        new: Option<Pin>,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        if let Some(p) = &new {
            check_len(Credential::Staff, &p.0)?;
            if self.opens(Credential::Admin, &p.0)? {
                return Err(DongleError::SamePin);
            }
        }
        let halves = self.admin_keys()?.1.duplicate();
        let mut slots: Vec<Slot> = self
            .ready()?
            .file
            .slots()
            .iter()
            .filter(|s| !matches!(s.kind(), SlotKind::StaffPin | SlotKind::StaffOpen))
            .cloned()
            .collect();
        slots.insert(0, self.staff_slot(new.as_ref(), &halves)?);
        let event = if new.is_some() { Event::StaffPinSet } else { Event::StaffPinRemoved };
        self.logged(now, event, "-", peer, |d| {
            d.rewrite_slots(&slots, &halves)?;
            let counters = d.ready()?.counters;
            d.write_counters(counters.with(Credential::Staff, 0))?;
            // Whoever was unlocked with the old PIN is not any more.
            if let Store::Ready(r) = &mut d.store {
                r.staff = None;
            }
            d.open_without_pin(now);
            Ok(Response::Ok)
        })
    }

    pub(super) fn change_admin_pin(
        &mut self,
        new: &Pin,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        check_len(Credential::Admin, &new.0)?;
        if self.ready()?.file.staff_pin_set() && self.opens(Credential::Staff, &new.0)? {
            return Err(DongleError::SamePin);
        }
        let halves = self.admin_keys()?.1.duplicate();
        let mut slots: Vec<Slot> = self
            .ready()?
            .file
            .slots()
            .iter()
            .filter(|s| s.kind() != SlotKind::Admin)
            .cloned()
            .collect();
        slots.push(self.device_slot(SlotKind::Admin, &new.0, &halves)?);
        self.logged(now, Event::AdminPinChanged, "-", peer, |d| {
            d.rewrite_slots(&slots, &halves)?;
            let counters = d.ready()?.counters;
            d.write_counters(counters.with(Credential::Admin, 0))?;
            Ok(Response::Ok)
        })
    }

    pub(super) fn active_version(&self) -> u32 {
        self.ready()
            .ok()
            .and_then(|r| r.file.public().iter().find(|p| p.active))
            .map_or(1, |p| p.version)
    }

    pub(super) fn factory_reset(&mut self, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        // A broken log is the one way back from: set it aside (kept as evidence, renamed) and
        // start a new chain whose first line says how many files were set aside.
        if !self.audit.intact() {
            let moved =
                self.audit.set_aside(&mut self.storage, now.unix_secs).map_err(storage_failed)?;
            self.log(now, Event::LogSetAside, "-", moved, 0, &peer.label)?;
        }
        // The audit log survives a reset: it is the evidence of what happened before. The
        // device key stays: it is the dongle's identity, not a secret of the shop's.
        self.logged(now, Event::FactoryReset, "-", peer, |d| {
            d.storage.remove(File::KeyStore).map_err(storage_failed)?;
            d.storage.remove(File::PinCounter).map_err(storage_failed)?;
            d.storage.remove(File::Pairings).map_err(storage_failed)?;
            d.store = Store::Empty { clone_key: None };
            d.pairings = super::Pairings::Hosts(Vec::new());
            Ok(Response::Ok)
        })
    }
}
