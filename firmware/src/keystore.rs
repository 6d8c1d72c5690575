//! The key store file: every private key version of the dongle, encrypted under a random
//! master key that only the file's credential *slots* unwrap (like LUKS key slots).
//!
//! ```text
//! 0       "VZKS"    magic
//! 4       2         version
//! 5       flags     bit 1: the OTP device secret is part of every slot key
//! 6       0 0       reserved
//! 8       N         public part length (u32 BE)
//! 12      public part: postcard(Vec<PublicEntry>)
//! 12+N    S         slot count (u8), then S slots of SLOT_LEN bytes:
//!                     kind (1) ‖ Argon2id m KiB, t, p (u32 BE each) ‖ salt (16) ‖ nonce (12)
//!                     ‖ ChaCha20Poly1305(slot key, master key) (32 + 16)
//! …       nonce (12) ‖ ChaCha20Poly1305(master key, postcard(Vec<SecretEntry>)) ‖ tag (16)
//! end-32  SHA-256 of everything before it
//! ```
//!
//! `slot key = HKDF-SHA256(salt, "vbzkey slot v2" ‖ kind ‖ len ‖ serial ‖ len ‖ otp ‖
//! Argon2id(secret, salt))`, where the Argon2id part is absent for a staff slot without a PIN.
//! A slot's associated data is its own header and the file's first 8 bytes, so a slot cannot
//! be moved to another kind or have its cost lowered; the keys' associated data is the file
//! up to the slot count, so the public part cannot be swapped.
//!
//! Two credentials, two slots (the PIV PIN/PUK model): the **staff** slot (the PIN staff
//! type to open records) and the **admin** slot (the credential that export, resets and
//! pairing need). Both are bound to the board (serial, OTP secret), so a copied card verifies
//! neither PIN on another board. The trailing SHA-256 tells accidental damage (a torn sector)
//! apart from a wrong PIN, so damage never burns a PIN try; it is not a MAC (the AEAD tags are).

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vbzkey_protocol::{KeyId, SecretKey};
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 4] = b"VZKS";
const VERSION: u8 = 2;
const FLAG_OTP: u8 = 2;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const FIXED_LEN: usize = 12;
const CHECKSUM_LEN: usize = 32;
/// kind ‖ m, t, p ‖ salt ‖ nonce ‖ wrapped master key ‖ tag
const SLOT_LEN: usize = 1 + 12 + SALT_LEN + NONCE_LEN + 32 + TAG_LEN;
/// The public part of a store with many rotations is still small; a bound keeps parsing cheap.
const MAX_PUBLIC_PART: usize = 64 * 1024;
/// A slot asking for more Argon2 memory than this was edited: refuse it rather than let a
/// doctored card exhaust the Pi's 512 MB.
const MAX_KDF_MEMORY_KIB: u32 = 256 * 1024;
/// Likewise for passes.
const MAX_KDF_PASSES: u32 = 16;

/// The random key that encrypts the key versions; what every slot wraps.
pub type MasterKey = Zeroizing<[u8; 32]>;

/// Argon2id cost, stored in each slot so it can be re-tuned without breaking old stores.
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
    /// The cost of a PIN guess on the dongle: 64 MiB and 3 passes. An unlock takes a few
    /// seconds on the Pi Zero (once a shift), and each offline guess costs a card thief the
    /// same memory and passes (measured per core in docs/THREAT-MODEL.md, "stolen dongle";
    /// `vbzkey-firmware self-test --kdf-timing` re-measures on the device).
    pub const PI_ZERO: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 1 };
    /// For tests only: the minimum Argon2 allows.
    pub const TEST_ONLY_WEAK: KdfParams = KdfParams { m_kib: 64, t: 1, p: 1 };

    fn argon2(self) -> Option<argon2::Argon2<'static>> {
        if self.m_kib > MAX_KDF_MEMORY_KIB || self.t > MAX_KDF_PASSES {
            return None;
        }
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32)).ok()?;
        Some(argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params))
    }
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
    /// The slot does not open: wrong PIN, or another device's serial / secret.
    #[error("the PIN is wrong, or the key store belongs to another device")]
    WrongKey,
    /// The store has no slot for this credential.
    #[error("the key store has no slot for this credential")]
    NoSlot,
}

