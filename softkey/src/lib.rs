//! # vbzkey-softkey
//!
//! The two key methods that need no dongle, for shops that choose them:
//!
//! - **passphrase** (method 1): the key pair is *derived* from a passphrase with Argon2id and
//!   RFC 9180 DeriveKeyPair. Nothing secret is stored anywhere; a small descriptor file holds
//!   the salt, the cost and the public key (to tell a wrong passphrase from a right one).
//! - **key file** (method 2): a random key pair, its private key encrypted under a passphrase
//!   (Argon2id + ChaCha20Poly1305) in a JSON file on the workstation.
//!
//! Both files are JSON with a `format` field, so a human can tell them apart.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use base64ct::{Base64UrlUnpadded, Encoding};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use serde::{Deserialize, Serialize};
use vbzkey_protocol::kdf::{Argon2idParams, KdfError};
use vbzkey_protocol::{PublicKey, SecretKey};
use zeroize::Zeroizing;

const PASSPHRASE_FORMAT: &str = "vbzkey-passphrase-key-v1";
const KEY_FILE_FORMAT: &str = "vbzkey-key-file-v1";
/// The passphrase is the only secret of method 1, and anyone with the public key can test
/// guesses offline: it must be long. Sixteen characters of a diceware-style phrase, or more.
pub const MIN_PASSPHRASE_LEN: usize = 16;
/// A key file's passphrase guards a file that must also be stolen: shorter is tolerable.
pub const MIN_KEY_FILE_PASSPHRASE_LEN: usize = 10;
/// Longest passphrase accepted, in bytes.
pub const MAX_PASSPHRASE_LEN: usize = 1024;

/// Argon2id cost: the project's one parameter type (`vbzkey_protocol::kdf`), under the name
/// the key-file JSON has always used (`"kdf": {"m_kib", "t", "p"}`).
pub type Kdf = Argon2idParams;

/// Stretch `passphrase` with `kdf`; a file's bad cost or salt is a malformed file.
fn stretch(kdf: &Kdf, passphrase: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, SoftKeyError> {
    // A file may carry any cost: one edited to ask for terabytes of memory is malformed.
    kdf.check_within(&Kdf::WORKSTATION_MAX).map_err(|_| SoftKeyError::Malformed("kdf"))?;
    kdf.stretch(passphrase, salt).map_err(|e| match e {
        KdfError::BadParams => SoftKeyError::Malformed("kdf"),
        KdfError::BadSalt => SoftKeyError::Malformed("salt"),
    })
}

/// Why a software key could not be made or opened. Never carries the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoftKeyError {
    /// The passphrase is shorter than the method requires, or absurdly long.
    #[error("the passphrase must be {min} to {MAX_PASSPHRASE_LEN} bytes long")]
    PassphraseLength {
        /// The minimum for this method.
        min: usize,
    },
    /// The passphrase does not produce the key the file names.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The file is not a valid descriptor / key file.
    #[error("the key file is not valid (field `{0}`)")]
    Malformed(&'static str),
    /// The OS random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

fn check_len(p: &[u8], min: usize) -> Result<(), SoftKeyError> {
    if (min..=MAX_PASSPHRASE_LEN).contains(&p.len()) {
        Ok(())
    } else {
        Err(SoftKeyError::PassphraseLength { min })
    }
}

fn random<const N: usize>() -> Result<[u8; N], SoftKeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| SoftKeyError::Rng)?;
    Ok(b)
}

fn b64(b: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(b)
}

fn unb64<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], SoftKeyError> {
    let v = Base64UrlUnpadded::decode_vec(s).map_err(|_| SoftKeyError::Malformed(field))?;
    v.try_into().map_err(|_| SoftKeyError::Malformed(field))
}

/// The passphrase method's descriptor: salt, cost and public key. Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassphraseKey {
    format: String,
    kdf: Kdf,
    salt: String,
    public_key: String,
}

impl PassphraseKey {
    /// Make a descriptor for a new passphrase (fresh salt); returns it and the key.
    pub fn create(passphrase: &[u8], kdf: Kdf) -> Result<(Self, SecretKey), SoftKeyError> {
        check_len(passphrase, MIN_PASSPHRASE_LEN)?;
        let salt: [u8; 16] = random()?;
        let key = SecretKey::derive(&stretch(&kdf, passphrase, &salt)?[..]);
        let d = PassphraseKey {
            format: PASSPHRASE_FORMAT.into(),
            kdf,
            salt: b64(&salt),
            public_key: key.public_key().to_text(),
        };
        Ok((d, key))
    }

