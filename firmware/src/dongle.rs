//! The dongle's state machine: one request in, one response out. No sockets, no files, no
//! clock: storage and the platform (RNG, button, LED) are passed in, and so is the time.

use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::wire::{
    self, DongleError, HelloInfo, ItemError, KeyInfo, Limits, LockState, MAX_BATCH, MAX_PIN_LEN,
    MIN_PIN_LEN, PairingInfo, Pin, Plaintext, Request, Response, SealedItem,
};
use vbzkey_protocol::{KeyId, PublicKey, SecretKey};
use zeroize::Zeroizing;

use crate::audit::{self, AuditLog, Event};
use crate::backup::{self, KeySet, PlatformRng};
use crate::keystore::{
    self, Binding, KdfParams, KeyStore, KeyStoreError, Keys, NewStore, PublicEntry,
};
use crate::pin_counter;
use crate::ratelimit::TokenBucket;
use crate::storage::{File, Storage, StorageError};

/// Most audit lines one `AuditTail` returns: about 1.5 MB, inside one frame.
const MAX_AUDIT_TAIL: usize = 10_000;
/// Most recovery shares one backup makes: enough for any board of trustees, small enough to
/// print.
const MAX_SHARES: u8 = 16;
/// Context under which a clone's key set is sealed to the target's transfer key.
const CLONE_CONTEXT: &[u8] = b"vbzkey clone v1";

/// The time, as the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// A monotonic clock in milliseconds (idle lock, rate limit).
    pub mono_ms: u64,
    /// Wall-clock seconds since the Unix epoch, for the audit log. The Pi Zero has no RTC, so
    /// this is only as right as the board's clock.
    pub unix_secs: u64,
}

/// The platform's random number generator failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the random number generator failed")]
pub struct RngFailed;

/// What the core needs from the board besides storage.
pub trait Platform {
    /// Fill `buf` from a CSPRNG.
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed>;
    /// Ask the user to press the button; true if they did in time.
    fn confirm(&mut self) -> bool;
    /// Show the lock state (LED).
    fn show(&mut self, unlocked: bool);
}

/// Policy knobs. Defaults are what a shop should run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Wrong PINs before lock-out. 8, like many smart cards: enough for typos, far too few
    /// to guess a 6-digit PIN (8 in a million).
    pub max_pin_tries: u8,
    /// Idle time before the keys are forgotten: 15 minutes, a staff member's coffee break.
    pub idle_lock_ms: u64,
    /// Sustained records per minute: 600 is ten a second, far above what a person reads and
    /// far below a bulk dump (a million records would take over a day).
    pub records_per_minute: u32,
    /// Burst size: one full batch plus some, so a page of records opens at once.
    pub burst: u32,
    /// Batches larger than this need the button; `None` disables the check.
    pub confirm_batch_over: Option<u16>,
    /// Argon2id cost for new key stores.
    pub kdf: KdfParams,
    /// Reported by `Hello`.
    pub firmware_version: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_pin_tries: 8,
            idle_lock_ms: 15 * 60 * 1000,
            records_per_minute: 600,
            burst: MAX_BATCH as u32 + 44,
            confirm_batch_over: None,
            kdf: KdfParams::PI_ZERO,
            firmware_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

struct Unlocked {
    keys: Keys,
    kek: Zeroizing<[u8; 32]>,
}

/// The dongle.
pub struct Dongle<S: Storage, P: Platform> {
    cfg: Config,
    storage: S,
    platform: P,
    binding: Binding,
    /// Parsed public facts of the key store, `None` when uninitialised.
    store: Option<KeyStore>,
    store_damaged: bool,
    unlocked: Option<Unlocked>,
    failures: u8,
    last_activity_ms: u64,
    bucket: TokenBucket,
    audit: AuditLog,
    /// A clone target's transfer key: RAM only, gone at restart.
    clone_key: Option<SecretKey>,
    /// The key host sessions are made with (`None` only if the RNG failed at first start).
    device_key: Option<Zeroizing<[u8; 32]>>,
    /// Paired hosts; `Err` when the file is damaged (then no host is served until re-paired).
    pairings: Result<Vec<PairingInfo>, ()>,
    /// Whether an admin PIN is set (its verifier file exists).
    admin_pin_set: bool,
    /// Admin requests are allowed until this monotonic time.
    admin_until_ms: Option<u64>,
}

fn storage_failed(e: StorageError) -> DongleError {
    tracing::error!("storage: {e}");
    DongleError::Storage
}

