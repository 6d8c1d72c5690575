//! The key store file: every private key version of the dongle, encrypted under a master key
//! made of two halves that only the file's credential *slots* unwrap (like LUKS key slots, but
//! split between the dongle and the workstations it knows).
//!
//! ```text
//! 0       "VZKS"    magic
//! 4       2         version
//! 5       0 0 0     reserved
//! 8       N         public part length (u32 BE)
//! 12      public part: postcard(Vec<PublicEntry>)
//! 12+N    S         slot count (u8), then S slots of SLOT_LEN bytes:
//!                     kind (1) ‖ flags (1; bit 0: the OTP secret is in the slot key)
//!                     ‖ Argon2id m KiB, t, p (u32 BE each) ‖ salt (16) ‖ nonce (12)
//!                     ‖ host key (32; zeros unless a host slot)
//!                     ‖ ChaCha20Poly1305(slot key, half) (32 + 16)
//! …       nonce (12) ‖ ChaCha20Poly1305(master key, postcard(Vec<SecretEntry>)) ‖ tag (16)
//! end-32  SHA-256 of everything before it
//! ```
//!
//! **Two halves.** `master key = HKDF-SHA256("vbzkey master key v2", device half ‖ host half)`.
//! The *device half* is wrapped by the credential slots: the staff PIN's and the admin PIN's,
//! `slot key = HKDF-SHA256(salt, "vbzkey slot v2" ‖ kind ‖ len ‖ serial ‖ len ‖ otp ‖
//! Argon2id(PIN, salt))`. The *host half* is wrapped once per paired host, under a slot key
//! from that host's 256-bit unlock secret (no Argon2: the secret is not guessable); while no
//! host is paired it lies in an open slot, in clear, and the store is protected by the PIN
//! alone. So once hosts are paired, the card, the board and the PIN together open nothing:
//! one of the paired workstations' secrets is needed too (split custody).
//!
//! Each slot's associated data is its own header (kind, flags, cost, salt, nonce, host key), so
//! a slot cannot be moved to another kind, host or cost; the keys' associated data is the file
//! up to the slot count, so the public part cannot be swapped. The trailing SHA-256 tells
//! accidental damage (a torn sector) apart from a wrong PIN, so damage never burns a PIN try;
//! it is not a MAC (the AEAD tags are).

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vbzkey_protocol::{KeyId, SecretKey};
use zeroize::{Zeroize, Zeroizing};

use crate::bytes::{Reader, split_tail};

const MAGIC: &[u8; 4] = b"VZKS";
const VERSION: u8 = 2;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const FIXED_LEN: usize = 12;
const CHECKSUM_LEN: usize = 32;
const SLOT_FLAG_OTP: u8 = 1;
/// kind ‖ flags ‖ m, t, p ‖ salt ‖ nonce ‖ host key
const SLOT_HEADER_LEN: usize = 1 + 1 + 12 + SALT_LEN + NONCE_LEN + 32;
const SLOT_LEN: usize = SLOT_HEADER_LEN + 32 + TAG_LEN;
/// The public part of a store with many rotations is still small; a bound keeps parsing cheap.
const MAX_PUBLIC_PART: usize = 64 * 1024;
/// A slot asking for more Argon2 memory than this was edited: refuse it rather than let a
/// doctored card exhaust the Pi's 512 MB.
const MAX_KDF_MEMORY_KIB: u32 = 256 * 1024;
/// Likewise for passes.
const MAX_KDF_PASSES: u32 = 16;

/// A 32-byte secret that is wiped when dropped: a half, a master key, an unlock secret.
pub type Secret32 = Zeroizing<[u8; 32]>;
/// The key that encrypts the key versions.
pub type MasterKey = Secret32;

/// Argon2id cost, stored in each slot so it can be re-tuned without breaking old stores (the
/// one parameter type of the project, `protocol::kdf`).
pub type KdfParams = vbzkey_protocol::kdf::Argon2idParams;

/// Recorded in slots that do not stretch (the cost plays no part there).
const NO_KDF: KdfParams = KdfParams { m_kib: 0, t: 0, p: 0 };

