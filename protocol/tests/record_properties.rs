//! Property tests of the record format: round trips, tampering, wrong contexts and random
//! input never panic and never yield plaintext.

use proptest::prelude::*;
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record::{self, MAX_PLAINTEXT_LEN, Record, RecordError};
use zeroize::Zeroizing;

fn key() -> SecretKey {
    SecretKey::derive(b"vbzkey property-test recipient key seed")
}

/// Any UTF-8 string of at most `MAX_PLAINTEXT_LEN` bytes, multi-byte characters included.
fn plaintext() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..1400).prop_map(|chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > MAX_PLAINTEXT_LEN {
                break;
            }
            s.push(c);
        }
        s
    })
}

fn context() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=record::MAX_CONTEXT_LEN)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip_any_value_any_context(pt in plaintext(), ctx in context(), eph in any::<[u8; 32]>()) {
        let sk = key();
        let rec = record::seal_with_ephemeral(sk.public_key(), &ctx, pt.as_bytes(), Zeroizing::new(eph)).unwrap();
        prop_assert_eq!(rec.len(), record::MIN_RECORD_LEN + pt.len());
        let opened = record::open(&sk, &ctx, &rec).unwrap();
        prop_assert_eq!(&opened[..], pt.as_bytes());
        let text = record::to_text(&rec);
        prop_assert_eq!(record::from_text(&text).unwrap(), rec);
    }

    #[test]
    fn any_single_bit_flip_fails(pt in plaintext(), ctx in context(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let sk = key();
        let mut rec = record::seal(sk.public_key(), &ctx, pt.as_bytes()).unwrap();
        let i = pos.index(rec.len());
        rec[i] ^= 1 << bit;
        let err = record::open(&sk, &ctx, &rec).unwrap_err();
        // Which error depends on the byte hit; what matters is that it is an error.
        let expected = match i {
            0 | 1 => "bad_magic",
            2 => "unsupported_version",
            3 => "unsupported_suite",
            4..=11 => "unknown_key_id",
            _ => "tag_mismatch",
        };
        // A flipped enc byte can, with negligible probability, give a low-order point.
        prop_assert!(err.code() == expected || ((12..44).contains(&i) && err == RecordError::LowOrderPoint), "{err:?} at {i}");
    }

    #[test]
    fn another_context_fails(pt in plaintext(), ctx in context(), other in context()) {
        prop_assume!(ctx != other);
        let sk = key();
        let rec = record::seal(sk.public_key(), &ctx, pt.as_bytes()).unwrap();
        prop_assert_eq!(record::open(&sk, &other, &rec).unwrap_err(), RecordError::TagMismatch);
    }

    #[test]
    fn truncated_or_extended_records_fail(pt in plaintext(), cut in any::<prop::sample::Index>(), extra in proptest::collection::vec(any::<u8>(), 1..32)) {
        let sk = key();
        let rec = record::seal(sk.public_key(), b"c", pt.as_bytes()).unwrap();
        let short = &rec[..cut.index(rec.len())];
        prop_assert!(record::open(&sk, b"c", short).is_err());
        let mut long = rec.clone();
        long.extend_from_slice(&extra);
        prop_assert!(record::open(&sk, b"c", &long).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..5000), text in ".{0,300}") {
        let sk = key();
        let _ = record::open(&sk, b"ctx", &bytes);
        if let Ok(r) = Record::parse(&bytes) {
            prop_assert!(r.plaintext_len() <= MAX_PLAINTEXT_LEN);
        }
        let _ = record::from_text(&text);
        let _ = record::from_text(&format!("vk1.{text}"));
    }
}

#[test]
fn too_long_and_non_utf8_values_are_refused() {
    let pk = key().public_key().clone();
    let long = vec![b'a'; MAX_PLAINTEXT_LEN + 1];
    assert_eq!(record::seal(&pk, b"", &long), Err(RecordError::PlaintextTooLong { len: 4097 }));
    assert!(record::seal(&pk, b"", &long[..MAX_PLAINTEXT_LEN]).is_ok());
    assert_eq!(record::seal(&pk, b"", b"\xff\xfe"), Err(RecordError::PlaintextNotUtf8));
}

#[test]
fn a_record_for_another_key_names_both_key_ids() {
    let other = SecretKey::derive(b"some other recipient key seed....");
    let rec = record::seal(other.public_key(), b"", b"x").unwrap();
    let err = record::open(&key(), b"", &rec).unwrap_err();
    assert_eq!(err, RecordError::UnknownKeyId { found: other.key_id(), expected: key().key_id() });
    assert!(err.to_string().contains(&other.key_id().to_string()));
}

#[test]
fn contexts_longer_than_the_limit_are_refused_at_seal_and_open() {
    let sk = key();
    let long = vec![b'c'; record::MAX_CONTEXT_LEN + 1];
    let err = record::seal(sk.public_key(), &long, b"v").unwrap_err();
    assert_eq!(err, RecordError::ContextTooLong { len: record::MAX_CONTEXT_LEN + 1 });
    let rec = record::seal(sk.public_key(), &long[1..], b"v").unwrap();
    assert_eq!(record::open(&sk, &long, &rec).unwrap_err().code(), "context_too_long");
}