/// A key store that would not open for a reason other than the PIN.
fn store_error(e: KeyStoreError) -> DongleError {
    match e {
        KeyStoreError::MissingDeviceSecret => DongleError::DeviceSecretMissing,
        _ => DongleError::KeyStoreDamaged,
    }
}

fn check_pin(pin: &Pin) -> Result<(), DongleError> {
    if (MIN_PIN_LEN..=MAX_PIN_LEN).contains(&pin.0.len()) {
        Ok(())
    } else {
        Err(DongleError::BadPin)
    }
}

impl<S: Storage, P: Platform> Dongle<S, P> {
    /// Start: verify the audit log, read the key store and the PIN counter. A key store
    /// without a PIN is opened right away.
    pub fn start(
        cfg: Config,
        mut storage: S,
        platform: P,
        binding: Binding,
        now: Now,
    ) -> Result<Self, StorageError> {
        let audit = AuditLog::open(&mut storage, now.unix_secs)?;
        if !audit.intact() {
            tracing::error!(
                "the audit log does not verify; unsealing is refused until an admin checks it"
            );
        }
        let bucket = TokenBucket::new(cfg.burst, cfg.records_per_minute, now.mono_ms);
        let mut d = Dongle {
            cfg,
            storage,
            platform,
            binding,
            store: None,
            store_damaged: false,
            unlocked: None,
            failures: 0,
            last_activity_ms: now.mono_ms,
            bucket,
            audit,
            clone_key: None,
            device_key: None,
            pairings: Ok(Vec::new()),
            admin_pin_set: false,
            admin_until_ms: None,
        };
        d.admin_pin_set = d.storage.load(File::AdminPin)?.is_some();
        let platform = &mut d.platform;
        let mut fill = |b: &mut [u8]| platform.fill_random(b).is_ok();
        d.device_key = crate::pairing::device_key(&mut d.storage, &d.binding, &mut fill)?;
        if d.device_key.is_none() {
            tracing::error!(
                "the device key could not be made or opened: host sessions are unavailable"
            );
        }
        d.pairings = crate::pairing::load(&d.storage)?;
        if d.pairings.is_err() {
            tracing::error!(
                "the pairings file is damaged: no host is served until hosts are paired again"
            );
        }
        if let Some(bytes) = d.storage.load(File::KeyStore)? {
            match KeyStore::parse(&bytes) {
                Ok((store, _)) => d.store = Some(store),
                Err(e) => {
                    tracing::error!("{e}; it is left untouched");
                    d.store_damaged = true;
                }
            }
            // The counter is written before the key store at init, so a store without a
            // counter means the card was edited: fail closed.
            d.failures = match d.storage.load(File::PinCounter)?.as_deref().map(pin_counter::decode)
            {
                Some(Some(n)) => n,
                _ => {
                    tracing::error!(
                        "the PIN counter is missing or damaged; treating the dongle as locked out"
                    );
                    d.cfg.max_pin_tries
                }
            };
        }
        if d.device_secret_missing() {
            tracing::error!(
                "the key store is sealed to this board's OTP device secret, which was not given \
                 (--otp-dump): it stays closed and no PIN is counted until the secret is back"
            );
        }
        if d.store.as_ref().is_some_and(|s| !s.pin_set()) {
            let _ = d.open_keys(None);
        }
        let unlocked = d.unlocked.is_some();
        d.platform.show(unlocked);
        Ok(d)
    }

    /// The storage (tests use it to simulate a restart).
    pub fn into_storage(self) -> S {
        self.storage
    }

    fn state(&self) -> LockState {
        match &self.store {
            None if !self.store_damaged => LockState::Uninitialised,
            Some(_) if self.device_secret_missing() => LockState::DeviceSecretMissing,
            Some(s) if s.pin_set() && self.failures >= self.cfg.max_pin_tries => {
                LockState::LockedOut
            }
            _ if self.unlocked.is_some() => LockState::Unlocked,
            _ => LockState::Locked,
        }
    }

    fn log(
        &mut self,
        now: Now,
        event: Event,
        keys: &str,
        ok: u32,
        failed: u32,
        host: &str,
    ) -> Result<(), DongleError> {
        let rec = audit::Record { event, keys, ok, failed, host };
        self.audit.append(&mut self.storage, now.unix_secs, &rec).map_err(storage_failed)
    }

    fn set_failures(&mut self, n: u8) -> Result<(), DongleError> {
        self.storage.store(File::PinCounter, &pin_counter::encode(n)).map_err(storage_failed)?;
        self.failures = n;
        Ok(())
    }