/// Whether a slot's cost is one this board should run: valid for Argon2, and not so large that
/// a doctored card exhausts the Pi's 512 MB.
fn cost_ok(kdf: KdfParams) -> bool {
    kdf.m_kib <= MAX_KDF_MEMORY_KIB && kdf.t <= MAX_KDF_PASSES && kdf.check().is_ok()
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
    /// A slot was sealed with a device secret this board does not provide.
    #[error("the key store was sealed with a device secret (OTP) that this board does not have")]
    MissingDeviceSecret,
    /// The slot does not open: wrong PIN, wrong host secret, or another device's serial /
    /// secret.
    #[error("the PIN is wrong, or the key store belongs to another device")]
    WrongKey,
    /// The store has no slot for this credential (or this host).
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
    /// The device half under the staff PIN.
    StaffPin = 1,
    /// The device half for staff without a PIN: the slot key comes from the board alone.
    StaffOpen = 2,
    /// The device half under the admin credential.
    Admin = 3,
    /// The host half under one paired host's unlock secret.
    Host = 4,
    /// The host half in clear: no host is paired, the PIN alone protects the store.
    HostOpen = 5,
}

impl SlotKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(SlotKind::StaffPin),
            2 => Some(SlotKind::StaffOpen),
            3 => Some(SlotKind::Admin),
            4 => Some(SlotKind::Host),
            5 => Some(SlotKind::HostOpen),
            _ => None,
        }
    }

    fn stretches(self) -> bool {
        matches!(self, SlotKind::StaffPin | SlotKind::Admin)
    }
}

/// Which credential a caller presents for the device half.
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

/// The two halves of the master key, as held while the keys are open. Wiped on drop.
pub struct Halves {
    /// From the staff or admin slot.
    pub device: Secret32,
    /// From the asking host's slot (or the open one).
    pub host: Secret32,
}

impl Halves {
    /// Two fresh halves from the caller's RNG.
    pub fn new(device: Secret32, host: Secret32) -> Self {
        Halves { device, host }
    }

    /// The master key.
    pub fn master_key(&self) -> MasterKey {
        let mut ikm = Zeroizing::new(Vec::with_capacity(64));
        ikm.extend_from_slice(&self.device[..]);
        ikm.extend_from_slice(&self.host[..]);
        let mut mk = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = Hkdf::<Sha256>::new(None, &ikm[..]).expand(b"vbzkey master key v2", &mut mk[..]);
        mk
    }

    /// A copy (wiped on drop like the original).
    pub fn duplicate(&self) -> Halves {
        Halves { device: self.device.clone(), host: self.host.clone() }
    }
}

/// One slot: a half wrapped under a key from the board and a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    kind: SlotKind,
    otp: bool,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    host: [u8; 32],
    wrapped: [u8; 32 + TAG_LEN],
}

/// Fresh randomness for one slot.
#[derive(Debug, Clone, Copy)]
pub struct SlotNonce {
    /// Salt of the slot key.
    pub salt: [u8; SALT_LEN],
    /// AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Slot {
    /// Wrap the device half for a credential slot (`StaffPin`, `StaffOpen` or `Admin`) under
    /// the board and `secret` (the PIN; ignored for `StaffOpen`).
    pub fn device(
        kind: SlotKind,
        kdf: KdfParams,
        fresh: SlotNonce,
        binding: &Binding,
        secret: &[u8],
        device_half: &Secret32,
    ) -> Result<Self, KeyStoreError> {
        if !matches!(kind, SlotKind::StaffPin | SlotKind::StaffOpen | SlotKind::Admin) {
            return Err(KeyStoreError::NoSlot);
        }
        let kdf = if kind.stretches() { kdf } else { NO_KDF };
        Self::seal(kind, kdf, fresh, [0; 32], binding, secret, device_half)
    }

    /// Wrap the host half for the paired host `host_key` under its unlock secret.
    pub fn host(
        host_key: [u8; 32],
        fresh: SlotNonce,
        binding: &Binding,
        unlock_secret: &Secret32,
        host_half: &Secret32,
    ) -> Result<Self, KeyStoreError> {
        Self::seal(SlotKind::Host, NO_KDF, fresh, host_key, binding, &unlock_secret[..], host_half)
    }

    /// The host half in clear: no host is paired.
    pub fn host_open(host_half: &Secret32) -> Self {
        let mut wrapped = [0u8; 32 + TAG_LEN];
        wrapped[..32].copy_from_slice(&host_half[..]);
        Slot {
            kind: SlotKind::HostOpen,
            otp: false,
            kdf: NO_KDF,
            salt: [0; SALT_LEN],
            nonce: [0; NONCE_LEN],
            host: [0; 32],
            wrapped,
        }
    }

