//! What the firmware reads from its SD card, besides the key store (`keystore` target): the
//! wrong-PIN counter, the pairings file and the audit log.
//!
//! Input: one mode byte, then the file's bytes.
//! - mode 0: the PIN counters. Counters that decode re-encode to exactly the file.
//! - mode 1: the pairings file, with its checksum made valid (so the fuzzer explores what is
//!   behind it) unless the next byte is odd. A list that loads stores and reloads to itself.
//! - mode 2: the audit log, read at start (`AuditLog::open`, which drops a torn last line)
//!   and verified. An intact log accepts an append and still verifies, one entry longer; a
//!   broken one is kept byte for byte (evidence).
//!
//! Heap use stays within a bound proportional to the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use vbzkey_firmware::audit::{self, AuditLog, Event, Record};
use vbzkey_firmware::storage::{File, MemStorage};
use vbzkey_firmware::{pairing, pin_counter};
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;

count_allocations!();

fn pairings(rest: &[u8]) {
    let Some((&raw, body)) = rest.split_first() else { return };
    let mut file = if raw % 2 == 0 { Sha256::digest(body).to_vec() } else { Vec::new() };
    file.extend_from_slice(body);
    let mut storage = MemStorage::default();
    storage.files.insert(File::Pairings, file);
    if let Ok(hosts) = pairing::load(&storage).unwrap() {
        assert!(hosts.len() <= body.len(), "more hosts than bytes");
        pairing::store(&mut storage, &hosts).unwrap();
        assert_eq!(pairing::load(&storage).unwrap().unwrap(), hosts);
    }
}

fn audit_log(rest: &[u8]) {
    let mut storage = MemStorage::default();
    storage.files.insert(File::AuditLog, rest.to_vec());
    let mut log = AuditLog::open(&mut storage, 1_700_000_000, &mut |_| {}).unwrap();
    let kept = storage.files[&File::AuditLog].clone();
    if !log.intact() {
        assert!(rest.starts_with(&kept), "a broken log is kept as found (a torn tail aside)");
        return;
    }
    let n = log.len();
    let rec =
        Record { event: Event::Unseal, keys: "0011223344556677", ok: 1, failed: 0, host: "fz" };
    log.append(&mut storage, 1_700_000_001, &rec).unwrap();
    let text = String::from_utf8(storage.files[&File::AuditLog].clone()).expect("log is UTF-8");
    let (_, entries) = audit::verify(&text).expect("an appended intact log verifies");
    assert_eq!(entries, n + 1);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let ((), peak) = peak_during(|| match mode % 3 {
        0 => {
            if let Some(c) = pin_counter::Counters::decode(rest) {
                assert_eq!(&c.encode()[..], rest);
            }
        }
        1 => pairings(rest),
        _ => audit_log(rest),
    });
    // The file is held two or three times over (storage, a copy, the parsed form), each host
    // label or line once more.
    assert_bounded("sd card file", data.len(), peak, 64, 64 * 1024);
});