    /// Open the key store with the KEK for `pin`.
    fn open_keys(&mut self, pin: Option<&[u8]>) -> Result<(), KeyStoreError> {
        let bytes = self
            .storage
            .load(File::KeyStore)
            .map_err(|_| KeyStoreError::Damaged("unreadable"))?
            .ok_or(KeyStoreError::Damaged("missing"))?;
        let (store, sealed) = KeyStore::parse(&bytes)?;
        let kek = store.kek(&self.binding, pin)?;
        let keys = sealed.open(&kek, store.public())?;
        self.unlocked = Some(Unlocked { keys, kek });
        self.store = Some(store);
        Ok(())
    }

    fn require_store(&self) -> Result<&KeyStore, DongleError> {
        if self.store_damaged {
            return Err(DongleError::KeyStoreDamaged);
        }
        self.store.as_ref().ok_or(DongleError::NotInitialised)
    }

    /// The key store is sealed to an OTP secret this board was not given (checked before any
    /// PIN is counted: without the secret the right PIN would look wrong).
    fn device_secret_missing(&self) -> bool {
        self.store.as_ref().is_some_and(KeyStore::otp_used) && self.binding.device_secret.is_none()
    }

    fn require_unlocked(&mut self) -> Result<(), DongleError> {
        let pin_set = self.require_store()?.pin_set();
        if self.device_secret_missing() {
            return Err(DongleError::DeviceSecretMissing);
        }
        if self.state() == LockState::LockedOut {
            return Err(DongleError::LockedOut);
        }
        if self.unlocked.is_none() && !pin_set {
            self.open_keys(None).map_err(store_error)?;
        }
        if self.unlocked.is_none() { Err(DongleError::Locked) } else { Ok(()) }
    }

    fn random<const N: usize>(&mut self) -> Result<Zeroizing<[u8; N]>, DongleError> {
        let mut b = Zeroizing::new([0u8; N]);
        self.platform.fill_random(&mut b[..]).map_err(|RngFailed| DongleError::Rng)?;
        Ok(b)
    }

    /// Forget the keys if the dongle has been idle too long. Transports call this
    /// periodically so keys do not linger in memory between requests.
    pub fn tick(&mut self, now: Now) {
        let pin_set = self.store.as_ref().is_some_and(KeyStore::pin_set);
        let idle = now.mono_ms.saturating_sub(self.last_activity_ms) >= self.cfg.idle_lock_ms;
        if pin_set && idle && self.unlocked.is_some() {
            self.unlocked = None;
            self.admin_until_ms = None;
            self.platform.show(false);
            let _ = self.log(now, Event::IdleLock, "-", 0, 0, "firmware");
        }
    }

    /// Decode one frame payload, handle it, and encode the answer as a full frame. Malformed
    /// input gets an error response, never a panic.
    pub fn handle_frame(&mut self, payload: &[u8], now: Now, host: &str) -> Vec<u8> {
        match wire::decode::<Request>(payload) {
            Ok((id, req)) => wire::encode(id, &self.handle(req, now, host)),
            Err((id, e)) => {
                tracing::warn!("bad request from {host}: {e}");
                let err = match e {
                    wire::WireError::UnsupportedProtocolVersion(_) => {
                        DongleError::UnsupportedVersion
                    }
                    _ => DongleError::Malformed,
                };
                wire::encode(id.unwrap_or(0), &Response::Error(err))
            }
        }
    }

    /// Handle one request.
    pub fn handle(&mut self, req: Request, now: Now, host: &str) -> Response {
        self.tick(now);
        let result = match req {
            Request::Hello => Ok(Response::Hello(self.hello())),
            Request::Init { pin, admin_pin } => self.init(pin, admin_pin, now, host),
            Request::AdminAuth { admin_pin } => self.admin_auth(&admin_pin, now, host),
            Request::Unlock { pin } => self.unlock(&pin, now, host),
            Request::Lock => self.lock(now, host),
            Request::PublicKeys => {
                self.require_store().map(|s| Response::PublicKeys(key_infos(s.public())))
            }
            Request::UnsealBatch { items } => self.unseal(&items, now, host),
            Request::Rewrap { items, new_public_key } => {
                self.rewrap(&items, new_public_key, now, host)
            }
            Request::AuditTail { max } => self.audit_tail(max),
            Request::ChangePin { old, new } => self.change_pin(old, new, now, host),
            Request::Rotate => self.rotate(now, host),
            Request::Retire { key_id } => self.retire(key_id, now, host),
            Request::FactoryReset => self.factory_reset(now, host),
            Request::Backup { threshold, count } => self.backup(threshold, count, now, host),
            Request::Restore { shares, pin } => self.restore(&shares, pin, now, host),
            Request::CloneBegin => self.clone_begin(),
            Request::CloneExport { to } => self.clone_export(to, now, host),
            Request::CloneImport { blob, pin } => self.clone_import(&blob, pin, now, host),
            Request::DeviceKey => {
                self.device_public().map(Response::DeviceKey).ok_or(DongleError::Storage)
            }
            Request::Pair { host_key, label } => self.pair(host_key, label, now, host),
            Request::Unpair { host_key } => self.unpair(host_key, now, host),
            Request::Pairings => Ok(Response::Pairings(self.pairings.clone().unwrap_or_default())),
        };
        if result.is_ok() {
            self.last_activity_ms = now.mono_ms;
        }
        let unlocked = self.unlocked.is_some();
        self.platform.show(unlocked);
        result.unwrap_or_else(Response::Error)
    }

