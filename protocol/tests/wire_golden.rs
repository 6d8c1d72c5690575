//! The wire format, pinned byte for byte: every `Request`, `Response`, `DongleError`,
//! `LockState` and `ItemError` variant has a sample here and the exact bytes it encodes to
//! (postcard: a variant is its index, so an inserted or reordered variant changes bytes and
//! fails this test). The `match`es below name every variant: a new one does not compile
//! until it has a sample and bytes. A change here is a change of `PROTOCOL_VERSION`.
//!
//! To print the table after a deliberate change: `VBZKEY_WIRE_GOLDEN=print cargo test -p
//! vbzkey-protocol --test wire_golden -- --nocapture`.

use vbzkey_protocol::KeyId;
use vbzkey_protocol::record::RecordErrorCode;
use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{
    self, AuditEntry, DongleError, HelloInfo, ItemError, KeyInfo, Limits, LockState, PairingInfo,
    Pin, Plaintext, Request, Response, SealedItem, UnlockSecret,
};
use zeroize::Zeroizing;

fn pin() -> Pin {
    Pin::new(b"123456")
}

fn secret() -> UnlockSecret {
    UnlockSecret(Zeroizing::new([7; 32]))
}

fn share() -> Share {
    Share::checked([1, 2, 3, 4], 2, 3, 1, Zeroizing::new(vec![9, 8])).unwrap()
}

fn item() -> SealedItem {
    SealedItem { record: vec![1, 2, 3], context: b"t/1/c".to_vec() }
}

fn key_info() -> KeyInfo {
    KeyInfo { key_id: KeyId([0xab; 8]), version: 2, public_key: [5; 32], active: true }
}

/// Every request, in wire order: the index in the encoding is the position here.
fn requests() -> Vec<Request> {
    vec![
        Request::Hello,
        Request::Init { pin: Some(pin()), admin_pin: Pin::new(b"admin-123") },
        Request::AdminAuth { admin_pin: Pin::new(b"admin-123"), unlock_secret: Some(secret()) },
        Request::Unlock { pin: pin(), unlock_secret: None },
        Request::Lock,
        Request::PublicKeys,
        Request::UnsealBatch { items: vec![item()] },
        Request::Rewrap { items: vec![item()], new_public_key: [6; 32] },
        Request::AuditTail { max: 300 },
        Request::SetStaffPin { new: Some(pin()) },
        Request::Rotate,
        Request::Retire { key_id: KeyId([0xcd; 8]) },
        Request::FactoryReset,
        Request::Backup { threshold: 2, count: 3 },
        Request::Restore { shares: vec![share()], pin: None, admin_pin: Pin::new(b"admin-123") },
        Request::CloneBegin,
        Request::CloneExport { to: [3; 32] },
        Request::DeviceKey,
        Request::Pair { host_key: [4; 32], label: "till".into(), unlock_secret: secret() },
        Request::Unpair { host_key: [4; 32] },
        Request::Pairings,
        Request::CloneImport { blob: vec![1], pin: Some(pin()), admin_pin: Pin::new(b"admin-123") },
        Request::ChangeAdminPin { new: Pin::new(b"admin-456") },
        Request::EndAdmin,
        Request::AuditRead { from_seq: 70_000, max: 1000 },
    ]
}

/// The variant's index: names every variant, so a new one must be added above.
fn request_index(r: &Request) -> usize {
    match r {
        Request::Hello => 0,
        Request::Init { .. } => 1,
        Request::AdminAuth { .. } => 2,
        Request::Unlock { .. } => 3,
        Request::Lock => 4,
        Request::PublicKeys => 5,
        Request::UnsealBatch { .. } => 6,
        Request::Rewrap { .. } => 7,
        Request::AuditTail { .. } => 8,
        Request::SetStaffPin { .. } => 9,
        Request::Rotate => 10,
        Request::Retire { .. } => 11,
        Request::FactoryReset => 12,
        Request::Backup { .. } => 13,
        Request::Restore { .. } => 14,
        Request::CloneBegin => 15,
        Request::CloneExport { .. } => 16,
        Request::DeviceKey => 17,
        Request::Pair { .. } => 18,
        Request::Unpair { .. } => 19,
        Request::Pairings => 20,
        Request::CloneImport { .. } => 21,
        Request::ChangeAdminPin { .. } => 22,
        Request::EndAdmin => 23,
        Request::AuditRead { .. } => 24,
    }
}

