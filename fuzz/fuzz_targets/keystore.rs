//! The key store file as read from the SD card (`keystore::KeyStore::parse`), kept apart
//! from the other files because its format is being reworked (issue 10): adapt this file
//! with it.
//!
//! Input: the store's bytes. Unless the first byte is odd, the trailing SHA-256 checksum is
//! made valid so the fuzzer explores the structure behind it.
//! Checked: a parsed store has at most as many public entries as its bytes allow; its KEK
//! is derived (without a PIN, as at start) and the sealed part either opens or fails
//! cleanly; heap use stays proportional to the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use vbzkey_firmware::keystore::{Binding, KeyStore};
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;

count_allocations!();

fuzz_target!(|data: &[u8]| {
    let Some((&raw, body)) = data.split_first() else { return };
    let mut file = body.to_vec();
    if raw % 2 == 0 {
        file.extend_from_slice(&Sha256::digest(body));
    }
    let binding = Binding { serial: "00000000fuzz0001".into(), device_secret: None };
    let ((), peak) = peak_during(|| {
        let Ok((store, sealed)) = KeyStore::parse(&file) else { return };
        assert!(store.public().len() <= file.len());
        if store.pin_set() {
            // Unlocking runs Argon2 at the cost the file names: see docs/TESTING.md.
            return;
        }
        if let Ok(kek) = store.kek(&binding, None) {
            let _ = sealed.open(&kek, store.public());
        }
    });
    assert_bounded("key store", data.len(), peak, 16, 64 * 1024);
});