    fn hello(&self) -> HelloInfo {
        let pin_set = self.store.as_ref().is_some_and(KeyStore::pin_set);
        HelloInfo {
            firmware_version: self.cfg.firmware_version.clone(),
            protocol_version: wire::PROTOCOL_VERSION,
            serial: self.binding.serial.clone(),
            state: self.state(),
            pin_set,
            pin_tries_left: self.cfg.max_pin_tries.saturating_sub(self.failures),
            keys: self.store.as_ref().map(|s| key_infos(s.public())).unwrap_or_default(),
            limits: Limits {
                max_frame_payload: wire::MAX_FRAME_PAYLOAD as u32,
                max_batch: MAX_BATCH as u16,
                records_per_minute: self.cfg.records_per_minute,
                burst: self.cfg.burst,
                max_pin_tries: self.cfg.max_pin_tries,
                idle_lock_secs: (self.cfg.idle_lock_ms / 1000) as u32,
                confirm_batch_over: self.cfg.confirm_batch_over,
            },
            audit_intact: self.audit.intact(),
            paired_hosts: self.pairings.as_ref().map_or(0, |p| p.len() as u16),
            admin_pin_set: self.admin_pin_set,
        }
    }

    /// Seal `keys` to a new store file, under a KEK for `pin` (fresh salt) or the current KEK.
    fn write_store(
        &mut self,
        keys: Keys,
        active: u32,
        pin: Option<Option<&Pin>>,
    ) -> Result<(), DongleError> {
        let (kdf, salt, pin_set, otp_used, kek) = match pin {
            // A new PIN (or none): fresh salt, fresh KEK.
            Some(new_pin) => {
                let salt = *self.random::<16>()?;
                let kek = keystore::derive_kek(
                    self.cfg.kdf,
                    &salt,
                    &self.binding,
                    new_pin.map(|p| &p.0[..]),
                );
                (self.cfg.kdf, salt, new_pin.is_some(), self.binding.device_secret.is_some(), kek)
            }
            // Same PIN: same salt and KEK.
            None => {
                let store = self.require_store()?;
                let (kdf, salt) = store.kdf();
                let kek = self.unlocked.as_ref().ok_or(DongleError::Locked)?.kek.clone();
                (kdf, salt, store.pin_set(), store.otp_used(), kek)
            }
        };
        let nonce = *self.random::<12>()?;
        let bytes = keystore::seal(
            &NewStore { kdf, salt, pin_set, otp_used, nonce, keys: &keys.keys, active },
            &kek,
        );
        self.storage.store(File::KeyStore, &bytes).map_err(storage_failed)?;
        let (store, _) = KeyStore::parse(&bytes).map_err(|_| DongleError::Storage)?;
        self.store = Some(store);
        self.store_damaged = false;
        self.unlocked = Some(Unlocked { keys, kek });
        Ok(())
    }

    fn new_key(&mut self) -> Result<SecretKey, DongleError> {
        Ok(SecretKey::from_bytes(*self.random::<32>()?))
    }

    fn init(
        &mut self,
        pin: Option<Pin>,
        admin_pin: Option<Pin>,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        if self.store.is_some() || self.store_damaged {
            return Err(DongleError::AlreadyInitialised);
        }
        if let Some(p) = &pin {
            check_pin(p)?;
        }
        if let Some(a) = &admin_pin {
            check_pin(a)?;
            let salt = *self.random::<16>()?;
            let file = crate::admin_pin::make(&a.0, salt, self.cfg.kdf);
            self.storage.store(File::AdminPin, &file).map_err(storage_failed)?;
            self.admin_pin_set = true;
        }
        let key = self.new_key()?;
        let key_id = key.key_id().to_string();
        // Counter first: a key store without a counter is treated as tampered with.
        self.set_failures(0)?;
        self.write_store(Keys { keys: vec![(1, key)] }, 1, Some(pin.as_ref()))?;
        self.log(now, Event::Init, &key_id, 0, 0, host)?;
        Ok(Response::PublicKeys(key_infos(self.store.as_ref().expect("just written").public())))
    }

