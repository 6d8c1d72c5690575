//! The key store file: every private key version of the dongle, sealed to this board and PIN.
//!
//! ```text
//! 0   "VZKS"  magic                     40  nonce (12)
//! 4   1       version                   52  public part length N (u32 BE)
//! 5   flags   bit 0 PIN set,            56  public part: postcard(Vec<PublicEntry>)
//!             bit 1 OTP secret used     56+N ChaCha20Poly1305(postcard(Vec<SecretEntry>)) ‖ tag
//! 6   0 0     reserved                  end-32  SHA-256 of everything before it
//! 8   Argon2id m (KiB), t, p (u32 BE each)
//! 20  salt (16)
//! 36  0 0 0 0 reserved
//! ```
//!
//! `KEK = HKDF-SHA256(salt, "vbzkey keystore v1" ‖ len ‖ serial ‖ len ‖ otp ‖ Argon2id(PIN))`,
//! where the PIN part is present only when a PIN is set. The AEAD's associated data is every
//! byte before the ciphertext, so the public part cannot be swapped. The trailing SHA-256
//! tells accidental damage (a torn sector) apart from a wrong PIN, so damage never burns a
//! PIN try. It is not a MAC: the AEAD tag is what stops tampering.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vbzkey_protocol::{KeyId, SecretKey};
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 4] = b"VZKS";
const VERSION: u8 = 1;
const FLAG_PIN: u8 = 1;
const FLAG_OTP: u8 = 2;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 56;
const CHECKSUM_LEN: usize = 32;
/// The public part of a store with many rotations is still small; a bound keeps parsing cheap.
const MAX_PUBLIC_PART: usize = 64 * 1024;

/// Argon2id cost, stored in the file so it can be re-tuned without breaking old stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl KdfParams {
    /// Tuned for the Pi Zero (ARM1176 at 1 GHz, 512 MB): 32 MiB and 2 passes take roughly a
    /// second there, by scaling the x86 figure of `vbzkey-firmware self-test --kdf-timing`
    /// (about 40 ms on the x86 development VM) by the ~15-25× Argon2 gap between the two CPUs. Memory-hard enough
    /// that a GPU guessing 6-digit PINs pays 32 MiB per guess; small enough to leave the Pi
    /// room. Re-measure on the device with `self-test --kdf-timing`.
    pub const PI_ZERO: KdfParams = KdfParams { m_kib: 32 * 1024, t: 2, p: 1 };
    /// For tests only: the minimum Argon2 allows.
    pub const TEST_ONLY_WEAK: KdfParams = KdfParams { m_kib: 64, t: 1, p: 1 };
}

/// A key's public facts, readable without the PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicEntry {
    /// Version, 1 for the first key.
    pub version: u32,
    /// The X25519 public key.
    pub public_key: [u8; 32],
    /// Whether new records go to this key.
    pub active: bool,
}

impl PublicEntry {
    /// The key id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.public_key)
    }
}

#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
struct SecretEntry {
    version: u32,
    secret: [u8; 32],
}

/// Why a key store could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// Not a key store, wrong version, bad checksum or a structure that does not parse.
    #[error("the key store file is damaged ({0})")]
    Damaged(&'static str),
    /// The file was sealed with a device secret this board does not provide.
    #[error("the key store was sealed with a device secret (OTP) that this board does not have")]
    MissingDeviceSecret,
    /// The KEK is wrong: wrong PIN, or another device's serial / secret.
    #[error("the PIN is wrong, or the key store belongs to another device")]
    WrongKey,
}

/// What binds the store to this board.
pub struct Binding {
    /// Serial number.
    pub serial: String,
    /// OTP device secret, if programmed.
    pub device_secret: Option<Zeroizing<[u8; 32]>>,
}

/// A parsed key store file.
#[derive(Debug, Clone)]
pub struct KeyStore {
    flags: u8,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    public: Vec<PublicEntry>,
}

/// The unlocked content: every key version, and which one is active.
pub struct Keys {
    /// (version, key), oldest first.
    pub keys: Vec<(u32, SecretKey)>,
}

