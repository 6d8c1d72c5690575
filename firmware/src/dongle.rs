//! The dongle's state machine: one request in, one response out. No sockets, no files, no
//! clock: storage and the platform (RNG, LED) are passed in, and so are the time, the asking
//! connection ([`Peer`]) and whether its button was pressed ([`Press`]).
//!
//! ```text
//!  request ──► policy::requirement ──► admit (session? state? credential? log intact?)
//!                                        │
//!                                        ├─ needs the button and none given ─► NeedsPresence
//!                                        ▼
//!                                      handler ──► audit line ──► response
//! ```
//!
//! Rights are checked in one place, [`policy`], before any handler runs. The staff PIN
//! unlocks records for everyone the dongle serves; the admin credential opens an *admin
//! window* that belongs to one connection only and holds its own copy of the keys, so an
//! admin command never leaves the dongle unlocked for the staff page.

mod credentials;
mod custody;
mod hosts;
mod keys;
pub mod policy;
#[cfg(test)]
mod tests;

use vbzkey_protocol::SecretKey;
use vbzkey_protocol::wire::{
    self, DongleError, HelloInfo, KeyInfo, Limits, LockState, MAX_BATCH, PairingInfo, Request,
    Response,
};
use zeroize::Zeroizing;

use crate::audit::{self, AuditLog, Event};
use crate::keystore::{Binding, Credential, Halves, KdfParams, KeyStore, Keys, PublicEntry};
use crate::pin_counter::Counters;
use crate::storage::{File, Storage, StorageError};
use policy::{Access, Button, Needs, Requirement};
use vbzkey_protocol::ratelimit::TokenBucket;

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

/// What the core needs from the board besides storage. Waiting for the button is not here:
/// the transport waits (outside the core's lock) and passes the outcome in as a [`Press`].
pub trait Platform {
    /// Fill `buf` from a CSPRNG.
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed>;
    /// Show whether records can be opened (LED).
    fn show(&mut self, unlocked: bool);
}

/// Policy knobs, set on the dongle's command line. Defaults are what a shop should run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Wrong staff PINs before the staff lock-out. 8, like many smart cards: enough for
    /// typos, far too few to guess a 6-digit PIN (8 in a million).
    pub max_pin_tries: u8,
    /// Wrong admin credentials before the admin lock-out (then only a factory reset helps).
    pub max_admin_tries: u8,
    /// Time without key use before the staff unlock ends: 15 minutes, a coffee break.
    pub idle_lock_ms: u64,
    /// Time without an admin request before an admin window closes.
    pub admin_idle_ms: u64,
    /// Sustained records per minute: 600 is ten a second, far above what a person reads and
    /// far below a bulk dump (a million records would take over a day).
    pub records_per_minute: u32,
    /// Burst size: one full batch plus some, so a page of records opens at once.
    pub burst: u32,
    /// Audit lines hosts may cause per minute, sustained (a burst of as many): every request
    /// that appends a line costs one, so no host can fill the card with the log. 120 a
    /// minute is about 20 MB a day at worst, a year on an 8 GB card.
    pub log_lines_per_minute: u32,
    /// Batches larger than this need the button; `None` disables the check.
    pub confirm_batch_over: Option<u16>,
    /// Argon2id cost for new credential slots.
    pub kdf: KdfParams,
    /// Reported by `Hello`.
    pub firmware_version: String,
    /// Whether the board has a presence input (button); reported by `Hello`.
    pub presence_input: bool,
    /// Threads one batch's records are opened on (`crate::parallel`); the default is the
    /// board's core count, at most 4.
    pub open_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_pin_tries: 8,
            max_admin_tries: 8,
            idle_lock_ms: 15 * 60 * 1000,
            admin_idle_ms: wire::ADMIN_IDLE_SECS * 1000,
            records_per_minute: 600,
            burst: MAX_BATCH as u32 + 44,
            log_lines_per_minute: 120,
            confirm_batch_over: None,
            kdf: KdfParams::PI_ZERO,
            firmware_version: env!("CARGO_PKG_VERSION").to_string(),
            presence_input: false,
            open_threads: crate::parallel::default_threads(),
        }
    }
}

