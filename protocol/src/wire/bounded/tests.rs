use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::super::*;
use super::seq;
use crate::record::{MAX_CONTEXT_LEN, MAX_PLAINTEXT_LEN, MAX_RECORD_LEN};
use crate::share::MAX_SHARE_DATA;

/// An element that counts how many times one was decoded.
struct Probe;

static PROBES_DECODED: AtomicUsize = AtomicUsize::new(0);

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u8::deserialize(d)?;
        PROBES_DECODED.fetch_add(1, Ordering::SeqCst);
        Ok(Probe)
    }
}

#[derive(Deserialize)]
struct AtMostFour(#[serde(deserialize_with = "seq::<4, _, _>")] Vec<Probe>);

#[test]
fn an_over_long_sequence_is_refused_from_its_count_before_any_element_is_decoded() {
    let over = [5u8, 0, 0, 0, 0, 0];
    assert!(postcard::from_bytes::<AtMostFour>(&over).is_err());
    assert_eq!(PROBES_DECODED.load(Ordering::SeqCst), 0, "no element was decoded");
    let at = [4u8, 0, 0, 0, 0];
    assert_eq!(postcard::from_bytes::<AtMostFour>(&at).unwrap().0.len(), 4);
    assert_eq!(PROBES_DECODED.load(Ordering::SeqCst), 4);
}

/// The envelope and variant of an empty batch with its count replaced by `count` (a varint),
/// followed by `items` empty items (an empty record and context: two zero bytes each).
fn batch_payload(count: usize, items: usize) -> Vec<u8> {
    let mut p = encode_payload(7, &Request::UnsealBatch { items: vec![] });
    assert_eq!(p.pop(), Some(0));
    let mut n = count;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            p.push(byte);
            break;
        }
        p.push(byte | 0x80);
    }
    p.resize(p.len() + 2 * items, 0);
    p
}

#[test]
fn a_frame_of_a_million_empty_items_is_malformed_and_a_full_batch_decodes() {
    // What a 2 MiB frame holds: about a million 2-byte items (once 50 MB of `SealedItem`s).
    let items = (MAX_FRAME_PAYLOAD - 8) / 2;
    let flood = batch_payload(items, items);
    assert!(flood.len() <= MAX_FRAME_PAYLOAD);
    assert_eq!(decode::<Request>(&flood).unwrap_err(), (Some(7), WireError::Malformed));
    // A count that promises more than the bytes hold is refused the same way.
    assert_eq!(
        decode::<Request>(&batch_payload(u32::MAX as usize, 0)).unwrap_err(),
        (Some(7), WireError::Malformed)
    );
    let full = decode::<Request>(&batch_payload(MAX_BATCH, MAX_BATCH)).unwrap();
    assert!(matches!(full, (7, Request::UnsealBatch { items }) if items.len() == MAX_BATCH));
    assert!(decode::<Request>(&batch_payload(MAX_BATCH + 1, MAX_BATCH + 1)).is_err());
}

/// `make(limit)` decodes to itself; `make(limit + 1)` is `Malformed`.
fn bounded_at<T>(what: &str, limit: usize, make: impl Fn(usize) -> T)
where
    T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug,
{
    let at = make(limit);
    let back = decode::<T>(&encode_payload(1, &at));
    assert!(back.as_ref().is_ok_and(|(_, b)| b == &at), "{what} at its limit {limit}: {back:?}");
    let over = decode::<T>(&encode_payload(1, &make(limit + 1)));
    assert_eq!(over.err(), Some((Some(1), WireError::Malformed)), "{what} over its limit");
}

fn item(record: usize, context: usize) -> SealedItem {
    SealedItem { record: vec![1; record], context: vec![b'c'; context] }
}

/// A share (built field by field: its data may be longer than a valid share's).
fn share(index: usize, data: usize) -> Share {
    let index = u8::try_from(index % 255 + 1).unwrap();
    Share { set: [1; 4], threshold: 2, count: 255, index, data: Zeroizing::new(vec![9; data]) }
}

fn key(n: usize) -> KeyInfo {
    KeyInfo { key_id: KeyId([n as u8; 8]), version: n as u32, public_key: [2; 32], active: false }
}

#[test]
fn every_request_field_of_variable_length_is_bounded() {
    let pin = |n| Pin(Zeroizing::new(vec![b'7'; n]));
    bounded_at("a PIN", MAX_PIN_LEN, |n| Request::Unlock { pin: pin(n), unlock_secret: None });
    bounded_at("an admin PIN", MAX_PIN_LEN, |n| Request::AdminAuth {
        admin_pin: pin(n),
        unlock_secret: None,
    });
    bounded_at("a new staff PIN", MAX_PIN_LEN, |n| Request::SetStaffPin { new: Some(pin(n)) });
    bounded_at("an init PIN", MAX_PIN_LEN, |n| Request::Init { pin: None, admin_pin: pin(n) });
    bounded_at("a batch", MAX_BATCH, |n| Request::UnsealBatch { items: vec![item(1, 1); n] });
    bounded_at("a re-wrap batch", MAX_BATCH, |n| Request::Rewrap {
        items: vec![item(1, 1); n],
        new_public_key: [3; 32],
    });
    bounded_at("a record", MAX_RECORD_LEN, |n| Request::UnsealBatch { items: vec![item(n, 1)] });
    bounded_at("a context", MAX_CONTEXT_LEN, |n| Request::UnsealBatch { items: vec![item(1, n)] });
    bounded_at("a label", MAX_LABEL_LEN, |n| Request::Pair {
        host_key: [4; 32],
        label: "x".repeat(n),
        unlock_secret: UnlockSecret(Zeroizing::new([5; 32])),
    });
    bounded_at("a clone blob", MAX_CLONE_BLOB, |n| Request::CloneImport {
        blob: vec![6; n],
        pin: None,
        admin_pin: pin(8),
    });
    bounded_at("the shares of a restore", MAX_SHARES, |n| Request::Restore {
        shares: (0..n).map(|i| share(i, 1)).collect(),
        pin: None,
        admin_pin: pin(8),
    });
    bounded_at("a share's data", MAX_SHARE_DATA, |n| Request::Restore {
        shares: vec![share(0, n)],
        pin: None,
        admin_pin: pin(8),
    });
}