    /// Check a PIN the way `Unlock` does: counter written before the comparison.
    fn verify_pin(&mut self, pin: &Pin, now: Now, host: &str) -> Result<(), DongleError> {
        self.require_store()?;
        if self.device_secret_missing() {
            return Err(DongleError::DeviceSecretMissing);
        }
        if self.state() == LockState::LockedOut {
            return Err(DongleError::LockedOut);
        }
        check_pin(pin)?;
        let before = self.failures;
        self.set_failures(before.saturating_add(1))?;
        match self.open_keys(Some(&pin.0)) {
            Ok(()) => {
                self.set_failures(0)?;
                Ok(())
            }
            Err(KeyStoreError::WrongKey) => {
                let left = self.cfg.max_pin_tries.saturating_sub(self.failures);
                if left == 0 {
                    self.unlocked = None;
                    self.log(now, Event::LockedOut, "-", 0, 1, host)?;
                    Err(DongleError::LockedOut)
                } else {
                    self.log(now, Event::UnlockFailed, "-", 0, 1, host)?;
                    Err(DongleError::WrongPin { tries_left: left })
                }
            }
            Err(e) => {
                // Not a PIN failure: give the try back.
                tracing::error!("{e}");
                self.set_failures(before)?;
                Err(store_error(e))
            }
        }
    }

    fn unlock(&mut self, pin: &Pin, now: Now, host: &str) -> Result<Response, DongleError> {
        if !self.require_store()?.pin_set() {
            self.require_unlocked()?;
            return Ok(Response::Ok);
        }
        self.verify_pin(pin, now, host)?;
        self.log(now, Event::UnlockOk, "-", 0, 0, host)?;
        Ok(Response::Ok)
    }

    fn lock(&mut self, now: Now, host: &str) -> Result<Response, DongleError> {
        self.admin_until_ms = None;
        if self.unlocked.take().is_some() {
            self.log(now, Event::Lock, "-", 0, 0, host)?;
        }
        Ok(Response::Ok)
    }

    fn check_batch(&mut self, n: usize) -> Result<(), DongleError> {
        self.require_store()?;
        if !self.audit.intact() {
            return Err(DongleError::AuditBroken);
        }
        if n == 0 || n > MAX_BATCH {
            return Err(DongleError::BadBatchSize);
        }
        self.require_unlocked()
    }

    /// Open one item with whichever held key its key id names.
    fn open_item(&self, item: &SealedItem) -> Result<(KeyId, Zeroizing<Vec<u8>>), ItemError> {
        let keys = &self.unlocked.as_ref().expect("checked by check_batch").keys;
        let rec = Record::parse(&item.record).map_err(|e| ItemError::Record((&e).into()))?;
        let key = keys.by_id(rec.key_id()).ok_or(ItemError::NoSuchKey)?;
        let pt = rec.open(key, &item.context).map_err(|e| ItemError::Record((&e).into()))?;
        Ok((rec.key_id(), pt))
    }

    fn unseal(
        &mut self,
        items: &[SealedItem],
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.check_batch(items.len())?;
        self.bucket
            .take(items.len() as u32, now.mono_ms)
            .map_err(|retry_after_ms| DongleError::RateLimited { retry_after_ms })?;
        if self.cfg.confirm_batch_over.is_some_and(|limit| items.len() > usize::from(limit))
            && !self.platform.confirm()
        {
            return Err(DongleError::NotConfirmed);
        }
        let mut used = KeyIds::default();
        let results: Vec<Result<Plaintext, ItemError>> = items
            .iter()
            .map(|item| {
                self.open_item(item).map(|(id, pt)| {
                    used.add(id);
                    Plaintext(pt)
                })
            })
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count() as u32;
        // Logged before anything is answered: no plaintext leaves without its audit line.
        self.log(now, Event::Unseal, &used.text(), ok, items.len() as u32 - ok, host)?;
        Ok(Response::Unsealed(results))
    }