/// Who asks: the transport's facts about one connection (or one session on USB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Unique for the dongle's lifetime; an admin window belongs to one id.
    pub id: u64,
    /// For the audit log: the transport, or the paired host's key id.
    pub label: String,
    /// The host key of this connection's encrypted session, if it has one.
    pub session: Option<[u8; 32]>,
    /// A network link (TCP): sessions of paired hosts only, always.
    pub network: bool,
}

/// Whether the asking connection's button press was sought, and how it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// Not asked yet: a request that needs it gets [`Outcome::NeedsPresence`].
    NotAsked,
    /// The button was pressed after the dongle asked.
    Pressed,
    /// The wait ended without a press.
    NotPressed,
}

/// The result of handling a request.
#[derive(Debug)]
pub enum Outcome {
    /// The answer.
    Answer(Response),
    /// Everything else allows the request: ask for the button (blink, wait, outside the core's
    /// lock), then hand the same request in again with the [`Press`].
    NeedsPresence,
}

/// The result of handling a frame payload.
#[derive(Debug)]
pub enum FrameOutcome {
    /// The full answer frame.
    Answer(Vec<u8>),
    /// As [`Outcome::NeedsPresence`]; tell the host (same request id) while waiting.
    NeedsPresence {
        /// The request's id, for the interim `PresenceNeeded` frame.
        request_id: u32,
    },
}

/// Which secrets a dongle holds in memory (keys, halves, master key, a clone's transfer key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretsHeld {
    /// The staff unlock: keys and both halves.
    pub staff_unlock: bool,
    /// An admin window: its copy of the keys and halves.
    pub admin_window: bool,
    /// A clone target's transfer key.
    pub clone_key: bool,
}

/// Keys opened with a credential (and, in split custody, a host's secret), and the two
/// halves of the master key to re-seal them. Everything here is wiped when dropped.
struct Opened {
    keys: Keys,
    halves: Halves,
}

/// The staff unlock: records can be opened, by every host the dongle serves.
struct StaffUnlock {
    opened: Opened,
    last_use_ms: u64,
}

/// An admin window: admin requests of one connection, with its own copy of the keys.
struct AdminWindow {
    peer: u64,
    opened: Opened,
    last_use_ms: u64,
}

/// A dongle with a key store.
struct Ready {
    file: KeyStore,
    counters: Counters,
    staff: Option<StaffUnlock>,
    admin: Option<AdminWindow>,
}

enum Store {
    /// No key store: `Init`, `Restore` or a clone.
    Empty {
        /// A clone target's transfer key: RAM only, gone at restart.
        clone_key: Option<SecretKey>,
    },
    /// A key store that fails its checks: reported, never replaced.
    Damaged,
    Ready(Box<Ready>),
}

enum Pairings {
    Hosts(Vec<PairingInfo>),
    /// The file fails its checksum: no host counts as paired until an admin pairs again.
    Damaged,
}

/// The dongle. Its `Debug` shows the state and which secrets are held, never a secret.
pub struct Dongle<S: Storage, P: Platform> {
    cfg: Config,
    storage: S,
    platform: P,
    binding: Binding,
    store: Store,
    bucket: TokenBucket,
    log_bucket: TokenBucket,
    audit: AuditLog,
    /// The key host sessions are made with (`None` if the RNG failed at first start, or its
    /// file cannot be opened).
    device_key: Option<Zeroizing<[u8; 32]>>,
    /// The device key's file is intact but does not open with the board identity this
    /// firmware was given (the OTP device secret missing or not the one, or the card in
    /// another Pi): the key store, sealed to the same identity, would make every right PIN
    /// look wrong. Nothing that opens keys is tried, no session is made, and hosts are told.
    wrong_binding: bool,
    pairings: Pairings,
}

impl<S: Storage, P: Platform> std::fmt::Debug for Dongle<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dongle")
            .field("serial", &self.binding.serial)
            .field("state", &self.state())
            .field("secrets_held", &self.secrets_held())
            .field("audit_intact", &self.audit.intact())
            .finish_non_exhaustive()
    }
}