/// What binds the store to this board.
pub struct Binding {
    /// Serial number.
    pub serial: String,
    /// OTP device secret, if programmed.
    pub device_secret: Option<Zeroizing<[u8; 32]>>,
}

/// What a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// The staff PIN.
    StaffPin = 1,
    /// Staff without a PIN: the slot key comes from the board alone.
    StaffOpen = 2,
    /// The admin credential.
    Admin = 3,
}

impl SlotKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(SlotKind::StaffPin),
            2 => Some(SlotKind::StaffOpen),
            3 => Some(SlotKind::Admin),
            _ => None,
        }
    }

    fn stretches(self) -> bool {
        self != SlotKind::StaffOpen
    }
}

/// Which credential a caller presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The staff PIN (or none, when the store has no staff PIN).
    Staff,
    /// The admin credential.
    Admin,
}

impl Credential {
    fn matches(self, kind: SlotKind) -> bool {
        match self {
            Credential::Staff => matches!(kind, SlotKind::StaffPin | SlotKind::StaffOpen),
            Credential::Admin => kind == SlotKind::Admin,
        }
    }
}

/// One credential slot: the master key wrapped under a key from the board and a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    kind: SlotKind,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; 32 + TAG_LEN],
}

impl Slot {
    /// Wrap `mk` for `kind` under the board and `secret` (ignored for `StaffOpen`), with a
    /// fresh `salt` and `nonce` from the caller's RNG.
    pub fn wrap(
        kind: SlotKind,
        kdf: KdfParams,
        salt: [u8; SALT_LEN],
        nonce: [u8; NONCE_LEN],
        binding: &Binding,
        secret: &[u8],
        mk: &MasterKey,
    ) -> Result<Self, KeyStoreError> {
        let otp = binding.device_secret.is_some();
        let key = slot_key(kind, kdf, &salt, binding, secret)?;
        let mut wrapped = [0u8; 32 + TAG_LEN];
        wrapped[..32].copy_from_slice(&mk[..]);
        let mut slot = Slot { kind, kdf, salt, nonce, wrapped: [0; 32 + TAG_LEN] };
        let aad = slot.aad(otp);
        let tag = ChaCha20Poly1305::new(&Key::from(*key))
            .encrypt_inout_detached(&Nonce::from(nonce), &aad, (&mut wrapped[..32]).into())
            .map_err(|_| KeyStoreError::Damaged("slot does not encrypt"))?;
        wrapped[32..].copy_from_slice(&tag);
        slot.wrapped = wrapped;
        Ok(slot)
    }

    /// What the slot is for.
    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    fn header(&self) -> [u8; 1 + 12 + SALT_LEN + NONCE_LEN] {
        let mut h = [0u8; 1 + 12 + SALT_LEN + NONCE_LEN];
        h[0] = self.kind as u8;
        for (i, v) in [self.kdf.m_kib, self.kdf.t, self.kdf.p].into_iter().enumerate() {
            h[1 + 4 * i..5 + 4 * i].copy_from_slice(&v.to_be_bytes());
        }
        h[13..29].copy_from_slice(&self.salt);
        h[29..41].copy_from_slice(&self.nonce);
        h
    }

    fn aad(&self, otp_used: bool) -> Vec<u8> {
        let mut aad = Vec::with_capacity(8 + 41);
        aad.extend_from_slice(&file_head(otp_used));
        aad.extend_from_slice(&self.header());
        aad
    }

    fn parse(b: &[u8; SLOT_LEN]) -> Result<Self, KeyStoreError> {
        let kind = SlotKind::from_byte(b[0]).ok_or(KeyStoreError::Damaged("unknown slot kind"))?;
        let kdf = KdfParams { m_kib: u32_at(b, 1), t: u32_at(b, 5), p: u32_at(b, 9) };
        if kind.stretches() && kdf.argon2().is_none() {
            return Err(KeyStoreError::Damaged("invalid Argon2 parameters"));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&b[13..29]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&b[29..41]);
        let mut wrapped = [0u8; 32 + TAG_LEN];
        wrapped.copy_from_slice(&b[41..]);
        Ok(Slot { kind, kdf, salt, nonce, wrapped })
    }