    /// Derive the key; `WrongPassphrase` if it is not the one this descriptor names.
    pub fn unlock(&self, passphrase: &[u8]) -> Result<SecretKey, SoftKeyError> {
        check_len(passphrase, MIN_PASSPHRASE_LEN).map_err(|_| SoftKeyError::WrongPassphrase)?;
        let salt: [u8; 16] = unb64(&self.salt, "salt")?;
        let key = SecretKey::derive(&stretch(&self.kdf, passphrase, &salt)?[..]);
        if key.public_key() != &self.public_key()? {
            return Err(SoftKeyError::WrongPassphrase);
        }
        Ok(key)
    }

    /// The public key the store seals to.
    pub fn public_key(&self) -> Result<PublicKey, SoftKeyError> {
        PublicKey::from_text(&self.public_key).map_err(|_| SoftKeyError::Malformed("public_key"))
    }

    /// Parse and check a descriptor file.
    pub fn from_json(text: &str) -> Result<Self, SoftKeyError> {
        let d: Self = serde_json::from_str(text).map_err(|_| SoftKeyError::Malformed("json"))?;
        if d.format != PASSPHRASE_FORMAT {
            return Err(SoftKeyError::Malformed("format"));
        }
        unb64::<16>(&d.salt, "salt")?;
        d.public_key()?;
        Ok(d)
    }

    /// The descriptor as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }
}

/// An encrypted key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    format: String,
    kdf: Kdf,
    salt: String,
    nonce: String,
    public_key: String,
    sealed_key: String,
}