    fn rewrap(
        &mut self,
        items: &[SealedItem],
        to: [u8; 32],
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.check_batch(items.len())?;
        // Re-wrapping to a foreign key would be exfiltration without the rate limit; the
        // target must be one of this dongle's own keys (normally the one just rotated to).
        if !self.require_store()?.public().iter().any(|p| p.public_key == to) {
            return Err(DongleError::NotAllowed);
        }
        let target = PublicKey::from_bytes(to);
        let mut used = KeyIds::default();
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = match self.open_item(item) {
                Ok((id, pt)) => {
                    used.add(id);
                    let eph = self.random::<32>()?;
                    record::seal_with_ephemeral(&target, &item.context, &pt, eph)
                        .map_err(|e| ItemError::Record((&e).into()))
                }
                Err(e) => Err(e),
            };
            results.push(result);
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u32;
        self.log(now, Event::Rewrap, &used.text(), ok, items.len() as u32 - ok, host)?;
        Ok(Response::Rewrapped(results))
    }

    fn audit_tail(&mut self, max: u16) -> Result<Response, DongleError> {
        let lines = AuditLog::tail(&self.storage, usize::from(max).min(MAX_AUDIT_TAIL))
            .map_err(storage_failed)?;
        Ok(Response::AuditTail {
            entries: lines.into_iter().map(|line| wire::AuditEntry { line }).collect(),
            head: self.audit.head_hex(),
            total: self.audit.len(),
        })
    }

    fn active_version(&self) -> u32 {
        self.store
            .as_ref()
            .and_then(|s| s.public().iter().find(|p| p.active))
            .map_or(1, |p| p.version)
    }

    fn take_keys(&mut self) -> Result<Keys, DongleError> {
        let u = self.unlocked.as_ref().ok_or(DongleError::Locked)?;
        Ok(Keys { keys: u.keys.keys.clone() })
    }

    fn change_pin(
        &mut self,
        old: Option<Pin>,
        new: Option<Pin>,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        if self.require_store()?.pin_set() {
            let old = old.ok_or(DongleError::BadPin)?;
            self.verify_pin(&old, now, host)?;
        } else {
            self.require_unlocked()?;
        }
        if let Some(p) = &new {
            check_pin(p)?;
        }
        let keys = self.take_keys()?;
        let active = self.active_version();
        self.write_store(keys, active, Some(new.as_ref()))?;
        self.log(now, Event::PinChanged, "-", 0, 0, host)?;
        Ok(Response::Ok)
    }

    fn rotate(&mut self, now: Now, host: &str) -> Result<Response, DongleError> {
        self.require_admin(now)?;
        self.require_unlocked()?;
        let mut keys = self.take_keys()?;
        let version = keys.keys.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1;
        let key = self.new_key()?;
        let key_id = key.key_id().to_string();
        keys.keys.push((version, key));
        self.write_store(keys, version, None)?;
        self.log(now, Event::Rotate, &key_id, 0, 0, host)?;
        Ok(Response::PublicKeys(key_infos(self.store.as_ref().expect("written").public())))
    }

    fn retire(&mut self, key_id: KeyId, now: Now, host: &str) -> Result<Response, DongleError> {
        self.require_admin(now)?;
        self.require_unlocked()?;
        let entry = self
            .require_store()?
            .public()
            .iter()
            .find(|p| p.key_id() == key_id)
            .cloned()
            .ok_or(DongleError::NoSuchKey)?;
        if entry.active {
            return Err(DongleError::KeyIsActive);
        }
        let mut keys = self.take_keys()?;
        keys.keys.retain(|(v, _)| *v != entry.version);
        let active = self.active_version();
        self.write_store(keys, active, None)?;
        self.log(now, Event::Retire, &key_id.to_string(), 0, 0, host)?;
        Ok(Response::Ok)
    }

    fn factory_reset(&mut self, now: Now, host: &str) -> Result<Response, DongleError> {
        let allowed = matches!(
            self.state(),
            LockState::Unlocked | LockState::LockedOut | LockState::Uninitialised
        ) || self.store_damaged;
        if !allowed {
            return Err(DongleError::NotAllowed);
        }
        // A locked-out dongle can always be reset: it is the only way back (from a backup).
        if self.state() == LockState::Unlocked {
            self.require_admin(now)?;
        }
        self.storage.remove(File::KeyStore).map_err(storage_failed)?;
        self.storage.remove(File::PinCounter).map_err(storage_failed)?;
        self.storage.remove(File::AdminPin).map_err(storage_failed)?;
        self.admin_pin_set = false;
        self.admin_until_ms = None;
        self.unlocked = None;
        self.store = None;
        self.store_damaged = false;
        self.failures = 0;
        // The audit log survives a reset: it is the evidence of what happened before.
        self.log(now, Event::FactoryReset, "-", 0, 0, host)?;
        Ok(Response::Ok)
    }
}

impl<S: Storage, P: Platform> Dongle<S, P> {
    fn key_set(&mut self) -> Result<KeySet, DongleError> {
        self.require_unlocked()?;
        let active = self.active_version();
        let keys = &self.unlocked.as_ref().ok_or(DongleError::Locked)?.keys;
        Ok(KeySet::from_keys(keys, active))
    }