    fn unwrap(
        &self,
        otp_used: bool,
        binding: &Binding,
        secret: &[u8],
    ) -> Result<MasterKey, KeyStoreError> {
        let key = slot_key(self.kind, self.kdf, &self.salt, binding, secret)?;
        let mut mk = Zeroizing::new([0u8; 32]);
        mk.copy_from_slice(&self.wrapped[..32]);
        let tag = Tag::try_from(&self.wrapped[32..]).map_err(|_| KeyStoreError::WrongKey)?;
        ChaCha20Poly1305::new(&Key::from(*key))
            .decrypt_inout_detached(
                &Nonce::from(self.nonce),
                &self.aad(otp_used),
                (&mut mk[..]).into(),
                &tag,
            )
            .map_err(|_| KeyStoreError::WrongKey)?;
        Ok(mk)
    }
}

/// The unlocked content: every key version.
pub struct Keys {
    /// (version, key), oldest first.
    pub keys: Vec<(u32, SecretKey)>,
}

impl Keys {
    /// The key with this id, if held.
    pub fn by_id(&self, id: KeyId) -> Option<&SecretKey> {
        self.keys.iter().map(|(_, k)| k).find(|k| k.key_id() == id)
    }

    /// A copy (zeroized on drop like the original).
    pub fn duplicate(&self) -> Keys {
        Keys { keys: self.keys.clone() }
    }
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u32::from_be_bytes(w)
}

fn file_head(otp_used: bool) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[5] = if otp_used { FLAG_OTP } else { 0 };
    h
}

/// Argon2id of `secret` at `kdf` (the one expensive step of a PIN check).
pub fn stretch(
    kdf: KdfParams,
    salt: &[u8; SALT_LEN],
    secret: &[u8],
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let argon = kdf.argon2().ok_or(KeyStoreError::Damaged("invalid Argon2 parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(secret, salt, &mut out[..])
        .map_err(|_| KeyStoreError::Damaged("invalid Argon2 input"))?;
    Ok(out)
}

fn slot_key(
    kind: SlotKind,
    kdf: KdfParams,
    salt: &[u8; SALT_LEN],
    binding: &Binding,
    secret: &[u8],
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(160));
    ikm.extend_from_slice(b"vbzkey slot v2");
    ikm.push(kind as u8);
    ikm.extend_from_slice(&(binding.serial.len() as u32).to_be_bytes());
    ikm.extend_from_slice(binding.serial.as_bytes());
    match &binding.device_secret {
        Some(s) => {
            ikm.extend_from_slice(&32u32.to_be_bytes());
            ikm.extend_from_slice(&s[..]);
        }
        None => ikm.extend_from_slice(&0u32.to_be_bytes()),
    }
    if kind.stretches() {
        ikm.extend_from_slice(&stretch(kdf, salt, secret)?[..]);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), &ikm)
        .expand(b"slot key", &mut key[..])
        .map_err(|_| KeyStoreError::Damaged("slot key"))?;
    Ok(key)
}

/// A parsed key store file: public facts, slots, and the still-encrypted keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
    otp_used: bool,
    public: Vec<PublicEntry>,
    slots: Vec<Slot>,
    /// File bytes up to the slot count: the keys' associated data.
    aad: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    /// Encrypted keys and their tag.
    sealed: Vec<u8>,
}