fn storage_failed(e: StorageError) -> DongleError {
    tracing::error!("storage: {e}");
    DongleError::Storage
}

impl<S: Storage, P: Platform> Dongle<S, P> {
    /// Start: verify the audit log, read the key store and the counters. A key store without
    /// a staff PIN is opened right away.
    pub fn start(
        cfg: Config,
        mut storage: S,
        mut platform: P,
        binding: Binding,
        now: Now,
    ) -> Result<Self, StorageError> {
        // The records opened lately are in the log: the bucket restarts at the level they
        // left (by the log's clock), so a restart grants no fresh burst.
        let mut replay = TokenBucket::new(cfg.burst, cfg.records_per_minute, 0);
        let mut last_ms = 0;
        let audit = AuditLog::open(&mut storage, now.unix_secs, &mut |e| {
            if e.event == Event::Unseal.as_str() {
                let at = e.unix.saturating_mul(1000);
                replay.drain(e.ok.saturating_add(e.failed), at);
                last_ms = last_ms.max(at);
            }
        })?;
        if !audit.intact() {
            tracing::error!(
                "the audit log does not verify: requests that use or change keys, credentials \
                 or pairings are refused until an admin resets the dongle (the log is kept)"
            );
        }
        // A clock that went back (no battery on a Pi) refills nothing.
        let level = replay.level(now.unix_secs.saturating_mul(1000).max(last_ms));
        let bucket =
            TokenBucket::with_tokens(cfg.burst, cfg.records_per_minute, level, now.mono_ms);
        let per_minute = cfg.log_lines_per_minute;
        let log_bucket = TokenBucket::new(per_minute, per_minute, now.mono_ms);
        let mut fill = |b: &mut [u8]| platform.fill_random(b).is_ok();
        let device_key = crate::pairing::device_key(&mut storage, &binding, &mut fill)?;
        let intact = storage.load(File::DeviceKey)?.and_then(|b| KeyStore::parse(&b).ok());
        let wrong_binding = device_key.is_none() && intact.is_some();
        if wrong_binding && binding.device_secret.is_none() && intact.is_some_and(|f| f.otp_used())
        {
            tracing::error!(
                "the device key is sealed to this board's OTP device secret, which was not given \
                 (--otp-dump): host sessions are unavailable until the secret is back"
            );
        } else if wrong_binding {
            tracing::error!(
                "the device key does not open with this board's serial and OTP secret: the SD \
                 card is in another Pi, or the OTP secret read at boot is not the one it was \
                 sealed to; keys stay closed and no PIN is counted until it is back in its board"
            );
        } else if device_key.is_none() {
            tracing::error!(
                "the device key could not be made or opened: host sessions are unavailable"
            );
        }
        let pairings = match crate::pairing::load(&storage)? {
            Ok(hosts) => Pairings::Hosts(hosts),
            Err(()) => {
                tracing::error!(
                    "the pairings file is damaged: no host is served until an admin pairs again"
                );
                Pairings::Damaged
            }
        };
        let store = match storage.load(File::KeyStore)? {
            None => Store::Empty { clone_key: None },
            Some(bytes) => match KeyStore::parse(&bytes) {
                Err(e) => {
                    tracing::error!("{e}; it is left untouched");
                    Store::Damaged
                }
                Ok(file) => {
                    // The counters are written before the key store at init, so a store
                    // without them means the card was edited: fail closed.
                    let counters = match storage
                        .load(File::PinCounter)?
                        .as_deref()
                        .map(Counters::decode)
                    {
                        Some(Some(c)) => c,
                        _ => {
                            tracing::error!(
                                "the PIN counters are missing or damaged; treating both credentials as locked out"
                            );
                            Counters::exhausted(cfg.max_pin_tries, cfg.max_admin_tries)
                        }
                    };
                    Store::Ready(Box::new(Ready { file, counters, staff: None, admin: None }))
                }
            },
        };
        let mut d = Dongle {
            cfg,
            storage,
            platform,
            binding,
            store,
            bucket,
            log_bucket,
            audit,
            device_key,
            wrong_binding,
            pairings,
        };
        if d.device_secret_missing() {
            tracing::error!(
                "the key store is sealed to this board's OTP device secret, which was not given \
                 (--otp-dump): it stays closed and no PIN is counted until the secret is back"
            );
        }
        d.open_without_pin(now);
        let unlocked = d.staff_unlocked();
        d.platform.show(unlocked);
        Ok(d)
    }