    fn seal(
        kind: SlotKind,
        kdf: KdfParams,
        fresh: SlotNonce,
        host: [u8; 32],
        binding: &Binding,
        secret: &[u8],
        half: &Secret32,
    ) -> Result<Self, KeyStoreError> {
        let mut slot = Slot {
            kind,
            otp: binding.device_secret.is_some(),
            kdf,
            salt: fresh.salt,
            nonce: fresh.nonce,
            host,
            wrapped: [0; 32 + TAG_LEN],
        };
        let key = slot.key(binding, secret)?;
        let mut wrapped = [0u8; 32 + TAG_LEN];
        wrapped[..32].copy_from_slice(&half[..]);
        let tag = ChaCha20Poly1305::new(&Key::from(*key))
            .encrypt_inout_detached(
                &Nonce::from(slot.nonce),
                &slot.header(),
                (&mut wrapped[..32]).into(),
            )
            .map_err(|_| KeyStoreError::Damaged("slot does not encrypt"))?;
        wrapped[32..].copy_from_slice(&tag);
        slot.wrapped = wrapped;
        wrapped.zeroize();
        Ok(slot)
    }

    /// What the slot is for.
    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    /// The paired host a host slot belongs to.
    pub fn host_key(&self) -> Option<&[u8; 32]> {
        (self.kind == SlotKind::Host).then_some(&self.host)
    }

    /// The slot's header: its kind, flags, cost, salt, nonce and host, the AEAD's associated
    /// data (so none of them can be changed without the slot failing to open).
    fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(SLOT_HEADER_LEN);
        h.push(self.kind as u8);
        h.push(if self.otp { SLOT_FLAG_OTP } else { 0 });
        for v in [self.kdf.m_kib, self.kdf.t, self.kdf.p] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h.extend_from_slice(&self.salt);
        h.extend_from_slice(&self.nonce);
        h.extend_from_slice(&self.host);
        h
    }

    fn parse(r: &mut Reader<'_>) -> Result<Self, KeyStoreError> {
        let short = KeyStoreError::Damaged("bad slot count");
        let kind = SlotKind::from_byte(r.u8().ok_or(short.clone())?)
            .ok_or(KeyStoreError::Damaged("unknown slot kind"))?;
        let flags = r.u8().ok_or(short.clone())?;
        if flags & !SLOT_FLAG_OTP != 0 {
            return Err(KeyStoreError::Damaged("unknown slot flags"));
        }
        let mut u32 = || r.u32().ok_or(short.clone());
        let kdf = KdfParams { m_kib: u32()?, t: u32()?, p: u32()? };
        if kind.stretches() && !cost_ok(kdf) {
            return Err(KeyStoreError::Damaged("invalid Argon2 parameters"));
        }
        let (salt, nonce, host, wrapped) =
            (|| Some((r.array()?, r.array()?, r.array()?, r.array()?)))().ok_or(short)?;
        Ok(Slot { kind, otp: flags & SLOT_FLAG_OTP != 0, kdf, salt, nonce, host, wrapped })
    }

    /// The slot key: the board, the slot's own header facts, and the secret (stretched for
    /// PINs, as is for a host's 256-bit unlock secret, absent for a staff slot without PIN).
    fn key(&self, binding: &Binding, secret: &[u8]) -> Result<Secret32, KeyStoreError> {
        let mut ikm = Zeroizing::new(Vec::with_capacity(192));
        ikm.extend_from_slice(b"vbzkey slot v2");
        ikm.push(self.kind as u8);
        ikm.extend_from_slice(&(binding.serial.len() as u32).to_be_bytes());
        ikm.extend_from_slice(binding.serial.as_bytes());
        match (self.otp, &binding.device_secret) {
            (true, Some(s)) => {
                ikm.extend_from_slice(&32u32.to_be_bytes());
                ikm.extend_from_slice(&s[..]);
            }
            (true, None) => return Err(KeyStoreError::MissingDeviceSecret),
            // Sealed before an OTP secret was programmed: it keeps opening without it.
            (false, _) => ikm.extend_from_slice(&0u32.to_be_bytes()),
        }
        match self.kind {
            SlotKind::StaffPin | SlotKind::Admin => {
                ikm.extend_from_slice(&stretch(self.kdf, &self.salt, secret)?[..]);
            }
            SlotKind::Host => ikm.extend_from_slice(secret),
            SlotKind::StaffOpen | SlotKind::HostOpen => {}
        }
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(&self.salt), &ikm)
            .expand(b"slot key", &mut key[..])
            .map_err(|_| KeyStoreError::Damaged("slot key"))?;
        Ok(key)
    }

    fn open(&self, binding: &Binding, secret: &[u8]) -> Result<Secret32, KeyStoreError> {
        let mut half = Zeroizing::new([0u8; 32]);
        half.copy_from_slice(&self.wrapped[..32]);
        if self.kind == SlotKind::HostOpen {
            return Ok(half);
        }
        let key = self.key(binding, secret)?;
        let tag = Tag::try_from(&self.wrapped[32..]).map_err(|_| KeyStoreError::WrongKey)?;
        ChaCha20Poly1305::new(&Key::from(*key))
            .decrypt_inout_detached(
                &Nonce::from(self.nonce),
                &self.header(),
                (&mut half[..]).into(),
                &tag,
            )
            .map_err(|_| KeyStoreError::WrongKey)?;
        Ok(half)
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

fn file_head() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h
}