    /// Store a key set into an uninitialised dongle under `pin` (restore and clone).
    fn install(&mut self, set: KeySet, pin: Option<Pin>) -> Result<String, DongleError> {
        let (keys, active) = set.into_keys().ok_or(DongleError::WrongShare)?;
        let ids =
            keys.keys.iter().map(|(_, k)| k.key_id().to_string()).collect::<Vec<_>>().join(",");
        self.set_failures(0)?;
        self.write_store(keys, active, Some(pin.as_ref()))?;
        Ok(ids)
    }

    fn require_uninitialised(&self, pin: &Option<Pin>) -> Result<(), DongleError> {
        if self.store.is_some() || self.store_damaged {
            return Err(DongleError::AlreadyInitialised);
        }
        pin.as_ref().map_or(Ok(()), check_pin)
    }

    fn backup(
        &mut self,
        threshold: u8,
        count: u8,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_admin(now)?;
        if threshold < 2 || count < threshold || count > MAX_SHARES {
            return Err(DongleError::BadBackupParameters);
        }
        let set = self.key_set()?;
        let secret = set.to_bytes();
        let platform = &mut self.platform;
        let mut fill = |b: &mut [u8]| platform.fill_random(b).is_ok();
        let mut rng = PlatformRng::new(&mut fill);
        let shares = backup::deal(&secret, threshold, count, &mut rng);
        if rng.failed {
            return Err(DongleError::Rng);
        }
        self.log(now, Event::Backup, "-", u32::from(count), u32::from(threshold), host)?;
        Ok(Response::Shares(shares.iter().map(vbzkey_protocol::share::Share::to_text).collect()))
    }

    fn restore(
        &mut self,
        lines: &[String],
        pin: Option<Pin>,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_uninitialised(&pin)?;
        let shares = lines
            .iter()
            .map(|l| vbzkey_protocol::share::Share::from_text(l))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| DongleError::BadShareText)?;
        let secret = backup::combine(&shares).map_err(|e| match e {
            backup::ShareError::Mixed => DongleError::SharesMixed,
            backup::ShareError::TooFew { need, got } => {
                DongleError::TooFewShares { need, got: got.min(255) as u8 }
            }
            backup::ShareError::WrongShare => DongleError::WrongShare,
        })?;
        let set = KeySet::from_bytes(&secret).ok_or(DongleError::WrongShare)?;
        let ids = self.install(set, pin)?;
        self.log(now, Event::Restore, &ids, shares.len() as u32, 0, host)?;
        Ok(Response::PublicKeys(key_infos(self.store.as_ref().expect("written").public())))
    }

    fn clone_begin(&mut self) -> Result<Response, DongleError> {
        self.require_uninitialised(&None)?;
        let key = self.new_key()?;
        let public = *key.public_key().as_bytes();
        self.clone_key = Some(key);
        Ok(Response::CloneKey(public))
    }

    fn clone_export(
        &mut self,
        to: [u8; 32],
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_admin(now)?;
        let set = self.key_set()?;
        // Record values are UTF-8: the key set travels as base64url text inside the record.
        let text = Zeroizing::new(base64url(&set.to_bytes()));
        let target = PublicKey::from_bytes(to);
        let eph = self.random::<32>()?;
        let blob = record::seal_with_ephemeral(&target, CLONE_CONTEXT, text.as_bytes(), eph)
            .map_err(|_| DongleError::BadPublicKey)?;
        self.log(now, Event::CloneExport, &target.key_id().to_string(), 0, 0, host)?;
        Ok(Response::CloneBlob(blob))
    }

    fn clone_import(
        &mut self,
        blob: &[u8],
        pin: Option<Pin>,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_uninitialised(&pin)?;
        let key = self.clone_key.as_ref().ok_or(DongleError::NoCloneInProgress)?;
        let text = record::open(key, CLONE_CONTEXT, blob).map_err(|_| DongleError::BadCloneBlob)?;
        let bytes = Zeroizing::new(unbase64url(&text).ok_or(DongleError::BadCloneBlob)?);
        let set = KeySet::from_bytes(&bytes).ok_or(DongleError::BadCloneBlob)?;
        let ids = self.install(set, pin)?;
        self.clone_key = None;
        self.log(now, Event::CloneImport, &ids, 0, 0, host)?;
        Ok(Response::PublicKeys(key_infos(self.store.as_ref().expect("written").public())))
    }
}