impl Keys {
    /// The key with this id, if held.
    pub fn by_id(&self, id: KeyId) -> Option<&SecretKey> {
        self.keys.iter().map(|(_, k)| k).find(|k| k.key_id() == id)
    }
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

/// Derive the key-encryption key.
pub fn derive_kek(
    kdf: KdfParams,
    salt: &[u8; SALT_LEN],
    binding: &Binding,
    pin: Option<&[u8]>,
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(128));
    ikm.extend_from_slice(b"vbzkey keystore v1");
    ikm.extend_from_slice(&(binding.serial.len() as u32).to_be_bytes());
    ikm.extend_from_slice(binding.serial.as_bytes());
    match &binding.device_secret {
        Some(s) => {
            ikm.extend_from_slice(&32u32.to_be_bytes());
            ikm.extend_from_slice(&s[..]);
        }
        None => ikm.extend_from_slice(&0u32.to_be_bytes()),
    }
    if let Some(pin) = pin {
        let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
            .expect("parameters were validated when the store was parsed or created");
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut stretched = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(pin, salt, &mut stretched[..])
            .expect("a 16-byte salt and a 32-byte output are always valid");
        ikm.extend_from_slice(&stretched[..]);
    }
    let mut kek = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), &ikm)
        .expand(b"key-encryption key", &mut kek[..])
        .expect("32 bytes is a valid HKDF output");
    kek
}

impl KeyStore {
    /// Parse and check a key store file (structure and checksum; not the AEAD, which needs
    /// the KEK).
    pub fn parse(bytes: &[u8]) -> Result<(Self, Sealed<'_>), KeyStoreError> {
        let damaged = KeyStoreError::Damaged;
        if bytes.len() < HEADER_LEN + TAG_LEN + CHECKSUM_LEN {
            return Err(damaged("too short"));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if !bool::from(Sha256::digest(body).as_slice().ct_eq(checksum)) {
            return Err(damaged("checksum mismatch"));
        }
        if &body[..4] != MAGIC {
            return Err(damaged("not a key store"));
        }
        if body[4] != VERSION {
            return Err(damaged("unknown key store version"));
        }
        let kdf = KdfParams { m_kib: u32_at(body, 8), t: u32_at(body, 12), p: u32_at(body, 16) };
        if argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).is_err() {
            return Err(damaged("invalid Argon2 parameters"));
        }
        let salt: [u8; SALT_LEN] = body[20..36].try_into().expect("16 bytes");
        let nonce: [u8; NONCE_LEN] = body[40..52].try_into().expect("12 bytes");
        let n = u32_at(body, 52) as usize;
        if n > MAX_PUBLIC_PART || body.len() < HEADER_LEN + n + TAG_LEN {
            return Err(damaged("bad public part length"));
        }
        let public: Vec<PublicEntry> = postcard::from_bytes(&body[HEADER_LEN..HEADER_LEN + n])
            .map_err(|_| damaged("public part does not parse"))?;
        let (aad, ciphertext) = body.split_at(HEADER_LEN + n);
        let store = KeyStore { flags: body[5], kdf, salt, public };
        Ok((store, Sealed { aad, nonce, ciphertext }))
    }

    /// Whether a PIN is needed.
    pub fn pin_set(&self) -> bool {
        self.flags & FLAG_PIN != 0
    }

    /// The public entries (readable while locked).
    pub fn public(&self) -> &[PublicEntry] {
        &self.public
    }

    /// Whether the store is sealed to the board's OTP device secret.
    pub fn otp_used(&self) -> bool {
        self.flags & FLAG_OTP != 0
    }

    /// The KEK for this store, given the board and (if set) the PIN. A store sealed without
    /// the OTP secret is opened without it even if the board has one now (OTP programmed
    /// after the store was made), so programming OTP can never make the right PIN look wrong.
    pub fn kek(
        &self,
        binding: &Binding,
        pin: Option<&[u8]>,
    ) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        let pin = if self.pin_set() { pin } else { None };
        match (self.otp_used(), &binding.device_secret) {
            (true, None) => Err(KeyStoreError::MissingDeviceSecret),
            (true, Some(_)) => Ok(derive_kek(self.kdf, &self.salt, binding, pin)),
            (false, _) => {
                let without = Binding { serial: binding.serial.clone(), device_secret: None };
                Ok(derive_kek(self.kdf, &self.salt, &without, pin))
            }
        }
    }

    /// The salt and KDF parameters, for re-sealing under the same KEK.
    pub fn kdf(&self) -> (KdfParams, [u8; SALT_LEN]) {
        (self.kdf, self.salt)
    }
}

/// The encrypted part of a parsed store.
pub struct Sealed<'a> {
    aad: &'a [u8],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