/// Argon2id of `secret` at `kdf` (the one expensive step of a PIN check).
pub fn stretch(
    kdf: KdfParams,
    salt: &[u8; SALT_LEN],
    secret: &[u8],
) -> Result<Secret32, KeyStoreError> {
    if !cost_ok(kdf) {
        return Err(KeyStoreError::Damaged("invalid Argon2 parameters"));
    }
    kdf.stretch(secret, salt).map_err(|_| KeyStoreError::Damaged("invalid Argon2 input"))
}

/// A parsed key store file: public facts, slots, and the still-encrypted keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
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
        let (body, checksum) = split_tail(bytes, CHECKSUM_LEN).ok_or(damaged("too short"))?;
        if !bool::from(Sha256::digest(body).as_slice().ct_eq(checksum)) {
            return Err(damaged("checksum mismatch"));
        }
        let mut r = Reader::new(body);
        if r.take(4) != Some(MAGIC.as_slice()) {
            return Err(damaged("not a key store"));
        }
        if r.u8() != Some(VERSION) {
            return Err(damaged("unknown key store version"));
        }
        if r.take(3) != Some([0, 0, 0].as_slice()) {
            return Err(damaged("unknown flags"));
        }
        let n = r.u32().map_or(usize::MAX, |n| n as usize);
        if n > MAX_PUBLIC_PART {
            return Err(damaged("bad public part length"));
        }
        let public_bytes = r.take(n).ok_or(damaged("bad public part length"))?;
        let public: Vec<PublicEntry> = postcard::from_bytes(public_bytes)
            .map_err(|_| damaged("public part does not parse"))?;
        let aad = body.get(..FIXED_LEN + n).ok_or(damaged("bad public part length"))?.to_vec();
        let count = r.u8().ok_or(damaged("bad slot count"))?;
        let slots = (0..count).map(|_| Slot::parse(&mut r)).collect::<Result<Vec<_>, _>>()?;
        let nonce = r.array().ok_or(damaged("bad slot count"))?;
        let sealed = r.rest().to_vec();
        if sealed.len() < TAG_LEN {
            return Err(damaged("bad slot count"));
        }
        Ok(KeyStore { public, slots, aad, nonce, sealed })
    }

    /// Whether opening records needs a staff PIN.
    pub fn staff_pin_set(&self) -> bool {
        self.slots.iter().any(|s| s.kind == SlotKind::StaffPin)
    }

    /// Whether the host half is held by paired hosts only (split custody), not in clear.
    pub fn split_custody(&self) -> bool {
        !self.slots.iter().any(|s| s.kind == SlotKind::HostOpen)
    }

    /// Whether any slot needs the OTP device secret.
    pub fn otp_used(&self) -> bool {
        self.slots.iter().any(|s| s.otp)
    }

    /// The public entries (readable while locked).
    pub fn public(&self) -> &[PublicEntry] {
        &self.public
    }

    /// The slots, to carry over into a re-sealed store.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Unwrap the device half through `who`'s slot with `secret` (the PIN; ignored by a
    /// staff slot without PIN). This is where a PIN is checked: one Argon2id.
    pub fn device_half(
        &self,
        who: Credential,
        binding: &Binding,
        secret: &[u8],
    ) -> Result<Secret32, KeyStoreError> {
        let slot = self.slots.iter().find(|s| who.matches(s.kind)).ok_or(KeyStoreError::NoSlot)?;
        slot.open(binding, secret)
    }

    /// The host half: from the open slot while no host is paired, else from `host`'s slot with
    /// its unlock secret (`NoSlot` if that host holds none).
    pub fn host_half(
        &self,
        binding: &Binding,
        host: Option<(&[u8; 32], &Secret32)>,
    ) -> Result<Secret32, KeyStoreError> {
        if let Some(open) = self.slots.iter().find(|s| s.kind == SlotKind::HostOpen) {
            return open.open(binding, b"");
        }
        let (key, secret) = host.ok_or(KeyStoreError::NoSlot)?;
        let slot =
            self.slots.iter().find(|s| s.host_key() == Some(key)).ok_or(KeyStoreError::NoSlot)?;
        slot.open(binding, &secret[..])
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
    /// The slots.
    pub slots: &'a [Slot],
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
    out.extend_from_slice(&file_head());
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
mod tests;
