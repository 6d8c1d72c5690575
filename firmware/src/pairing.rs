//! The dongle's session identity and its paired hosts.
//!
//! - The **device key** (X25519) answers host sessions (`protocol::session`, Noise IK). It is
//!   made on first start, before any record key, and stored as a one-key key store sealed to
//!   the board (serial and OTP secret; no PIN, since sessions open before the PIN is typed).
//! - The **pairings** list the hosts' static public keys. With none, any host on USB or the
//!   local socket is served as before; with one or more, only paired hosts are, in a session.
//!   TCP always needs a session. The file carries a SHA-256 checksum against damage; it is
//!   not secret (public keys and names).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::wire::PairingInfo;
use zeroize::Zeroizing;

use crate::keystore::{self, Binding, Credential, KdfParams, KeyStore, NewStore, Slot, SlotKind};
use crate::storage::{File, Storage, StorageError};

/// Longest host label.
pub const MAX_LABEL: usize = 64;

#[derive(Serialize, Deserialize)]
struct PairingsFile {
    version: u8,
    hosts: Vec<(([u8; 32], String), u64)>,
}

/// Load the pairings; a damaged file counts as "every host must pair again" (fail closed:
/// an empty list would serve everyone on USB).
pub fn load(storage: &dyn Storage) -> Result<Result<Vec<PairingInfo>, ()>, StorageError> {
    let Some(bytes) = storage.load(File::Pairings)? else { return Ok(Ok(Vec::new())) };
    if bytes.len() < 32 || Sha256::digest(&bytes[32..])[..] != bytes[..32] {
        return Ok(Err(()));
    }
    let Ok(f) = postcard::from_bytes::<PairingsFile>(&bytes[32..]) else { return Ok(Err(())) };
    Ok(Ok(f
        .hosts
        .into_iter()
        .map(|((host_key, label), paired_at)| PairingInfo { host_key, label, paired_at })
        .collect()))
}

/// Store the pairings crash-safely.
pub fn store(storage: &mut dyn Storage, hosts: &[PairingInfo]) -> Result<(), StorageError> {
    let f = PairingsFile {
        version: 1,
        hosts: hosts.iter().map(|p| ((p.host_key, p.label.clone()), p.paired_at)).collect(),
    };
    let body = postcard::to_allocvec(&f).expect("plain data");
    let mut bytes = Sha256::digest(&body).to_vec();
    bytes.extend_from_slice(&body);
    storage.store(File::Pairings, &bytes)
}

/// The device key: loaded, or made with `random` and stored on first start. Its file is a
/// one-key key store whose only slot is bound to the board (no PIN: sessions open before the
/// PIN is typed).
pub fn device_key(
    storage: &mut dyn Storage,
    binding: &Binding,
    random: &mut dyn FnMut(&mut [u8]) -> bool,
) -> Result<Option<Zeroizing<[u8; 32]>>, StorageError> {
    if let Some(bytes) = storage.load(File::DeviceKey)? {
        let opened = KeyStore::parse(&bytes).ok().and_then(|store| {
            let mk = store.unwrap(Credential::Staff, binding, b"").ok()?;
            store.open(&mk).ok()
        });
        return Ok(opened.and_then(|keys| keys.keys.first().map(|(_, k)| k.to_bytes())));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    let mut mk = Zeroizing::new([0u8; 32]);
    let (mut salt, mut nonce, mut slot_nonce) = ([0u8; 16], [0u8; 12], [0u8; 12]);
    if !(random(&mut secret[..])
        && random(&mut mk[..])
        && random(&mut salt)
        && random(&mut nonce)
        && random(&mut slot_nonce))
    {
        return Ok(None);
    }
    // No PIN is part of this slot, so the Argon2 cost plays no part; record the minimum.
    let Ok(slot) = Slot::wrap(
        SlotKind::StaffOpen,
        KdfParams::TEST_ONLY_WEAK,
        salt,
        slot_nonce,
        binding,
        b"",
        &mk,
    ) else {
        return Ok(None);
    };
    let keys = [(0, SecretKey::from_bytes(*secret))];
    let store = NewStore {
        keys: &keys,
        active: 0,
        slots: &[slot],
        otp_used: binding.device_secret.is_some(),
        nonce,
    };
    let Ok(bytes) = keystore::seal(&store, &mk) else { return Ok(None) };
    storage.store(File::DeviceKey, &bytes)?;
    Ok(Some(secret))
}
