//! The software methods: a key derived from a passphrase (method 1) or read from an
//! encrypted key file (method 2). The bridge holds the private key itself, only while
//! unlocked, in mlocked memory that is zeroized on lock; it is never written anywhere.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vbzkey_os::locked::LockedBox;
use vbzkey_protocol::ratelimit::TokenBucket;
use vbzkey_protocol::record::Record;
use vbzkey_protocol::wire::{Plaintext, SealedItem};
use vbzkey_protocol::{PublicKey, SecretKey};
use vbzkey_softkey::{KeyFile, PassphraseKey, SoftKeyError};

use super::{ItemResult, KeyMethod, KeyStatus, MethodError, State, Status};

/// Where the key comes from.
pub enum Source {
    /// A passphrase-key descriptor file.
    Passphrase(PathBuf),
    /// An encrypted key file.
    KeyFile(PathBuf),
}

/// Wrong passphrases in a row before the bridge makes the staff wait: the file can be
/// attacked offline anyway, this only slows a script on the workstation.
const SLOWDOWN_AFTER: u32 = 5;
const SLOWDOWN: Duration = Duration::from_secs(5);

struct Held {
    key: LockedBox<SecretKey>,
    last_used: Instant,
}

/// How fast records may be opened, as on the dongle: a compromised workstation gets at most
/// this much plaintext per minute out of a software key too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained records per minute.
    pub records_per_minute: u32,
    /// Burst size.
    pub burst: u32,
}

impl Default for RateLimit {
    /// The dongle's defaults: 600 records a minute, a burst of 300.
    fn default() -> Self {
        RateLimit { records_per_minute: 600, burst: 300 }
    }
}

/// A software key method.
pub struct SoftMethod {
    source: Source,
    idle_lock: Duration,
    held: Mutex<Option<Held>>,
    failures: Mutex<u32>,
    bucket: Mutex<TokenBucket>,
    started: Instant,
}

impl SoftMethod {
    /// A method over `source`, locking after `idle_lock` without use, opening at most
    /// `limit` records.
    pub fn new(source: Source, idle_lock: Duration, limit: RateLimit) -> Self {
        SoftMethod {
            source,
            idle_lock,
            held: Mutex::new(None),
            failures: Mutex::new(0),
            bucket: Mutex::new(TokenBucket::new(limit.burst, limit.records_per_minute, 0)),
            started: Instant::now(),
        }
    }

    fn path(&self) -> &PathBuf {
        match &self.source {
            Source::Passphrase(p) | Source::KeyFile(p) => p,
        }
    }

    /// Read the file and return its public key, or why it cannot be used.
    fn public_key(&self) -> Result<PublicKey, String> {
        let text = std::fs::read_to_string(self.path())
            .map_err(|e| format!("cannot read {}: {e}", self.path().display()))?;
        let parsed = match &self.source {
            Source::Passphrase(_) => PassphraseKey::from_json(&text).and_then(|d| d.public_key()),
            Source::KeyFile(_) => KeyFile::from_json(&text).and_then(|f| f.public_key()),
        };
        parsed.map_err(|e| format!("{}: {e}", self.path().display()))
    }

    fn derive(&self, secret: &[u8]) -> Result<SecretKey, MethodError> {
        let text =
            std::fs::read_to_string(self.path()).map_err(|e| MethodError::Absent(e.to_string()))?;
        let result = match &self.source {
            Source::Passphrase(_) => PassphraseKey::from_json(&text).and_then(|d| d.unlock(secret)),
            Source::KeyFile(_) => KeyFile::from_json(&text).and_then(|f| f.open(secret)),
        };
        result.map_err(|e| match e {
            SoftKeyError::WrongPassphrase | SoftKeyError::PassphraseLength { .. } => {
                MethodError::WrongSecret { tries_left: None }
            }
            other => MethodError::Absent(other.to_string()),
        })
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyMethod for SoftMethod {
    fn name(&self) -> &'static str {
        match self.source {
            Source::Passphrase(_) => "passphrase",
            Source::KeyFile(_) => "keyfile",
        }
    }

    fn status(&self) -> Status {
        let held = self.lock_held().is_some();
        let (state, keys, detail) = match self.public_key() {
            Ok(pk) => {
                let key = KeyStatus {
                    key_id: pk.key_id().to_string(),
                    version: 1,
                    active: true,
                    public_key: pk.to_text(),
                };
                (if held { State::Unlocked } else { State::Locked }, vec![key], None)
            }
            Err(e) => (State::Absent, vec![], Some(e)),
        };
        Status {
            method: self.name(),
            state,
            source: Some(self.path().display().to_string()),
            serial: None,
            firmware_version: None,
            pin_tries_left: None,
            keys,
            also_present: vec![],
            detail,
        }
    }

    fn unlock(&self, secret: &[u8]) -> Result<(), MethodError> {
        let failures = *self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures >= SLOWDOWN_AFTER {
            std::thread::sleep(SLOWDOWN);
        }
        match self.derive(secret) {
            Ok(key) => {
                *self.failures.lock().unwrap_or_else(|p| p.into_inner()) = 0;
                let key = LockedBox::new(key);
                if !key.is_locked() {
                    tracing::warn!(
                        "could not lock the key's memory against swapping (RLIMIT_MEMLOCK?)"
                    );
                }
                *self.lock_held() = Some(Held { key, last_used: Instant::now() });
                Ok(())
            }
            Err(e) => {
                if matches!(e, MethodError::WrongSecret { .. }) {
                    *self.failures.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                }
                Err(e)
            }
        }
    }

    fn lock(&self) -> Result<(), MethodError> {
        // Dropping the LockedBox zeroizes the key (SecretKey zeroizes on drop), then unlocks
        // and frees its page.
        *self.lock_held() = None;
        Ok(())
    }

    fn unseal(&self, items: Vec<SealedItem>) -> Result<Vec<ItemResult>, MethodError> {
        let mut held = self.lock_held();
        let h = held.as_mut().ok_or(MethodError::Locked)?;
        let now_ms = self.started.elapsed().as_millis() as u64;
        let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
        self.bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(n, now_ms)
            .map_err(|retry_after_ms| MethodError::RateLimited { retry_after_ms })?;
        h.last_used = Instant::now();
        let key: &SecretKey = &h.key;
        Ok(items
            .iter()
            .map(|item| {
                let rec = Record::parse(&item.record).map_err(|e| e.code())?;
                if rec.key_id() != key.key_id() {
                    return Err("no_such_key");
                }
                rec.open(key, &item.context).map(Plaintext).map_err(|e| e.code())
            })
            .collect())
    }

    fn unlock_only_on_bridge_page(&self) -> bool {
        true
    }

    fn tick(&self) {
        let mut held = self.lock_held();
        if held.as_ref().is_some_and(|h| h.last_used.elapsed() >= self.idle_lock) {
            *held = None;
            tracing::info!("locked after {} s idle", self.idle_lock.as_secs());
        }
    }
}