    /// The storage (tests use it to simulate a restart).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// The storage, read-only (tests compare files before and after a request).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    fn ready(&self) -> Result<&Ready, DongleError> {
        match &self.store {
            Store::Ready(r) => Ok(r),
            Store::Damaged => Err(DongleError::KeyStoreDamaged),
            Store::Empty { .. } => Err(DongleError::NotInitialised),
        }
    }

    fn staff_unlocked(&self) -> bool {
        matches!(&self.store, Store::Ready(r) if r.staff.is_some())
    }

    fn staff_locked_out(&self) -> bool {
        matches!(&self.store, Store::Ready(r)
            if r.file.staff_pin_set() && r.counters.staff >= self.cfg.max_pin_tries)
    }

    fn admin_locked_out(&self) -> bool {
        matches!(&self.store, Store::Ready(r) if r.counters.admin >= self.cfg.max_admin_tries)
    }

    /// The key store has a slot sealed to the board's OTP device secret and the firmware was
    /// not given it, or the board's identity does not open the device key (a wrong secret, or
    /// the card in another Pi). Checked before any credential is counted: the right PIN would
    /// look wrong.
    fn device_secret_missing(&self) -> bool {
        let missing = matches!(&self.store, Store::Ready(r) if r.file.otp_used())
            && self.binding.device_secret.is_none();
        missing || (self.wrong_binding && matches!(self.store, Store::Ready(_)))
    }

    fn state(&self) -> LockState {
        match &self.store {
            Store::Empty { .. } => LockState::Uninitialised,
            _ if self.device_secret_missing() => LockState::DeviceSecretMissing,
            _ if self.staff_locked_out() => LockState::LockedOut,
            _ if self.staff_unlocked() => LockState::Unlocked,
            _ => LockState::Locked,
        }
    }

    /// Log a line. Its request paid for it before it ran (the policy's `logs`: a token of the
    /// log bucket); lines the dongle writes on its own account (an idle lock, a closed admin
    /// window) cost nothing, as no host causes them at will. A request whose line cannot be
    /// written does not run.
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
        self.audit.append(&mut self.storage, now.unix_secs, &rec).map_err(|e| match e {
            audit::AppendError::Broken => DongleError::AuditBroken,
            audit::AppendError::Storage(e) => storage_failed(e),
        })
    }

    /// Log `event`, **then** make the change: a change on the card is never unlogged. If the
    /// change then fails, a second line of the same event with `failed` 1 says so.
    fn logged<T>(
        &mut self,
        now: Now,
        event: Event,
        keys: &str,
        peer: &Peer,
        change: impl FnOnce(&mut Self) -> Result<T, DongleError>,
    ) -> Result<T, DongleError> {
        self.log(now, event, keys, 0, 0, &peer.label)?;
        let done = change(self);
        if done.is_err() {
            let _ = self.log(now, event, keys, 0, 1, &peer.label);
        }
        done
    }

    fn random<const N: usize>(&mut self) -> Result<Zeroizing<[u8; N]>, DongleError> {
        let mut b = Zeroizing::new([0u8; N]);
        self.platform.fill_random(&mut b[..]).map_err(|RngFailed| DongleError::Rng)?;
        Ok(b)
    }

    /// A store without a staff PIN (and not in split custody) is open to whoever the dongle
    /// serves: open it now (start, after an idle lock) so `Hello` says so.
    fn open_without_pin(&mut self, now: Now) {
        if self.device_secret_missing() {
            return;
        }
        let Store::Ready(r) = &mut self.store else { return };
        if r.staff.is_some() || r.file.staff_pin_set() || r.file.split_custody() {
            return;
        }
        let opened = r.file.device_half(Credential::Staff, &self.binding, b"").and_then(|device| {
            let halves = Halves::new(device, r.file.host_half(&self.binding, None)?);
            Ok(Opened { keys: r.file.open(&halves.master_key())?, halves })
        });
        match opened {
            Ok(opened) => r.staff = Some(StaffUnlock { opened, last_use_ms: now.mono_ms }),
            Err(e) => tracing::error!("{e}"),
        }
    }

    /// Which secrets the dongle holds in memory right now (for tests and `Debug`): none once
    /// it is locked and no admin window is open.
    pub fn secrets_held(&self) -> SecretsHeld {
        match &self.store {
            Store::Ready(r) => SecretsHeld {
                staff_unlock: r.staff.is_some(),
                admin_window: r.admin.is_some(),
                clone_key: false,
            },
            Store::Empty { clone_key } => SecretsHeld {
                staff_unlock: false,
                admin_window: false,
                clone_key: clone_key.is_some(),
            },
            Store::Damaged => SecretsHeld::default(),
        }
    }

    /// End what has been idle too long: the staff unlock (no key use for `idle_lock_ms`) and
    /// the admin window (no admin request for `admin_idle_ms`). Transports call this every
    /// second so keys do not linger in memory between requests.
    pub fn tick(&mut self, now: Now) {
        let (idle, admin_idle) = (self.cfg.idle_lock_ms, self.cfg.admin_idle_ms);
        let Store::Ready(r) = &mut self.store else { return };
        let expired = |last: u64, limit: u64| now.mono_ms.saturating_sub(last) >= limit;
        // Only a dongle open to whoever it serves (no staff PIN, no paired host) stays
        // unlocked: in split custody a host's share opened it, and it ends like a PIN's unlock.
        let staff_ended = (r.file.staff_pin_set() || r.file.split_custody())
            && r.staff.as_ref().is_some_and(|s| expired(s.last_use_ms, idle));
        if staff_ended {
            r.staff = None;
        }
        let admin_ended = r.admin.as_ref().is_some_and(|a| expired(a.last_use_ms, admin_idle));
        if admin_ended {
            r.admin = None;
        }
        // Logging is best effort here: the keys are gone whatever the log says.
        if staff_ended {
            self.platform.show(false);
            let _ = self.log(now, Event::IdleLock, "-", 0, 0, "firmware");
        }
        if admin_ended {
            let _ = self.log(now, Event::AdminEnd, "-", 0, 0, "idle");
        }
    }

    /// The connection `peer` ended: its admin window closes.
    pub fn disconnect(&mut self, peer: u64, now: Now) {
        let Store::Ready(r) = &mut self.store else { return };
        if r.admin.as_ref().is_some_and(|a| a.peer == peer) {
            r.admin = None;
            let _ = self.log(now, Event::AdminEnd, "-", 0, 0, "disconnect");
        }
    }

    /// Whether a local link serves any host (no host paired, or the pairings file damaged, so
    /// an admin can pair again): what the transports' pre-authentication limits ask.
    pub fn serves_any_local_host(&self) -> bool {
        match &self.pairings {
            Pairings::Hosts(h) => h.is_empty(),
            Pairings::Damaged => true,
        }
    }

    /// Whether a host may open (or keep) a session: a paired host, or on a local link any
    /// host while none is paired or the pairings file is damaged (so an admin can pair again;
    /// such a session still needs the admin credential for anything beyond `Hello`).
    pub fn accepts_session(&self, host: &[u8; 32], network: bool) -> bool {
        match &self.pairings {
            Pairings::Hosts(h) => {
                h.iter().any(|p| &p.host_key == host) || (!network && h.is_empty())
            }
            Pairings::Damaged => !network,
        }
    }

    fn is_paired(&self, host: &[u8; 32]) -> bool {
        matches!(&self.pairings, Pairings::Hosts(h) if h.iter().any(|p| &p.host_key == host))
    }

    /// The device key's public half.
    pub fn device_public(&self) -> Option<[u8; 32]> {
        self.device_key.as_ref().map(|k| vbzkey_protocol::session::public_of(k))
    }

    /// The device key (for the transports' session handshakes).
    pub fn device_secret(&self) -> Option<&[u8; 32]> {
        self.device_key.as_deref()
    }

    /// Why there is no device key to answer with or to open a session with.
    pub fn no_device_key(&self) -> DongleError {
        if self.wrong_binding { DongleError::DeviceSecretMissing } else { DongleError::Storage }
    }

    /// Decode one frame payload, handle it, and encode the answer as a full frame. Malformed
    /// input gets an error response, never a panic.
    pub fn handle_frame(
        &mut self,
        payload: &[u8],
        now: Now,
        peer: &Peer,
        press: Press,
    ) -> FrameOutcome {
        match wire::decode::<Request>(payload) {
            Ok((id, req)) => match self.handle(req, now, peer, press) {
                Outcome::Answer(r) => FrameOutcome::Answer(wire::encode(id, &r)),
                Outcome::NeedsPresence => FrameOutcome::NeedsPresence { request_id: id },
            },
            Err((id, e)) => {
                tracing::warn!("bad request from {}: {e}", peer.label);
                let err = match e {
                    wire::WireError::UnsupportedProtocolVersion(_) => {
                        DongleError::UnsupportedVersion
                    }
                    _ => DongleError::Malformed,
                };
                FrameOutcome::Answer(wire::encode(id.unwrap_or(0), &Response::Error(err)))
            }
        }
    }

    /// Handle one request from `peer`: the policy first, then the handler.
    pub fn handle(&mut self, req: Request, now: Now, peer: &Peer, press: Press) -> Outcome {
        self.tick(now);
        let rule = policy::requirement(&req);
        if let Err(e) = self.admit(&rule, peer) {
            return Outcome::Answer(Response::Error(e));
        }
        let button = match rule.button {
            Button::Never => false,
            Button::Always => true,
            Button::LargeBatch => match (&req, self.cfg.confirm_batch_over) {
                (Request::UnsealBatch { items }, Some(limit)) => items.len() > usize::from(limit),
                _ => false,
            },
        };
        // The request's audit line is paid for before anything runs (the press is asked for
        // first: asking writes nothing), so a refusal for the rate changes nothing.
        if rule.logs
            && !(button && press == Press::NotAsked)
            && let Err(retry_after_ms) = self.log_bucket.take(1, now.mono_ms)
        {
            return Outcome::Answer(Response::Error(DongleError::RateLimited { retry_after_ms }));
        }
        if button {
            match press {
                Press::NotAsked => return Outcome::NeedsPresence,
                Press::NotPressed => {
                    let _ = self.log(now, Event::PresenceMissing, "-", 0, 1, &peer.label);
                    return Outcome::Answer(Response::Error(DongleError::NotConfirmed));
                }
                Press::Pressed => {}
            }
        }
        if rule.needs == Needs::Admin
            && let Store::Ready(r) = &mut self.store
            && let Some(w) = &mut r.admin
        {
            w.last_use_ms = now.mono_ms;
        }
        let result = self.dispatch(req, now, peer);
        if rule.key_use
            && result.is_ok()
            && rule.needs != Needs::Admin
            && let Store::Ready(r) = &mut self.store
            && let Some(s) = &mut r.staff
        {
            s.last_use_ms = now.mono_ms;
        }
        let unlocked = self.staff_unlocked();
        self.platform.show(unlocked);
        Outcome::Answer(result.unwrap_or_else(Response::Error))
    }

    /// Check `rule` against the dongle's state and the asking connection.
    fn admit(&mut self, rule: &Requirement, peer: &Peer) -> Result<(), DongleError> {
        if rule.access == Access::OwnSession && peer.session.is_none() {
            return Err(DongleError::NotAllowed);
        }
        if matches!(rule.access, Access::Session | Access::OwnSession) {
            let paired_session = peer.session.as_ref().is_some_and(|h| self.is_paired(h));
            let served = match &self.pairings {
                _ if paired_session => true,
                Pairings::Hosts(h) => h.is_empty() && !peer.network,
                // Re-pairing after damage: an admin in a local session, nothing for staff.
                Pairings::Damaged => {
                    !peer.network
                        && peer.session.is_some()
                        && matches!(
                            rule.needs,
                            Needs::Nothing
                                | Needs::AdminCredential
                                | Needs::Admin
                                | Needs::AdminOrRecovery
                        )
                }
            };
            if !served {
                return Err(DongleError::PairingRequired);
            }
        }
        if !rule.on_broken_log && !self.audit.intact() {
            return Err(DongleError::AuditBroken);
        }
        if rule.needs.opens_keys() && self.device_secret_missing() {
            return Err(DongleError::DeviceSecretMissing);
        }
        match rule.needs {
            Needs::Nothing => Ok(()),
            Needs::Uninitialised => match self.store {
                Store::Empty { .. } => Ok(()),
                _ => Err(DongleError::AlreadyInitialised),
            },
            Needs::Initialised | Needs::StaffCredential => self.ready().map(|_| ()),
            Needs::AdminCredential => {
                self.ready()?;
                if self.admin_locked_out() { Err(DongleError::AdminLockedOut) } else { Ok(()) }
            }
            Needs::StaffUnlocked => {
                self.ready()?;
                if self.staff_locked_out() {
                    return Err(DongleError::LockedOut);
                }
                if self.staff_unlocked() { Ok(()) } else { Err(DongleError::Locked) }
            }
            Needs::Admin => self.admin_window(peer),
            Needs::AdminOrRecovery => match &self.store {
                _ if !self.audit.intact() => Ok(()),
                Store::Empty { .. } | Store::Damaged => Ok(()),
                Store::Ready(_) if self.admin_locked_out() => Ok(()),
                Store::Ready(_) => self.admin_window(peer),
            },
        }
    }

    fn admin_window(&self, peer: &Peer) -> Result<(), DongleError> {
        let r = self.ready()?;
        if self.admin_locked_out() {
            return Err(DongleError::AdminLockedOut);
        }
        match &r.admin {
            Some(w) if w.peer == peer.id => Ok(()),
            _ => Err(DongleError::AdminRequired),
        }
    }

    fn dispatch(&mut self, req: Request, now: Now, peer: &Peer) -> Result<Response, DongleError> {
        match req {
            Request::Hello => Ok(Response::Hello(self.hello(peer))),
            Request::DeviceKey => {
                self.device_public().map(Response::DeviceKey).ok_or_else(|| self.no_device_key())
            }
            Request::Init { pin, admin_pin } => self.init(pin, admin_pin, now, peer),
            Request::AdminAuth { admin_pin, unlock_secret } => {
                self.admin_auth(&admin_pin, unlock_secret.as_ref(), now, peer)
            }
            Request::Unlock { pin, unlock_secret } => {
                self.unlock(&pin, unlock_secret.as_ref(), now, peer)
            }
            Request::Lock => self.lock(now, peer),
            Request::EndAdmin => self.end_admin(now, peer),
            Request::SetStaffPin { new } => self.set_staff_pin(new, now, peer),
            Request::ChangeAdminPin { new } => self.change_admin_pin(&new, now, peer),
            Request::PublicKeys => Ok(Response::PublicKeys(key_infos(self.ready()?.file.public()))),
            Request::UnsealBatch { items } => self.unseal(&items, now, peer),
            Request::Rewrap { items, new_public_key } => {
                self.rewrap(&items, new_public_key, now, peer)
            }
            Request::Rotate => self.rotate(now, peer),
            Request::Retire { key_id } => self.retire(key_id, now, peer),
            Request::AuditTail { max } => self.audit_tail(max),
            Request::AuditRead { from_seq, max } => self.audit_lines(from_seq, max),
            Request::FactoryReset => self.factory_reset(now, peer),
            Request::Backup { threshold, count } => self.backup(threshold, count, now, peer),
            Request::Restore { shares, pin, admin_pin } => {
                self.restore(&shares, pin, admin_pin, now, peer)
            }
            Request::CloneBegin => self.clone_begin(),
            Request::CloneExport { to } => self.clone_export(to, now, peer),
            Request::CloneImport { blob, pin, admin_pin } => {
                self.clone_import(&blob, pin, admin_pin, now, peer)
            }
            Request::Pair { host_key, label, unlock_secret } => {
                self.pair(host_key, label, &unlock_secret, now, peer)
            }
            Request::Unpair { host_key } => self.unpair(host_key, now, peer),
            Request::Pairings => Ok(Response::Pairings(match &self.pairings {
                Pairings::Hosts(h) => h.clone(),
                Pairings::Damaged => Vec::new(),
            })),
        }
    }

    fn hello(&self, peer: &Peer) -> HelloInfo {
        let (pin_set, counters, admin_window, split_custody) = match &self.store {
            Store::Ready(r) => (
                r.file.staff_pin_set(),
                r.counters,
                r.admin.as_ref().is_some_and(|w| w.peer == peer.id),
                r.file.split_custody(),
            ),
            _ => (false, Counters::default(), false, false),
        };
        HelloInfo {
            firmware_version: self.cfg.firmware_version.clone(),
            protocol_version: wire::PROTOCOL_VERSION,
            serial: self.binding.serial.clone(),
            state: self.state(),
            pin_set,
            pin_tries_left: self.cfg.max_pin_tries.saturating_sub(counters.staff),
            admin_tries_left: self.cfg.max_admin_tries.saturating_sub(counters.admin),
            keys: self.ready().map(|r| key_infos(r.file.public())).unwrap_or_default(),
            limits: Limits {
                max_frame_payload: wire::MAX_FRAME_PAYLOAD as u32,
                max_batch: MAX_BATCH as u16,
                records_per_minute: self.cfg.records_per_minute,
                burst: self.cfg.burst,
                max_pin_tries: self.cfg.max_pin_tries,
                max_admin_tries: self.cfg.max_admin_tries,
                idle_lock_secs: (self.cfg.idle_lock_ms / 1000) as u32,
                confirm_batch_over: self.cfg.confirm_batch_over,
                admin_idle_secs: (self.cfg.admin_idle_ms / 1000) as u32,
                kdf_m_kib: self.cfg.kdf.m_kib,
                kdf_t: self.cfg.kdf.t,
            },
            audit_intact: self.audit.intact(),
            paired_hosts: match &self.pairings {
                Pairings::Hosts(h) => h.len() as u16,
                Pairings::Damaged => 0,
            },
            presence_input: self.cfg.presence_input,
            admin_window,
            split_custody,
        }
    }

    fn audit_tail(&mut self, max: u16) -> Result<Response, DongleError> {
        let max = usize::from(max).min(MAX_AUDIT_LINES);
        let lines = if self.audit.intact() {
            let from = self.audit.len().saturating_sub(max as u64);
            self.audit_read(from, max)?.1
        } else {
            // A broken log's entries are not numbered reliably: its last lines as stored.
            AuditLog::raw_tail(&self.storage, max, MAX_AUDIT_BYTES).map_err(storage_failed)?
        };
        Ok(Response::AuditTail {
            entries: lines.into_iter().map(|line| wire::AuditEntry { line }).collect(),
            head: self.audit.head(),
            total: self.audit.len(),
        })
    }

    fn audit_read(
        &self,
        from_seq: u64,
        max: usize,
    ) -> Result<([u8; 32], Vec<String>), DongleError> {
        let max = max.min(MAX_AUDIT_LINES);
        self.audit.read(&self.storage, from_seq, max, MAX_AUDIT_BYTES).map_err(|e| match e {
            audit::ReadError::Broken => DongleError::AuditBroken,
            audit::ReadError::Beyond { total } => DongleError::AuditBeyond { total },
            audit::ReadError::Damaged => {
                tracing::error!("an audit segment changed since start");
                DongleError::AuditBroken
            }
            audit::ReadError::Storage(e) => storage_failed(e),
        })
    }

    fn audit_lines(&self, from_seq: u64, max: u16) -> Result<Response, DongleError> {
        let (prev_head, lines) = self.audit_read(from_seq, usize::from(max))?;
        Ok(Response::AuditLines {
            prev_head,
            entries: lines.into_iter().map(|line| wire::AuditEntry { line }).collect(),
            head: self.audit.head(),
            total: self.audit.len(),
        })
    }
}

/// Most audit lines one answer holds (`AuditTail`, `AuditRead`).
const MAX_AUDIT_LINES: usize = 1000;
/// Most bytes of audit lines one answer holds: well inside one frame.
const MAX_AUDIT_BYTES: usize = 512 * 1024;

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