impl Sealed<'_> {
    /// Decrypt with the KEK.
    pub fn open(&self, kek: &[u8; 32], public: &[PublicEntry]) -> Result<Keys, KeyStoreError> {
        let (ct, tag) = self.ciphertext.split_at(self.ciphertext.len() - TAG_LEN);
        let mut buf = Zeroizing::new(ct.to_vec());
        ChaCha20Poly1305::new(&Key::from(*kek))
            .decrypt_inout_detached(
                &Nonce::from(self.nonce),
                self.aad,
                buf.as_mut_slice().into(),
                &Tag::try_from(tag).expect("16 bytes"),
            )
            .map_err(|_| KeyStoreError::WrongKey)?;
        let entries: Vec<SecretEntry> = postcard::from_bytes(&buf)
            .map_err(|_| KeyStoreError::Damaged("secret part does not parse"))?;
        let keys: Vec<(u32, SecretKey)> =
            entries.iter().map(|e| (e.version, SecretKey::from_bytes(e.secret))).collect();
        // The public part must describe exactly these keys.
        let consistent = keys.len() == public.len()
            && keys
                .iter()
                .zip(public)
                .all(|((v, k), p)| *v == p.version && k.public_key().as_bytes() == &p.public_key);
        if !consistent {
            return Err(KeyStoreError::Damaged("public and secret parts disagree"));
        }
        Ok(Keys { keys })
    }
}

/// Everything needed to write a store.
pub struct NewStore<'a> {
    /// Argon2 cost.
    pub kdf: KdfParams,
    /// KEK salt (fresh for a new PIN).
    pub salt: [u8; SALT_LEN],
    /// Whether a PIN is part of the KEK.
    pub pin_set: bool,
    /// Whether the device secret is part of the KEK.
    pub otp_used: bool,
    /// AEAD nonce (fresh for every write).
    pub nonce: [u8; NONCE_LEN],
    /// The keys, oldest first.
    pub keys: &'a [(u32, SecretKey)],
    /// Version of the active key.
    pub active: u32,
}