impl KeyFile {
    /// The bytes every field of the file is bound to (the AEAD's associated data).
    fn aad(&self) -> Vec<u8> {
        let k = self.kdf;
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.format, k.m_kib, k.t, k.p, self.salt, self.nonce, self.public_key
        )
        .into_bytes()
    }

    /// Encrypt `key` under `passphrase`.
    pub fn seal(key: &SecretKey, passphrase: &[u8], kdf: Kdf) -> Result<Self, SoftKeyError> {
        check_len(passphrase, MIN_KEY_FILE_PASSPHRASE_LEN)?;
        let salt: [u8; 16] = random()?;
        let nonce: [u8; 12] = random()?;
        let mut file = KeyFile {
            format: KEY_FILE_FORMAT.into(),
            kdf,
            salt: b64(&salt),
            nonce: b64(&nonce),
            public_key: key.public_key().to_text(),
            sealed_key: String::new(),
        };
        let kek = stretch(&kdf, passphrase, &salt)?;
        let mut buf = key.to_bytes();
        let tag = ChaCha20Poly1305::new(&Key::from(*kek))
            .encrypt_inout_detached(&Nonce::from(nonce), &file.aad(), buf.as_mut_slice().into())
            .map_err(|_| SoftKeyError::Malformed("sealed_key"))?;
        let mut sealed = buf.to_vec();
        sealed.extend_from_slice(&tag);
        file.sealed_key = b64(&sealed);
        Ok(file)
    }

    /// Decrypt the key; `WrongPassphrase` if the passphrase (or any field) is wrong.
    pub fn open(&self, passphrase: &[u8]) -> Result<SecretKey, SoftKeyError> {
        check_len(passphrase, MIN_KEY_FILE_PASSPHRASE_LEN)
            .map_err(|_| SoftKeyError::WrongPassphrase)?;
        let salt: [u8; 16] = unb64(&self.salt, "salt")?;
        let nonce: [u8; 12] = unb64(&self.nonce, "nonce")?;
        let sealed: [u8; 48] = unb64(&self.sealed_key, "sealed_key")?;
        let kek = stretch(&self.kdf, passphrase, &salt)?;
        let mut buf = Zeroizing::new([0u8; 32]);
        buf.copy_from_slice(&sealed[..32]);
        let tag = Tag::try_from(&sealed[32..]).expect("16 bytes");
        ChaCha20Poly1305::new(&Key::from(*kek))
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                &self.aad(),
                buf.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| SoftKeyError::WrongPassphrase)?;
        let key = SecretKey::from_bytes(*buf);
        if key.public_key().to_text() != self.public_key {
            return Err(SoftKeyError::Malformed("public_key"));
        }
        Ok(key)
    }

    /// The public key the store seals to.
    pub fn public_key(&self) -> Result<PublicKey, SoftKeyError> {
        PublicKey::from_text(&self.public_key).map_err(|_| SoftKeyError::Malformed("public_key"))
    }

    /// Parse and check a key file.
    pub fn from_json(text: &str) -> Result<Self, SoftKeyError> {
        let f: Self = serde_json::from_str(text).map_err(|_| SoftKeyError::Malformed("json"))?;
        if f.format != KEY_FILE_FORMAT {
            return Err(SoftKeyError::Malformed("format"));
        }
        unb64::<16>(&f.salt, "salt")?;
        unb64::<12>(&f.nonce, "nonce")?;
        unb64::<48>(&f.sealed_key, "sealed_key")?;
        f.public_key()?;
        Ok(f)
    }

    /// The key file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &[u8] = b"correct horse battery staple";

    #[test]
    fn passphrase_key_is_reproducible_and_checked() {
        let (d, key) = PassphraseKey::create(PASS, Kdf::TEST_ONLY_WEAK).unwrap();
        let d2 = PassphraseKey::from_json(&d.to_json()).unwrap();
        assert_eq!(d2.unlock(PASS).unwrap(), key);
        assert_eq!(d2.unlock(b"correct horse battery stapler"), Err(SoftKeyError::WrongPassphrase));
        assert_eq!(d2.unlock(b"short"), Err(SoftKeyError::WrongPassphrase));
        assert_eq!(
            PassphraseKey::create(b"too short", Kdf::TEST_ONLY_WEAK).err(),
            Some(SoftKeyError::PassphraseLength { min: MIN_PASSPHRASE_LEN })
        );
    }

    #[test]
    fn key_file_round_trip_and_wrong_passphrase() {
        let key = SecretKey::generate().unwrap();
        let f = KeyFile::seal(&key, PASS, Kdf::TEST_ONLY_WEAK).unwrap();
        let json = f.to_json();
        assert!(!json.contains(&key.to_text()[7..]), "the key is not in the file in clear");
        let f2 = KeyFile::from_json(&json).unwrap();
        assert_eq!(f2.open(PASS).unwrap(), key);
        assert_eq!(f2.open(b"wrong passphrase!"), Err(SoftKeyError::WrongPassphrase));
    }

    #[test]
    fn tampered_or_malformed_files_are_refused() {
        let key = SecretKey::generate().unwrap();
        let json = KeyFile::seal(&key, PASS, Kdf::TEST_ONLY_WEAK).unwrap().to_json();
        let other = SecretKey::generate().unwrap().public_key().to_text();
        let swapped = json.replace(&key.public_key().to_text(), &other);
        assert_eq!(
            KeyFile::from_json(&swapped).unwrap().open(PASS),
            Err(SoftKeyError::WrongPassphrase)
        );
        for bad in [
            "",
            "{}",
            "[1,2]",
            &json.replace(KEY_FILE_FORMAT, "other-format"),
            &json.replace("\"t\": 1", "\"t\": 0"),
        ] {
            let parsed = KeyFile::from_json(bad);
            assert!(parsed.is_err() || parsed.unwrap().open(PASS).is_err(), "{bad}");
        }
        let with_extra = json.replacen('{', "{\"extra\": 1,", 1);
        assert!(KeyFile::from_json(&with_extra).is_err());
    }

    /// A file edited to ask for more memory than any machine should give is refused before
    /// Argon2 allocates anything (opening it would otherwise take down the bridge).
    #[test]
    fn a_file_asking_for_an_exhausting_cost_is_malformed() {
        let key = SecretKey::generate().unwrap();
        let json = KeyFile::seal(&key, PASS, Kdf::TEST_ONLY_WEAK).unwrap().to_json();
        let greedy = json.replace("\"m_kib\": 64", "\"m_kib\": 4294967295");
        assert_ne!(greedy, json);
        let f = KeyFile::from_json(&greedy).unwrap();
        assert_eq!(f.open(PASS), Err(SoftKeyError::Malformed("kdf")));
        let (d, _) = PassphraseKey::create(PASS, Kdf::TEST_ONLY_WEAK).unwrap();
        let greedy = d.to_json().replace("\"t\": 1", "\"t\": 4000000000");
        let d = PassphraseKey::from_json(&greedy).unwrap();
        assert_eq!(d.unlock(PASS), Err(SoftKeyError::Malformed("kdf")));
    }
}