fn errors() -> Vec<DongleError> {
    use DongleError as E;
    vec![
        E::NotInitialised,
        E::AlreadyInitialised,
        E::Locked,
        E::WrongPin { tries_left: 7 },
        E::LockedOut,
        E::BadPin,
        E::RateLimited { retry_after_ms: 1500 },
        E::BadBatchSize,
        E::NotConfirmed,
        E::NoSuchKey,
        E::KeyIsActive,
        E::BadPublicKey,
        E::Storage,
        E::KeyStoreDamaged,
        E::AuditBroken,
        E::Malformed,
        E::UnsupportedVersion,
        E::NotAllowed,
        E::Rng,
        E::BadBackupParameters,
        E::SharesMixed,
        E::TooFewShares { need: 3, got: 2 },
        E::WrongShare,
        E::NoCloneInProgress,
        E::BadCloneBlob,
        E::AdminRequired,
        E::PairingRequired,
        E::NotPaired,
        E::BadPairing,
        E::WrongAdminPin { tries_left: 2 },
        E::AdminLockedOut,
        E::SamePin,
        E::HostNotTrusted,
        E::AuditBeyond { total: 12 },
        E::DeviceSecretMissing,
    ]
}

fn error_index(e: &DongleError) -> usize {
    use DongleError as E;
    match e {
        E::NotInitialised => 0,
        E::AlreadyInitialised => 1,
        E::Locked => 2,
        E::WrongPin { .. } => 3,
        E::LockedOut => 4,
        E::BadPin => 5,
        E::RateLimited { .. } => 6,
        E::BadBatchSize => 7,
        E::NotConfirmed => 8,
        E::NoSuchKey => 9,
        E::KeyIsActive => 10,
        E::BadPublicKey => 11,
        E::Storage => 12,
        E::KeyStoreDamaged => 13,
        E::AuditBroken => 14,
        E::Malformed => 15,
        E::UnsupportedVersion => 16,
        E::NotAllowed => 17,
        E::Rng => 18,
        E::BadBackupParameters => 19,
        E::SharesMixed => 20,
        E::TooFewShares { .. } => 21,
        E::WrongShare => 22,
        E::NoCloneInProgress => 23,
        E::BadCloneBlob => 24,
        E::AdminRequired => 25,
        E::PairingRequired => 26,
        E::NotPaired => 27,
        E::BadPairing => 28,
        E::WrongAdminPin { .. } => 29,
        E::AdminLockedOut => 30,
        E::SamePin => 31,
        E::HostNotTrusted => 32,
        E::AuditBeyond { .. } => 33,
        E::DeviceSecretMissing => 34,
    }
}

fn states() -> Vec<LockState> {
    vec![
        LockState::Uninitialised,
        LockState::Locked,
        LockState::Unlocked,
        LockState::LockedOut,
        LockState::DeviceSecretMissing,
    ]
}

fn state_index(s: &LockState) -> usize {
    match s {
        LockState::Uninitialised => 0,
        LockState::Locked => 1,
        LockState::Unlocked => 2,
        LockState::LockedOut => 3,
        LockState::DeviceSecretMissing => 4,
    }
}

fn hello(state: LockState) -> HelloInfo {
    HelloInfo {
        firmware_version: "0.1.0".into(),
        protocol_version: wire::PROTOCOL_VERSION,
        serial: "ABC".into(),
        state,
        pin_set: true,
        pin_tries_left: 8,
        admin_tries_left: 8,
        keys: vec![key_info()],
        limits: Limits {
            max_frame_payload: 2 << 20,
            max_batch: 256,
            records_per_minute: 600,
            burst: 300,
            max_pin_tries: 8,
            max_admin_tries: 8,
            idle_lock_secs: 900,
            confirm_batch_over: Some(100),
            admin_idle_secs: 300,
            kdf_m_kib: 65536,
            kdf_t: 3,
        },
        audit_intact: true,
        paired_hosts: 1,
        presence_input: true,
        admin_window: false,
        split_custody: true,
    }
}

