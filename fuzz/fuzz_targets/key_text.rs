//! The key-file parsers: `vkpub1.` / `vksec1.` key text, the encrypted key file (method 2)
//! and the passphrase-key descriptor (method 1), as the bridge and the CLIs read them.
//!
//! Input: one mode byte, then the file's text.
//! Checked: a parsed key prints back exactly as read (one text per key); a parsed file
//! survives a write-and-read round trip; opening a parsed key file with a wrong passphrase
//! fails cleanly in bounded memory (the file names its own Argon2 cost).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;
use vbzkey_protocol::{PublicKey, SecretKey};
use vbzkey_softkey::{KeyFile, PassphraseKey};

count_allocations!();

/// A passphrase no seed file was made with.
const WRONG: &[u8] = b"not the passphrase of any seed";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let ((), peak) = peak_during(|| match mode % 4 {
        0 => {
            if let Ok(k) = PublicKey::from_text(text) {
                assert_eq!(k.to_text(), text.trim());
            }
        }
        1 => {
            if let Ok(k) = SecretKey::from_text(text) {
                assert_eq!(&k.to_text()[..], text.trim());
            }
        }
        2 => {
            if let Ok(f) = KeyFile::from_json(text) {
                assert_eq!(KeyFile::from_json(&f.to_json()).unwrap(), f);
                assert!(f.public_key().is_ok());
                assert!(f.open(WRONG).is_err());
            }
        }
        _ => {
            if let Ok(d) = PassphraseKey::from_json(text) {
                assert_eq!(PassphraseKey::from_json(&d.to_json()).unwrap(), d);
                assert!(d.unlock(WRONG).is_err());
            }
        }
    });
    // JSON parsing copies fields; Argon2 gets at most the workstation cost (64 MiB) plus
    // what the parser holds.
    assert_bounded("key file", data.len(), peak, 16, 80 * 1024 * 1024);
});