/// Serialise and seal a store under `kek`.
pub fn seal(store: &NewStore<'_>, kek: &[u8; 32]) -> Vec<u8> {
    let public: Vec<PublicEntry> = store
        .keys
        .iter()
        .map(|(v, k)| PublicEntry {
            version: *v,
            public_key: *k.public_key().as_bytes(),
            active: *v == store.active,
        })
        .collect();
    let public_bytes = postcard::to_allocvec(&public).expect("serializable");
    let entries: Vec<SecretEntry> = store
        .keys
        .iter()
        .map(|(v, k)| SecretEntry { version: *v, secret: *k.to_bytes() })
        .collect();
    let mut secret = Zeroizing::new(postcard::to_allocvec(&entries).expect("serializable"));
    drop(entries);

    let mut out =
        Vec::with_capacity(HEADER_LEN + public_bytes.len() + secret.len() + TAG_LEN + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(if store.pin_set { FLAG_PIN } else { 0 } | if store.otp_used { FLAG_OTP } else { 0 });
    out.extend_from_slice(&[0, 0]);
    for v in [store.kdf.m_kib, store.kdf.t, store.kdf.p] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&store.salt);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&store.nonce);
    out.extend_from_slice(&(public_bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&public_bytes);
    let tag = ChaCha20Poly1305::new(&Key::from(*kek))
        .encrypt_inout_detached(&Nonce::from(store.nonce), &out, secret.as_mut_slice().into())
        .expect("small messages always encrypt");
    out.extend_from_slice(&secret);
    out.extend_from_slice(&tag);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(serial: &str) -> Binding {
        Binding { serial: serial.into(), device_secret: None }
    }

    fn sample(pin: Option<&[u8]>) -> (Vec<u8>, Vec<(u32, SecretKey)>) {
        let keys = vec![
            (1, SecretKey::derive(b"key one seed for the store tests")),
            (2, SecretKey::derive(b"key two seed for the store tests")),
        ];
        let kdf = KdfParams::TEST_ONLY_WEAK;
        let salt = [3u8; SALT_LEN];
        let kek = derive_kek(kdf, &salt, &binding("0000abcd"), pin);
        let bytes = seal(
            &NewStore {
                kdf,
                salt,
                pin_set: pin.is_some(),
                otp_used: false,
                nonce: [4; 12],
                keys: &keys,
                active: 2,
            },
            &kek,
        );
        (bytes, keys)
    }

    #[test]
    fn round_trip_with_and_without_pin() {
        for pin in [None, Some(&b"123456"[..])] {
            let (bytes, keys) = sample(pin);
            let (store, sealed) = KeyStore::parse(&bytes).unwrap();
            assert_eq!(store.pin_set(), pin.is_some());
            assert_eq!(store.public().len(), 2);
            assert!(store.public()[1].active && !store.public()[0].active);
            let kek = store.kek(&binding("0000abcd"), pin).unwrap();
            let opened = sealed.open(&kek, store.public()).unwrap();
            assert_eq!(opened.keys.len(), 2);
            assert_eq!(opened.keys[1].1, keys[1].1);
        }
    }

    #[test]
    fn wrong_pin_or_other_board_is_wrong_key_not_damage() {
        let (bytes, _) = sample(Some(b"123456"));
        let (store, sealed) = KeyStore::parse(&bytes).unwrap();
        let kek = store.kek(&binding("0000abcd"), Some(b"654321")).unwrap();
        assert_eq!(sealed.open(&kek, store.public()).err(), Some(KeyStoreError::WrongKey));
        let kek = store.kek(&binding("0000abce"), Some(b"123456")).unwrap();
        assert_eq!(sealed.open(&kek, store.public()).err(), Some(KeyStoreError::WrongKey));
    }

    #[test]
    fn any_flipped_byte_is_detected_as_damage() {
        let (bytes, _) = sample(None);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(matches!(KeyStore::parse(&b), Err(KeyStoreError::Damaged(_))), "byte {i}");
        }
        for len in [0, 10, HEADER_LEN, bytes.len() - 1] {
            assert!(KeyStore::parse(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn tampering_with_a_valid_checksum_fails_the_aead() {
        // An attacker who edits the public part and recomputes the checksum.
        let (mut bytes, _) = sample(None);
        let n = bytes.len();
        bytes[HEADER_LEN + 3] ^= 1;
        let sum = Sha256::digest(&bytes[..n - CHECKSUM_LEN]);
        bytes[n - CHECKSUM_LEN..].copy_from_slice(&sum);
        match KeyStore::parse(&bytes) {
            Err(_) => {}
            Ok((store, sealed)) => {
                let kek = store.kek(&binding("0000abcd"), None).unwrap();
                assert!(sealed.open(&kek, store.public()).is_err());
            }
        }
    }

    #[test]
    fn otp_programmed_after_the_store_was_made_does_not_change_its_kek() {
        let store_bytes = seal(
            &NewStore {
                kdf: KdfParams::TEST_ONLY_WEAK,
                salt: [3; 16],
                pin_set: true,
                otp_used: false,
                nonce: [4; 12],
                keys: &[(1, SecretKey::from_bytes([5; 32]))],
                active: 1,
            },
            &derive_kek(KdfParams::TEST_ONLY_WEAK, &[3; 16], &binding("x"), Some(b"123456")),
        );
        let (store, sealed) = KeyStore::parse(&store_bytes).unwrap();
        assert!(!store.otp_used());
        let now_with_otp =
            Binding { serial: "x".into(), device_secret: Some(Zeroizing::new([9; 32])) };
        let kek = store.kek(&now_with_otp, Some(b"123456")).unwrap();
        assert!(sealed.open(&kek, store.public()).is_ok(), "the right PIN still opens it");
    }

    #[test]
    fn device_secret_is_required_when_used() {
        let keys = vec![(1, SecretKey::derive(b"key one seed for the store tests"))];
        let with_otp = Binding { serial: "x".into(), device_secret: Some(Zeroizing::new([9; 32])) };
        let kdf = KdfParams::TEST_ONLY_WEAK;
        let kek = derive_kek(kdf, &[1; 16], &with_otp, None);
        let bytes = seal(
            &NewStore {
                kdf,
                salt: [1; 16],
                pin_set: false,
                otp_used: true,
                nonce: [0; 12],
                keys: &keys,
                active: 1,
            },
            &kek,
        );
        let (store, sealed) = KeyStore::parse(&bytes).unwrap();
        assert_eq!(store.kek(&binding("x"), None).err(), Some(KeyStoreError::MissingDeviceSecret));
        let kek = store.kek(&with_otp, None).unwrap();
        assert!(sealed.open(&kek, store.public()).is_ok());
    }
}
