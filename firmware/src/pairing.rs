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

use crate::keystore::{
    self, Binding, Credential, Halves, KdfParams, KeyStore, NewStore, Slot, SlotKind, SlotNonce,
};
use crate::storage::{File, Storage, StorageError};

/// Longest host label: what hosts decode in `Pairings` (`wire::MAX_LABEL_LEN`).
pub const MAX_LABEL: usize = vbzkey_protocol::wire::MAX_LABEL_LEN;

#[derive(Serialize, Deserialize)]
struct PairingsFile {
    version: u8,
    hosts: Vec<(([u8; 32], String), u64)>,
}

/// Load the pairings; a damaged file counts as "every host must pair again" (fail closed:
/// an empty list would serve everyone on USB).
pub fn load(storage: &dyn Storage) -> Result<Result<Vec<PairingInfo>, ()>, StorageError> {
    let Some(bytes) = storage.load(File::Pairings)? else { return Ok(Ok(Vec::new())) };
    let Some((sum, body)) = bytes.split_at_checked(32) else { return Ok(Err(())) };
    if Sha256::digest(body).as_slice() != sum {
        return Ok(Err(()));
    }
    let Ok(f) = postcard::from_bytes::<PairingsFile>(body) else { return Ok(Err(())) };
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
    let body = postcard::to_allocvec(&f).map_err(|e| {
        StorageError::new("encode", File::Pairings, std::io::Error::other(e.to_string()))
    })?;
    let mut bytes = Sha256::digest(&body).to_vec();
    bytes.extend_from_slice(&body);
    storage.store(File::Pairings, &bytes)
}

/// The device key: loaded, or made with `random` and stored on first start. Its file is a
/// one-key key store whose slots are bound to the board alone (no PIN: sessions open before the
/// PIN is typed; no host half: a host needs the device key to open a session in the first
/// place).
pub fn device_key(
    storage: &mut dyn Storage,
    binding: &Binding,
    random: &mut dyn FnMut(&mut [u8]) -> bool,
) -> Result<Option<Zeroizing<[u8; 32]>>, StorageError> {
    if let Some(bytes) = storage.load(File::DeviceKey)? {
        let opened = KeyStore::parse(&bytes).ok().and_then(|store| {
            let device = store.device_half(Credential::Staff, binding, b"").ok()?;
            let host = store.host_half(binding, None).ok()?;
            store.open(&Halves::new(device, host).master_key()).ok()
        });
        return Ok(opened.and_then(|keys| keys.keys.first().map(|(_, k)| k.to_bytes())));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    let halves = Halves::new(Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
    let (mut device, mut host) = (halves.device.clone(), halves.host.clone());
    let mut fresh = SlotNonce { salt: [0; 16], nonce: [0; 12] };
    let mut nonce = [0u8; 12];
    if !(random(&mut secret[..])
        && random(&mut device[..])
        && random(&mut host[..])
        && random(&mut fresh.salt)
        && random(&mut fresh.nonce)
        && random(&mut nonce))
    {
        return Ok(None);
    }
    let halves = Halves::new(device, host);
    // No PIN is part of this slot, so the Argon2 cost plays no part.
    let Ok(slot) = Slot::device(
        SlotKind::StaffOpen,
        KdfParams::TEST_ONLY_WEAK,
        fresh,
        binding,
        b"",
        &halves.device,
    ) else {
        return Ok(None);
    };
    let keys = [(0, SecretKey::from_bytes(*secret))];
    let slots = [slot, Slot::host_open(&halves.host)];
    let store = NewStore { keys: &keys, active: 0, slots: &slots, nonce };
    let Ok(bytes) = keystore::seal(&store, &halves.master_key()) else { return Ok(None) };
    storage.store(File::DeviceKey, &bytes)?;
    Ok(Some(secret))
}