fn hello(serial: usize, version: usize, keys: usize) -> Response {
    Response::Hello(HelloInfo {
        firmware_version: "v".repeat(version),
        protocol_version: PROTOCOL_VERSION,
        serial: "s".repeat(serial),
        state: LockState::Locked,
        pin_set: true,
        pin_tries_left: 8,
        admin_tries_left: 8,
        keys: (0..keys).map(key).collect(),
        limits: Limits {
            max_frame_payload: 0,
            max_batch: 0,
            records_per_minute: 0,
            burst: 0,
            max_pin_tries: 0,
            max_admin_tries: 0,
            idle_lock_secs: 0,
            confirm_batch_over: None,
            admin_idle_secs: 0,
            kdf_m_kib: 0,
            kdf_t: 0,
        },
        audit_intact: true,
        paired_hosts: 0,
        presence_input: false,
        admin_window: false,
        split_custody: false,
    })
}

#[test]
fn every_answer_field_of_variable_length_is_bounded() {
    // A host reads these from the dongle: a dongle (or whatever answers in its place) cannot
    // make a host allocate beyond them either.
    bounded_at("a serial", MAX_DEVICE_TEXT, |n| hello(n, 1, 1));
    bounded_at("a firmware version", MAX_DEVICE_TEXT, |n| hello(1, n, 1));
    bounded_at("Hello's keys", MAX_KEY_VERSIONS, |n| hello(1, 1, n));
    bounded_at("the public keys", MAX_KEY_VERSIONS, |n| {
        Response::PublicKeys((0..n).map(key).collect())
    });
    let plain = |n| Ok(Plaintext(Zeroizing::new(vec![b'p'; n])));
    bounded_at("the unsealed items", MAX_BATCH, |n| Response::Unsealed(vec![plain(1); n]));
    bounded_at("a plaintext", MAX_PLAINTEXT_LEN, |n| Response::Unsealed(vec![plain(n)]));
    bounded_at("the re-wrapped items", MAX_BATCH, |n| Response::Rewrapped(vec![Ok(vec![1]); n]));
    bounded_at("a re-wrapped record", MAX_RECORD_LEN, |n| {
        Response::Rewrapped(vec![Err(ItemError::NoSuchKey), Ok(vec![1; n])])
    });
    let line = |n| AuditEntry { line: "l".repeat(n) };
    bounded_at("the audit lines", MAX_AUDIT_ENTRIES, |n| Response::AuditTail {
        entries: vec![line(0); n],
        head: [0; 32],
        total: 0,
    });
    bounded_at("an audit line", MAX_AUDIT_LINE, |n| Response::AuditTail {
        entries: vec![line(n)],
        head: [0; 32],
        total: 1,
    });
    bounded_at("the shares", MAX_SHARES, |n| {
        Response::Shares((0..n).map(|i| share(i, 1)).collect())
    });
    bounded_at("a clone blob", MAX_CLONE_BLOB, |n| Response::CloneBlob(vec![1; n]));
    let pairing = |n| PairingInfo { host_key: [1; 32], label: "h".repeat(n), paired_at: 0 };
    bounded_at("the pairings", MAX_PAIRINGS, |n| Response::Pairings(vec![pairing(1); n]));
    bounded_at("a pairing's label", MAX_LABEL_LEN, |n| Response::Pairings(vec![pairing(n)]));
}

#[test]
fn the_encoding_is_what_the_derived_decoders_read() {
    // The bounded decoders read the derived encoding: a message of every bounded kind comes
    // back byte for byte (the golden test pins the bytes themselves).
    let req = Request::Restore {
        shares: vec![share(0, 3)],
        pin: Some(Pin::new(b"123456")),
        admin_pin: Pin::new(b"admin-123"),
    };
    let bytes = encode_payload(9, &req);
    let (_, back): (u32, Request) = decode(&bytes).unwrap();
    assert_eq!(encode_payload(9, &back), bytes);
    let label: String = "till".into();
    let pairing = Response::Pairings(vec![PairingInfo { host_key: [1; 32], label, paired_at: 5 }]);
    let bytes = encode_payload(3, &pairing);
    assert_eq!(decode::<Response>(&bytes).unwrap(), (3, pairing));
}
