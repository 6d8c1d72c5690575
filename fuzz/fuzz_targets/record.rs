//! The record parser and `open`, binary and text forms.
//!
//! Input: one mode byte, then the data.
//! - mode 0: a binary record, opened with the kit key under the kit's context;
//! - mode 1: a context length byte, the context, then a binary record;
//! - mode 2: a `vk1.` text form, decoded, parsed and opened like mode 0;
//! - mode 3: a value sealed to the kit key, one byte altered (position from the next byte).
//!
//! Checked beyond "no panic": a parsed record has a length inside the format's bounds; an
//! opened value is UTF-8 of the announced length and re-seals to a record that opens to it;
//! a decoded text form re-encodes to exactly the input (one canonical text per record); an
//! altered record never opens; heap use stays within a few times the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::{KIT_CONTEXT, count_allocations, kit_key};
use vbzkey_protocol::record::{self, MAX_RECORD_LEN, MAX_TEXT_LEN, MIN_RECORD_LEN, Record};

count_allocations!();

fn check_binary(bytes: &[u8], context: &[u8]) {
    let key = kit_key();
    let Ok(rec) = Record::parse(bytes) else { return };
    assert!((MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&bytes.len()));
    assert_eq!(rec.plaintext_len(), bytes.len() - MIN_RECORD_LEN);
    match rec.open(&key, context) {
        Ok(value) => {
            assert_eq!(value.len(), rec.plaintext_len());
            assert!(std::str::from_utf8(&value).is_ok());
            let again = record::seal(key.public_key(), context, &value).expect("re-seal");
            assert_eq!(&record::open(&key, context, &again).expect("re-open")[..], &value[..]);
        }
        Err(e) => assert!(!e.code().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let ((), peak) = peak_during(|| match mode % 4 {
        0 => check_binary(rest, KIT_CONTEXT),
        1 => {
            let Some((&n, rest)) = rest.split_first() else { return };
            let (context, bytes) = rest.split_at(usize::from(n).min(rest.len()));
            check_binary(bytes, context);
        }
        2 => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            if let Ok(bytes) = record::from_text(text) {
                assert!(text.len() <= MAX_TEXT_LEN);
                assert_eq!(record::to_text(&bytes), text, "one canonical text per record");
                check_binary(&bytes, KIT_CONTEXT);
            }
        }
        _ => {
            let Some((&at, value)) = rest.split_first() else { return };
            let Ok(value) = std::str::from_utf8(value) else { return };
            let key = kit_key();
            let Ok(mut rec) = record::seal(key.public_key(), KIT_CONTEXT, value.as_bytes()) else {
                assert!(value.len() > record::MAX_PLAINTEXT_LEN);
                return;
            };
            assert_eq!(&record::open(&key, KIT_CONTEXT, &rec).unwrap()[..], value.as_bytes());
            let i = usize::from(at) % rec.len();
            rec[i] ^= 1 << (at % 8);
            assert!(record::open(&key, KIT_CONTEXT, &rec).is_err(), "an altered record opened");
        }
    });
    // Parsing borrows; opening copies the ciphertext once; a re-seal makes one more record.
    assert_bounded("record", data.len(), peak, 8, 16 * 1024);
});