impl KeyStore {
    /// Parse and check a key store file (structure and checksum; not the AEADs, which need
    /// a credential).
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyStoreError> {
        let damaged = KeyStoreError::Damaged;
        if bytes.len() < FIXED_LEN + 1 + NONCE_LEN + TAG_LEN + CHECKSUM_LEN {
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
        if body[5] & !FLAG_OTP != 0 || body[6..8] != [0, 0] {
            return Err(damaged("unknown flags"));
        }
        let n = u32_at(body, 8) as usize;
        if n > MAX_PUBLIC_PART || body.len() < FIXED_LEN + n + 1 {
            return Err(damaged("bad public part length"));
        }
        let public: Vec<PublicEntry> = postcard::from_bytes(&body[FIXED_LEN..FIXED_LEN + n])
            .map_err(|_| damaged("public part does not parse"))?;
        let count = usize::from(body[FIXED_LEN + n]);
        let slots_start = FIXED_LEN + n + 1;
        let keys_start = slots_start + count * SLOT_LEN;
        if body.len() < keys_start + NONCE_LEN + TAG_LEN {
            return Err(damaged("bad slot count"));
        }
        let slots = body[slots_start..keys_start]
            .chunks_exact(SLOT_LEN)
            .map(|c| {
                let mut b = [0u8; SLOT_LEN];
                b.copy_from_slice(c);
                Slot::parse(&b)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&body[keys_start..keys_start + NONCE_LEN]);
        Ok(KeyStore {
            otp_used: body[5] & FLAG_OTP != 0,
            public,
            slots,
            aad: body[..FIXED_LEN + n].to_vec(),
            nonce,
            sealed: body[keys_start + NONCE_LEN..].to_vec(),
        })
    }

    /// Whether opening records needs a staff PIN.
    pub fn staff_pin_set(&self) -> bool {
        self.slots.iter().any(|s| s.kind == SlotKind::StaffPin)
    }

    /// The public entries (readable while locked).
    pub fn public(&self) -> &[PublicEntry] {
        &self.public
    }

    /// The slots, to carry over into a re-sealed store.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Unwrap the master key through `who`'s slot with `secret` (the PIN; ignored by a staff
    /// slot without PIN). This is where a PIN is checked: one Argon2id.
    pub fn unwrap(
        &self,
        who: Credential,
        binding: &Binding,
        secret: &[u8],
    ) -> Result<MasterKey, KeyStoreError> {
        if self.otp_used && binding.device_secret.is_none() {
            return Err(KeyStoreError::MissingDeviceSecret);
        }
        let slot = self.slots.iter().find(|s| who.matches(s.kind)).ok_or(KeyStoreError::NoSlot)?;
        slot.unwrap(self.otp_used, binding, secret)
    }

    /// Decrypt the key versions with the master key.
    pub fn open(&self, mk: &MasterKey) -> Result<Keys, KeyStoreError> {
        let split = self.sealed.len().checked_sub(TAG_LEN).ok_or(KeyStoreError::WrongKey)?;
        let (ct, tag) = self.sealed.split_at(split);
        let mut buf = Zeroizing::new(ct.to_vec());
        let tag = Tag::try_from(tag).map_err(|_| KeyStoreError::WrongKey)?;
        ChaCha20Poly1305::new(&Key::from(**mk))
            .decrypt_inout_detached(
                &Nonce::from(self.nonce),
                &self.aad,
                buf.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| KeyStoreError::WrongKey)?;
        let entries: Vec<SecretEntry> = postcard::from_bytes(&buf)
            .map_err(|_| KeyStoreError::Damaged("secret part does not parse"))?;
        let keys: Vec<(u32, SecretKey)> =
            entries.iter().map(|e| (e.version, SecretKey::from_bytes(e.secret))).collect();
        // The public part must describe exactly these keys.
        let consistent = keys.len() == self.public.len()
            && keys
                .iter()
                .zip(&self.public)
                .all(|((v, k), p)| *v == p.version && k.public_key().as_bytes() == &p.public_key);
        if !consistent {
            return Err(KeyStoreError::Damaged("public and secret parts disagree"));
        }
        Ok(Keys { keys })
    }
}

/// Everything needed to write a store.
pub struct NewStore<'a> {
    /// The keys, oldest first.
    pub keys: &'a [(u32, SecretKey)],
    /// Version of the active key.
    pub active: u32,
    /// The credential slots (each wrapping the same master key).
    pub slots: &'a [Slot],
    /// Whether the device secret is part of the slot keys.
    pub otp_used: bool,
    /// AEAD nonce for the keys (fresh for every write).
    pub nonce: [u8; NONCE_LEN],
}

/// Serialise and seal a store under `mk`.
pub fn seal(store: &NewStore<'_>, mk: &MasterKey) -> Result<Vec<u8>, KeyStoreError> {
    let public: Vec<PublicEntry> = store
        .keys
        .iter()
        .map(|(v, k)| PublicEntry {
            version: *v,
            public_key: *k.public_key().as_bytes(),
            active: *v == store.active,
        })
        .collect();
    let public_bytes =
        postcard::to_allocvec(&public).map_err(|_| KeyStoreError::Damaged("public part"))?;
    let entries: Vec<SecretEntry> = store
        .keys
        .iter()
        .map(|(v, k)| SecretEntry { version: *v, secret: *k.to_bytes() })
        .collect();
    let mut secret = Zeroizing::new(
        postcard::to_allocvec(&entries).map_err(|_| KeyStoreError::Damaged("secret part"))?,
    );
    drop(entries);
    let count = u8::try_from(store.slots.len()).map_err(|_| KeyStoreError::Damaged("slots"))?;

    let mut out =
        Vec::with_capacity(FIXED_LEN + public_bytes.len() + 1 + store.slots.len() * SLOT_LEN + 256);
    out.extend_from_slice(&file_head(store.otp_used));
    out.extend_from_slice(&(public_bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&public_bytes);
    let tag = ChaCha20Poly1305::new(&Key::from(**mk))
        .encrypt_inout_detached(&Nonce::from(store.nonce), &out, secret.as_mut_slice().into())
        .map_err(|_| KeyStoreError::Damaged("keys do not encrypt"))?;
    out.push(count);
    for slot in store.slots {
        out.extend_from_slice(&slot.header());
        out.extend_from_slice(&slot.wrapped);
    }
    out.extend_from_slice(&store.nonce);
    out.extend_from_slice(&secret);
    out.extend_from_slice(&tag);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(serial: &str) -> Binding {
        Binding { serial: serial.into(), device_secret: None }
    }

    const MK: [u8; 32] = [0x5a; 32];

    fn slots(b: &Binding, staff: Option<&[u8]>) -> Vec<Slot> {
        let kdf = KdfParams::TEST_ONLY_WEAK;
        let mk = Zeroizing::new(MK);
        let staff = match staff {
            Some(pin) => Slot::wrap(SlotKind::StaffPin, kdf, [3; 16], [1; 12], b, pin, &mk),
            None => Slot::wrap(SlotKind::StaffOpen, kdf, [3; 16], [1; 12], b, b"", &mk),
        };
        let admin = Slot::wrap(SlotKind::Admin, kdf, [4; 16], [2; 12], b, b"admin-2468", &mk);
        vec![staff.unwrap(), admin.unwrap()]
    }

    fn sample(b: &Binding, staff: Option<&[u8]>) -> (Vec<u8>, Vec<(u32, SecretKey)>) {
        let keys = vec![
            (1, SecretKey::derive(b"key one seed for the store tests")),
            (2, SecretKey::derive(b"key two seed for the store tests")),
        ];
        let slots = slots(b, staff);
        let store = NewStore {
            keys: &keys,
            active: 2,
            slots: &slots,
            otp_used: b.device_secret.is_some(),
            nonce: [4; 12],
        };
        (seal(&store, &Zeroizing::new(MK)).unwrap(), keys)
    }

    #[test]
    fn both_credentials_open_the_same_keys() {
        for pin in [None, Some(&b"123456"[..])] {
            let b = binding("0000abcd");
            let (bytes, keys) = sample(&b, pin);
            let store = KeyStore::parse(&bytes).unwrap();
            assert_eq!(store.staff_pin_set(), pin.is_some());
            assert_eq!(store.public().len(), 2);
            assert!(store.public()[1].active && !store.public()[0].active);
            let staff = store.unwrap(Credential::Staff, &b, pin.unwrap_or(b"ignored")).unwrap();
            let admin = store.unwrap(Credential::Admin, &b, b"admin-2468").unwrap();
            assert_eq!(*staff, *admin);
            let opened = store.open(&admin).unwrap();
            assert_eq!(opened.keys.len(), 2);
            assert_eq!(opened.keys[1].1, keys[1].1);
        }
    }

    #[test]
    fn the_staff_pin_does_not_open_the_admin_slot_nor_the_reverse() {
        let b = binding("0000abcd");
        let (bytes, _) = sample(&b, Some(b"123456"));
        let store = KeyStore::parse(&bytes).unwrap();
        assert_eq!(store.unwrap(Credential::Admin, &b, b"123456"), Err(KeyStoreError::WrongKey));
        assert_eq!(
            store.unwrap(Credential::Staff, &b, b"admin-2468"),
            Err(KeyStoreError::WrongKey)
        );
    }

    #[test]
    fn wrong_pin_or_other_board_is_wrong_key_not_damage() {
        let (bytes, _) = sample(&binding("0000abcd"), Some(b"123456"));
        let store = KeyStore::parse(&bytes).unwrap();
        let other = binding("0000abce");
        for (who, pin, b) in [
            (Credential::Staff, &b"654321"[..], binding("0000abcd")),
            (Credential::Staff, b"123456", binding("0000abce")),
            (Credential::Admin, b"admin-2468", other),
        ] {
            assert_eq!(store.unwrap(who, &b, pin), Err(KeyStoreError::WrongKey));
        }
    }

    #[test]
    fn any_flipped_byte_is_detected_as_damage() {
        let (bytes, _) = sample(&binding("0000abcd"), None);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(matches!(KeyStore::parse(&b), Err(KeyStoreError::Damaged(_))), "byte {i}");
        }
        for len in [0, 10, FIXED_LEN, bytes.len() - 1] {
            assert!(KeyStore::parse(&bytes[..len]).is_err());
        }
    }

    fn recompute_checksum(bytes: &mut [u8]) {
        let n = bytes.len();
        let sum = Sha256::digest(&bytes[..n - CHECKSUM_LEN]);
        bytes[n - CHECKSUM_LEN..].copy_from_slice(&sum);
    }

    #[test]
    fn tampering_with_a_valid_checksum_fails_an_aead() {
        // An attacker who edits any byte after the header and recomputes the checksum: the
        // edit fails to parse, or fails the AEAD of whatever it touched (a slot: that
        // credential; the public part or the keys: both). Nothing opens to different keys.
        let b = binding("0000abcd");
        let (bytes, keys) = sample(&b, Some(b"123456"));
        for i in 8..bytes.len() - CHECKSUM_LEN {
            let mut t = bytes.clone();
            t[i] ^= 1;
            recompute_checksum(&mut t);
            let Ok(store) = KeyStore::parse(&t) else { continue };
            let mut failed = 0;
            for (who, pin) in
                [(Credential::Staff, &b"123456"[..]), (Credential::Admin, b"admin-2468")]
            {
                match store.unwrap(who, &b, pin).and_then(|mk| store.open(&mk)) {
                    Ok(opened) => assert!(
                        opened.keys.iter().zip(&keys).all(|(a, b)| a == b),
                        "byte {i}: {who:?} opens other keys"
                    ),
                    Err(_) => failed += 1,
                }
            }
            assert!(failed > 0, "byte {i} edited and every credential still opens");
        }
    }

    #[test]
    fn a_doctored_argon2_cost_is_damage_not_an_out_of_memory() {
        let b = binding("0000abcd");
        let (mut bytes, _) = sample(&b, Some(b"123456"));
        let first_slot = KeyStore::parse(&bytes).unwrap().aad.len() + 1;
        // The first slot's memory field: 4 GiB.
        bytes[first_slot + 1..first_slot + 5].copy_from_slice(&u32::MAX.to_be_bytes());
        recompute_checksum(&mut bytes);
        assert!(matches!(KeyStore::parse(&bytes), Err(KeyStoreError::Damaged(_))));
    }

    #[test]
    fn device_secret_is_required_when_used() {
        let with_otp = Binding { serial: "x".into(), device_secret: Some(Zeroizing::new([9; 32])) };
        let (bytes, _) = sample(&with_otp, None);
        let store = KeyStore::parse(&bytes).unwrap();
        assert_eq!(
            store.unwrap(Credential::Staff, &binding("x"), b"").err(),
            Some(KeyStoreError::MissingDeviceSecret)
        );
        let other_otp =
            Binding { serial: "x".into(), device_secret: Some(Zeroizing::new([8; 32])) };
        assert_eq!(
            store.unwrap(Credential::Admin, &other_otp, b"admin-2468").err(),
            Some(KeyStoreError::WrongKey)
        );
        let mk = store.unwrap(Credential::Staff, &with_otp, b"").unwrap();
        assert!(store.open(&mk).is_ok());
    }
}
