//! The key store file as read from the SD card (`keystore::KeyStore::parse`).
//!
//! Input: the store's bytes. Unless the first byte is odd, the trailing SHA-256 checksum is
//! made valid so the fuzzer explores the structure behind it.
//! Checked: a parsed store has at most as many public entries and slots as its bytes allow;
//! the slots that need no Argon2id (a staff slot without PIN, the open host half, a paired
//! host's slot under a fixed secret) are opened, and the keys under the resulting master
//! key either open or fail cleanly; heap use stays proportional to the file. PIN slots are
//! not opened: Argon2id at the cost the file names is the point of them (docs/TESTING.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use vbzkey_firmware::keystore::{Binding, Credential, Halves, KeyStore, SlotKind};
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;
use zeroize::Zeroizing;

count_allocations!();

fuzz_target!(|data: &[u8]| {
    let Some((&raw, body)) = data.split_first() else { return };
    let mut file = body.to_vec();
    if raw % 2 == 0 {
        file.extend_from_slice(&Sha256::digest(body));
    }
    let binding = Binding { serial: "00000000fuzz0001".into(), device_secret: None };
    let ((), peak) = peak_during(|| {
        let Ok(store) = KeyStore::parse(&file) else { return };
        assert!(store.public().len() <= file.len());
        assert!(store.slots().len() <= file.len());
        let staff_open = store.slots().iter().any(|s| s.kind() == SlotKind::StaffOpen);
        if !staff_open || store.staff_pin_set() {
            return;
        }
        let Ok(device) = store.device_half(Credential::Staff, &binding, b"") else { return };
        let fixed = Zeroizing::new([0x41; 32]);
        let host = store.slots().iter().find_map(|s| s.host_key()).copied();
        let host_half = match host {
            Some(key) => store.host_half(&binding, Some((&key, &fixed))),
            None => store.host_half(&binding, None),
        };
        if let Ok(host_half) = host_half {
            let _ = store.open(&Halves::new(device, host_half).master_key());
        }
    });
    assert_bounded("key store", data.len(), peak, 16, 64 * 1024);
});