impl<S: Storage, P: Platform> Dongle<S, P> {
    /// Admin requests need a recent `AdminAuth` when an admin PIN is set.
    fn require_admin(&self, now: Now) -> Result<(), DongleError> {
        if self.admin_pin_set && self.admin_until_ms.is_none_or(|t| now.mono_ms >= t) {
            return Err(DongleError::AdminRequired);
        }
        Ok(())
    }

    fn admin_auth(
        &mut self,
        admin_pin: &Pin,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_store()?;
        if !self.admin_pin_set {
            return Ok(Response::Ok);
        }
        if self.state() == LockState::LockedOut {
            return Err(DongleError::LockedOut);
        }
        check_pin(admin_pin)?;
        let file = self
            .storage
            .load(File::AdminPin)
            .map_err(storage_failed)?
            .ok_or(DongleError::Storage)?;
        let before = self.failures;
        // Counted before the comparison, like a staff PIN.
        self.set_failures(before.saturating_add(1))?;
        match crate::admin_pin::verify(&file, &admin_pin.0) {
            Some(true) => {
                self.set_failures(0)?;
                self.admin_until_ms = Some(now.mono_ms + wire::ADMIN_WINDOW_SECS * 1000);
                self.log(now, Event::AdminAuth, "-", 0, 0, host)?;
                Ok(Response::Ok)
            }
            Some(false) => {
                let left = self.cfg.max_pin_tries.saturating_sub(self.failures);
                self.log(now, Event::AdminAuthFailed, "-", 0, 1, host)?;
                if left == 0 {
                    self.unlocked = None;
                    Err(DongleError::LockedOut)
                } else {
                    Err(DongleError::WrongPin { tries_left: left })
                }
            }
            None => {
                self.set_failures(before)?;
                Err(DongleError::KeyStoreDamaged)
            }
        }
    }

    /// The device key's public half.
    pub fn device_public(&self) -> Option<[u8; 32]> {
        self.device_key.as_ref().map(|k| vbzkey_protocol::session::public_of(k))
    }

    /// The device key (for the transports' session handshakes).
    pub fn device_secret(&self) -> Option<&[u8; 32]> {
        self.device_key.as_deref()
    }

    /// Whether plain (unsessioned) requests other than `Hello` and `DeviceKey` are refused.
    pub fn pairing_required(&self) -> bool {
        self.pairings.as_ref().map_or(true, |p| !p.is_empty())
    }

    /// Whether `host_key` is paired.
    pub fn is_paired(&self, host_key: &[u8; 32]) -> bool {
        self.pairings.as_ref().is_ok_and(|p| p.iter().any(|h| &h.host_key == host_key))
    }

    fn pair(
        &mut self,
        host_key: [u8; 32],
        label: String,
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_admin(now)?;
        self.require_unlocked()?;
        if label.len() > crate::pairing::MAX_LABEL || label.chars().any(char::is_control) {
            return Err(DongleError::BadPairing);
        }
        let mut hosts = self.pairings.clone().unwrap_or_default();
        hosts.retain(|h| h.host_key != host_key);
        hosts.push(PairingInfo { host_key, label, paired_at: now.unix_secs });
        crate::pairing::store(&mut self.storage, &hosts).map_err(storage_failed)?;
        self.pairings = Ok(hosts);
        self.log(now, Event::Pair, &KeyId::of(&host_key).to_string(), 0, 0, host)?;
        Ok(Response::Ok)
    }

    fn unpair(
        &mut self,
        host_key: [u8; 32],
        now: Now,
        host: &str,
    ) -> Result<Response, DongleError> {
        self.require_admin(now)?;
        self.require_unlocked()?;
        let mut hosts = self.pairings.clone().unwrap_or_default();
        let before = hosts.len();
        hosts.retain(|h| h.host_key != host_key);
        if hosts.len() == before {
            return Err(DongleError::BadPairing);
        }
        crate::pairing::store(&mut self.storage, &hosts).map_err(storage_failed)?;
        self.pairings = Ok(hosts);
        self.log(now, Event::Unpair, &KeyId::of(&host_key).to_string(), 0, 0, host)?;
        Ok(Response::Ok)
    }
}

fn base64url(b: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::encode_string(b)
}

fn unbase64url(b: &[u8]) -> Option<Vec<u8>> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::decode_vec(std::str::from_utf8(b).ok()?).ok()
}

fn key_infos(public: &[PublicEntry]) -> Vec<KeyInfo> {
    public
        .iter()
        .map(|p| KeyInfo {
            key_id: p.key_id(),
            version: p.version,
            public_key: p.public_key,
            active: p.active,
        })
        .collect()
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

#[cfg(test)]
mod tests;