/// Every response, in wire order (errors and states each in their own table below).
fn responses() -> Vec<Response> {
    vec![
        Response::Hello(hello(LockState::Locked)),
        Response::Ok,
        Response::PublicKeys(vec![key_info()]),
        Response::Unsealed(vec![
            Ok(Plaintext(Zeroizing::new(b"4111".to_vec()))),
            Err(ItemError::NoSuchKey),
            Err(ItemError::Record(RecordErrorCode::Truncated)),
        ]),
        Response::Rewrapped(vec![Ok(vec![1, 2]), Err(ItemError::NoSuchKey)]),
        Response::AuditTail {
            entries: vec![AuditEntry { line: "1 0 5 init - 0 0 usb 00".into() }],
            head: [1; 32],
            total: 1,
        },
        Response::Shares(vec![share()]),
        Response::CloneKey([2; 32]),
        Response::CloneBlob(vec![3, 4]),
        Response::DeviceKey([8; 32]),
        Response::Pairings(vec![PairingInfo {
            host_key: [4; 32],
            label: "till".into(),
            paired_at: 1_700_000_000,
        }]),
        Response::Error(DongleError::Locked),
        Response::PresenceNeeded { timeout_secs: 30 },
        Response::AuditLines {
            prev_head: [0; 32],
            entries: vec![AuditEntry { line: "1 0 5 init - 0 0 usb 00".into() }],
            head: [1; 32],
            total: 1,
        },
    ]
}

fn response_index(r: &Response) -> usize {
    match r {
        Response::Hello(_) => 0,
        Response::Ok => 1,
        Response::PublicKeys(_) => 2,
        Response::Unsealed(_) => 3,
        Response::Rewrapped(_) => 4,
        Response::AuditTail { .. } => 5,
        Response::Shares(_) => 6,
        Response::CloneKey(_) => 7,
        Response::CloneBlob(_) => 8,
        Response::DeviceKey(_) => 9,
        Response::Pairings(_) => 10,
        Response::Error(_) => 11,
        Response::PresenceNeeded { .. } => 12,
        Response::AuditLines { .. } => 13,
    }
}

fn item_error_index(e: &ItemError) -> usize {
    match e {
        ItemError::Record(_) => 0,
        ItemError::NoSuchKey => 1,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// (name, bytes) of every sample: requests, responses, each error, each state.
fn encoded() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, r) in requests().iter().enumerate() {
        assert_eq!(request_index(r), i, "requests() is in wire order");
        out.push((format!("request {i}"), hex(&wire::encode_payload(1, r))));
    }
    for (i, r) in responses().iter().enumerate() {
        assert_eq!(response_index(r), i, "responses() is in wire order");
        out.push((format!("response {i}"), hex(&wire::encode_payload(1, r))));
    }
    for (i, e) in errors().into_iter().enumerate() {
        assert_eq!(error_index(&e), i, "errors() is in wire order");
        out.push((format!("error {i}"), hex(&wire::encode_payload(1, &Response::Error(e)))));
    }
    for (i, s) in states().into_iter().enumerate() {
        assert_eq!(state_index(&s), i, "states() is in wire order");
        let r = Response::Hello(hello(s));
        out.push((format!("state {i}"), hex(&wire::encode_payload(1, &r))));
    }
    for e in [ItemError::Record(RecordErrorCode::Truncated), ItemError::NoSuchKey] {
        let i = item_error_index(&e);
        out.push((format!("item error {i}"), hex(&wire::encode_payload(1, &Err::<(), _>(e)))));
    }
    out
}

/// The pinned bytes (request id 1; generated once, then only ever appended to).
const GOLDEN: &str = include_str!("vectors/wire-v2.txt");

#[test]
fn every_message_encodes_to_its_pinned_bytes_and_decodes_back() {
    let got = encoded();
    if std::env::var("VBZKEY_WIRE_GOLDEN").as_deref() == Ok("print") {
        for (name, bytes) in &got {
            println!("{name}: {bytes}");
        }
    }
    let pinned: Vec<(String, String)> = GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, bytes) = l.split_once(": ").expect("name: hex");
            (name.to_string(), bytes.to_string())
        })
        .collect();
    assert_eq!(got.len(), pinned.len(), "a message was added or removed: print the table");
    for ((name, bytes), (pinned_name, pinned_bytes)) in got.iter().zip(&pinned) {
        assert_eq!(name, pinned_name);
        assert_eq!(bytes, pinned_bytes, "{name} no longer encodes as pinned");
    }
    for (i, r) in requests().iter().enumerate() {
        let bytes = wire::encode_payload(9, r);
        let (id, back) = wire::decode::<Request>(&bytes).unwrap();
        assert_eq!((id, request_index(&back)), (9, i));
    }
    for r in responses() {
        let bytes = wire::encode_payload(9, &r);
        assert_eq!(wire::decode::<Response>(&bytes).unwrap(), (9, r));
    }
}
