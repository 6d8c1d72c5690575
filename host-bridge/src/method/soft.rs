//! The software methods: a key derived from a passphrase (method 1) or read from an
//! encrypted key file (method 2). The bridge holds the private key itself, only while
//! unlocked, in mlocked memory that is zeroized on lock; it is never written anywhere.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vbzkey_os::locked::LockedBox;
use vbzkey_protocol::ratelimit::TokenBucket;
use vbzkey_protocol::record::Record;
use vbzkey_protocol::wire::{ItemError, Plaintext, SealedItem};
use vbzkey_protocol::{PublicKey, SecretKey};
use vbzkey_softkey::{KeyFile, PassphraseKey, SoftKeyError};

use super::{ItemResult, KeyMethod, KeyStatus, KeyUnavailable, MethodError, State, Status};

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

    fn read(&self) -> Result<String, KeyUnavailable> {
        std::fs::read_to_string(self.path())
            .map_err(|source| KeyUnavailable::Read { path: self.path().clone(), source })
    }

    fn invalid(&self, source: SoftKeyError) -> KeyUnavailable {
        KeyUnavailable::Invalid { path: self.path().clone(), source }
    }

    /// Read the file and return its public key, or why it cannot be used.
    fn public_key(&self) -> Result<PublicKey, KeyUnavailable> {
        let text = self.read()?;
        let parsed = match &self.source {
            Source::Passphrase(_) => PassphraseKey::from_json(&text).and_then(|d| d.public_key()),
            Source::KeyFile(_) => KeyFile::from_json(&text).and_then(|f| f.public_key()),
        };
        parsed.map_err(|e| self.invalid(e))
    }

    fn derive(&self, secret: &[u8]) -> Result<SecretKey, MethodError> {
        let text = self.read()?;
        let result = match &self.source {
            Source::Passphrase(_) => PassphraseKey::from_json(&text).and_then(|d| d.unlock(secret)),
            Source::KeyFile(_) => KeyFile::from_json(&text).and_then(|f| f.open(secret)),
        };
        result.map_err(|e| match e {
            SoftKeyError::WrongPassphrase | SoftKeyError::PassphraseLength { .. } => {
                MethodError::WrongSecret { tries_left: None }
            }
            other => self.invalid(other).into(),
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
            Err(e) => (State::Absent, vec![], Some(e.to_string())),
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
            custody: None,
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
                let rec =
                    Record::parse(&item.record).map_err(|e| ItemError::Record((&e).into()))?;
                if rec.key_id() != key.key_id() {
                    return Err(ItemError::NoSuchKey);
                }
                rec.open(key, &item.context)
                    .map(Plaintext)
                    .map_err(|e| ItemError::Record((&e).into()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::record::{self, RecordErrorCode};
    use vbzkey_softkey::Kdf;

    const PASS: &[u8] = b"correct horse battery";

    fn key_file(name: &str, key: &SecretKey) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("vbzkey-bridge-{name}-{}", std::process::id()));
        let file = KeyFile::seal(key, PASS, Kdf::TEST_ONLY_WEAK).unwrap();
        std::fs::write(&path, file.to_json()).unwrap();
        path
    }

    fn item(to: &PublicKey, ctx: &str, value: &str) -> SealedItem {
        SealedItem {
            record: record::seal(to, ctx.as_bytes(), value.as_bytes()).unwrap(),
            context: ctx.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_key_file_unlocks_opens_its_records_and_locks_again() {
        let key = SecretKey::derive(&[7u8; 32]);
        let path = key_file("keyfile", &key);
        let m = SoftMethod::new(
            Source::KeyFile(path.clone()),
            Duration::from_secs(900),
            RateLimit::default(),
        );
        assert_eq!(m.status().state, State::Locked);
        assert!(matches!(m.unseal(vec![]), Err(MethodError::Locked)));
        assert!(matches!(m.unlock(b"wrong horse battery"), Err(MethodError::WrongSecret { .. })));
        m.unlock(PASS).unwrap();
        assert_eq!(m.status().state, State::Unlocked);
        let other = SecretKey::derive(&[8u8; 32]);
        let mut moved = item(key.public_key(), "cust_cards/1/card_number", "4111");
        moved.context = b"cust_cards/2/card_number".to_vec();
        let results = m
            .unseal(vec![
                item(key.public_key(), "cust_cards/1/card_number", "4111"),
                item(other.public_key(), "cust_cards/1/card_number", "4111"),
                moved,
                SealedItem { record: b"VK junk".to_vec(), context: vec![] },
            ])
            .unwrap();
        assert_eq!(results[0].as_ref().unwrap().0.as_slice(), b"4111");
        assert_eq!(results[1], Err(ItemError::NoSuchKey));
        assert_eq!(results[2], Err(ItemError::Record(RecordErrorCode::TagMismatch)));
        assert!(matches!(results[3], Err(ItemError::Record(_))));
        m.lock().unwrap();
        assert!(matches!(m.unseal(vec![]), Err(MethodError::Locked)));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_missing_or_damaged_file_is_named_not_mistaken_for_a_wrong_passphrase() {
        let missing = std::env::temp_dir().join("vbzkey-bridge-no-such-key-file");
        let m = SoftMethod::new(
            Source::KeyFile(missing),
            Duration::from_secs(900),
            RateLimit::default(),
        );
        let st = m.status();
        assert_eq!(st.state, State::Absent);
        assert!(st.detail.unwrap().contains("vbzkey-bridge-no-such-key-file"));
        let err = m.unlock(PASS).unwrap_err();
        assert!(matches!(err, MethodError::KeyUnavailable(KeyUnavailable::Read { .. })), "{err:?}");
        assert_eq!(err.code(), "key_unavailable");

        let damaged =
            std::env::temp_dir().join(format!("vbzkey-bridge-damaged-{}", std::process::id()));
        std::fs::write(&damaged, "{\"format\": \"something else\"}").unwrap();
        let m = SoftMethod::new(
            Source::Passphrase(damaged.clone()),
            Duration::from_secs(900),
            RateLimit::default(),
        );
        let err = m.unlock(PASS).unwrap_err();
        assert!(
            matches!(err, MethodError::KeyUnavailable(KeyUnavailable::Invalid { .. })),
            "{err:?}"
        );
        let _ = std::fs::remove_file(damaged);
    }
}
