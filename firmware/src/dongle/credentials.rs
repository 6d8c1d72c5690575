//! The two credentials: setting them (init), presenting them (unlock, admin auth — the one
//! counted path), changing them, and ending what they opened.

use subtle::ConstantTimeEq;
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::wire::{
    DongleError, MAX_PIN_LEN, MIN_ADMIN_PIN_LEN, MIN_PIN_LEN, Pin, Response,
};

use super::{
    AdminWindow, Dongle, Now, Opened, Peer, Platform, Ready, StaffUnlock, Store, key_infos,
    storage_failed,
};
use crate::audit::Event;
use crate::keystore::{
    self, Credential, KeyStore, KeyStoreError, Keys, MasterKey, NewStore, Slot, SlotKind,
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

    /// Present `who`'s credential: its counter is written **before** the comparison and
    /// reset only by a correct entry. The one place a PIN is checked.
    fn present(
        &mut self,
        who: Credential,
        secret: &[u8],
        now: Now,
        peer: &Peer,
    ) -> Result<(MasterKey, Keys), DongleError> {
        let (file, counters) = {
            let r = self.ready()?;
            (r.file.clone(), r.counters)
        };
        let max = self.max_tries(who);
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
        self.write_counters(counters.with(who, before.saturating_add(1)))?;
        let opened = file.unwrap(who, &self.binding, secret).and_then(|mk| {
            let keys = file.open(&mk)?;
            Ok((mk, keys))
        });
        match opened {
            Ok(opened) => {
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
                tracing::error!("{e}");
                self.write_counters(counters)?;
                Err(DongleError::KeyStoreDamaged)
            }
        }
    }

    fn slot(&mut self, kind: SlotKind, secret: &[u8], mk: &MasterKey) -> Result<Slot, DongleError> {
        let salt = *self.random::<16>()?;
        let nonce = *self.random::<12>()?;
        Slot::wrap(kind, self.cfg.kdf, salt, nonce, &self.binding, secret, mk)
            .map_err(|_| DongleError::Storage)
    }

    fn staff_slot(&mut self, pin: Option<&Pin>, mk: &MasterKey) -> Result<Slot, DongleError> {
        match pin {
            Some(p) => self.slot(SlotKind::StaffPin, &p.0, mk),
            None => self.slot(SlotKind::StaffOpen, b"", mk),
        }
    }

    /// Seal `keys` with `mk` under `slots` into the key store file, crash-safely, and make
    /// it the dongle's store. Whoever holds the keys (staff unlock, admin window) sees the
    /// new versions.
    pub(super) fn write_store(
        &mut self,
        keys: &Keys,
        active: u32,
        slots: &[Slot],
        mk: &MasterKey,
    ) -> Result<(), DongleError> {
        let nonce = *self.random::<12>()?;
        let bytes = keystore::seal(
            &NewStore {
                keys: &keys.keys,
                active,
                slots,
                otp_used: self.binding.device_secret.is_some(),
                nonce,
            },
            mk,
        )
        .map_err(|_| DongleError::Storage)?;
        self.storage.store(File::KeyStore, &bytes).map_err(storage_failed)?;
        let file = KeyStore::parse(&bytes).map_err(|_| DongleError::Storage)?;
        match &mut self.store {
            Store::Ready(r) => {
                r.file = file;
                for opened in [
                    r.staff.as_mut().map(|s| &mut s.opened),
                    r.admin.as_mut().map(|a| &mut a.opened),
                ]
                .into_iter()
                .flatten()
                {
                    opened.keys = keys.duplicate();
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
        let mk = self.random::<32>()?;
        let slots =
            [self.staff_slot(pin.as_ref(), &mk)?, self.slot(SlotKind::Admin, &admin_pin.0, &mk)?];
        // Counters first: a key store without them is treated as tampered with.
        self.storage
            .store(File::PinCounter, &Counters::default().encode())
            .map_err(storage_failed)?;
        self.write_store(&keys, active, &slots, &mk)?;
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
        let answer = self.install(Keys { keys: vec![(1, key)] }, 1, pin, &admin_pin, now)?;
        self.log(now, Event::Init, &key_id, 0, 0, &peer.label)?;
        Ok(answer)
    }

    pub(super) fn unlock(
        &mut self,
        pin: &Pin,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        if !self.ready()?.file.staff_pin_set() {
            self.open_without_pin(now);
            return Ok(Response::Ok);
        }
        let (mk, keys) = self.present(Credential::Staff, &pin.0, now, peer)?;
        if let Store::Ready(r) = &mut self.store {
            r.staff = Some(StaffUnlock { opened: Opened { keys, mk }, last_use_ms: now.mono_ms });
        }
        self.log(now, Event::UnlockOk, "-", 0, 0, &peer.label)?;
        Ok(Response::Ok)
    }

    pub(super) fn admin_auth(
        &mut self,
        admin_pin: &Pin,
        now: Now,
        peer: &Peer,
    ) -> Result<Response, DongleError> {
        let (mk, keys) = self.present(Credential::Admin, &admin_pin.0, now, peer)?;
        if let Store::Ready(r) = &mut self.store {
            // One admin window at a time: the newest authentication takes it.
            r.admin = Some(AdminWindow {
                peer: peer.id,
                opened: Opened { keys, mk },
                last_use_ms: now.mono_ms,
            });
        }
        self.log(now, Event::AdminAuth, "-", 0, 0, &peer.label)?;
        Ok(Response::Ok)
    }

    /// Lock: the staff unlock ends (for everyone) and the asker's admin window closes. Always
    /// succeeds; the audit line is best effort, as taking rights away must never fail.
    pub(super) fn lock(&mut self, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        let Store::Ready(r) = &mut self.store else { return Ok(Response::Ok) };
        let had_staff = r.staff.take().is_some() && r.file.staff_pin_set();
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

    /// The admin window's keys and master key (the policy has checked it is this peer's).
    pub(super) fn admin_keys(&self) -> Result<(&Keys, &MasterKey), DongleError> {
        let w = self.ready()?.admin.as_ref().ok_or(DongleError::AdminRequired)?;
        Ok((&w.opened.keys, &w.opened.mk))
    }

    /// Re-seal the store with the admin window's keys and `slots`.
    fn rewrite_slots(&mut self, slots: &[Slot]) -> Result<(), DongleError> {
        let (keys, mk) = self.admin_keys()?;
        let (keys, mk) = (keys.duplicate(), mk.clone());
        let active = self.active_version();
        self.write_store(&keys, active, slots, &mk)
    }

    /// Whether `secret` opens `who`'s slot (to refuse a staff PIN equal to the admin PIN).
    /// Not counted: only an admin, in its window, can ask.
    fn opens(&self, who: Credential, secret: &[u8]) -> Result<bool, DongleError> {
        match self.ready()?.file.unwrap(who, &self.binding, secret) {
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
        let mk = self.admin_keys()?.1.clone();
        let mut slots: Vec<Slot> = self
            .ready()?
            .file
            .slots()
            .iter()
            .filter(|s| s.kind() == SlotKind::Admin)
            .cloned()
            .collect();
        slots.insert(0, self.staff_slot(new.as_ref(), &mk)?);
        self.rewrite_slots(&slots)?;
        let counters = self.ready()?.counters;
        self.write_counters(counters.with(Credential::Staff, 0))?;
        // Whoever was unlocked with the old PIN is not any more.
        if let Store::Ready(r) = &mut self.store {
            r.staff = None;
        }
        self.open_without_pin(now);
        let event = if new.is_some() { Event::StaffPinSet } else { Event::StaffPinRemoved };
        self.log(now, event, "-", 0, 0, &peer.label)?;
        Ok(Response::Ok)
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
        let mk = self.admin_keys()?.1.clone();
        let mut slots: Vec<Slot> = self
            .ready()?
            .file
            .slots()
            .iter()
            .filter(|s| s.kind() != SlotKind::Admin)
            .cloned()
            .collect();
        slots.push(self.slot(SlotKind::Admin, &new.0, &mk)?);
        self.rewrite_slots(&slots)?;
        let counters = self.ready()?.counters;
        self.write_counters(counters.with(Credential::Admin, 0))?;
        self.log(now, Event::AdminPinChanged, "-", 0, 0, &peer.label)?;
        Ok(Response::Ok)
    }

    pub(super) fn active_version(&self) -> u32 {
        self.ready()
            .ok()
            .and_then(|r| r.file.public().iter().find(|p| p.active))
            .map_or(1, |p| p.version)
    }

    pub(super) fn factory_reset(&mut self, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        self.storage.remove(File::KeyStore).map_err(storage_failed)?;
        self.storage.remove(File::PinCounter).map_err(storage_failed)?;
        self.storage.remove(File::Pairings).map_err(storage_failed)?;
        self.store = Store::Empty { clone_key: None };
        self.pairings = super::Pairings::Hosts(Vec::new());
        // The audit log survives a reset: it is the evidence of what happened before. The
        // device key stays: it is the dongle's identity, not a secret of the shop's.
        self.log(now, Event::FactoryReset, "-", 0, 0, &peer.label)?;
        Ok(Response::Ok)
    }
}
