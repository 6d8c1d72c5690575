//! The core driven directly: every request and every policy, no I/O, simulated time and
//! simulated restarts (the storage outlives the `Dongle`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::wire::{
    DongleError, LockState, MAX_BATCH, Pin, Request, Response, SealedItem,
};
use vbzkey_protocol::{KeyId, PublicKey, SecretKey};

use super::*;
use crate::keystore::KdfParams;
use crate::storage::{File, MemStorage, Storage, StorageError};

#[derive(Clone, Default)]
struct TestPlatform {
    button: Arc<AtomicBool>,
    led: Arc<AtomicBool>,
}

impl Platform for TestPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }
    fn confirm(&mut self) -> bool {
        self.button.load(Ordering::SeqCst)
    }
    fn show(&mut self, unlocked: bool) {
        self.led.store(unlocked, Ordering::SeqCst);
    }
}

const PIN: &[u8] = b"123456";
const HOST: &str = "test";

fn cfg() -> Config {
    Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() }
}

fn at(ms: u64) -> Now {
    Now { mono_ms: ms, unix_secs: 1_700_000_000 + ms / 1000 }
}

fn binding() -> Binding {
    Binding { serial: "00000000a1b2c3d4".into(), device_secret: None }
}

fn start_with<S: Storage>(
    storage: S,
    cfg: Config,
    platform: TestPlatform,
) -> Dongle<S, TestPlatform> {
    Dongle::start(cfg, storage, platform, binding(), at(0)).unwrap()
}

fn start(storage: MemStorage) -> Dongle<MemStorage, TestPlatform> {
    start_with(storage, cfg(), TestPlatform::default())
}

fn initialised(pin: Option<&[u8]>) -> (Dongle<MemStorage, TestPlatform>, PublicKey) {
    let mut d = start(MemStorage::default());
    let pk = match d.handle(Request::Init { pin: pin.map(Pin::new), admin_pin: None }, at(0), HOST)
    {
        Response::PublicKeys(keys) => PublicKey::from_bytes(keys[0].public_key),
        other => panic!("{other:?}"),
    };
    (d, pk)
}

/// Restart: drop the dongle, keep its storage.
fn restart(d: Dongle<MemStorage, TestPlatform>) -> Dongle<MemStorage, TestPlatform> {
    start(d.into_storage())
}

fn hello(d: &mut Dongle<impl Storage, TestPlatform>, now: Now) -> HelloInfo {
    match d.handle(Request::Hello, now, HOST) {
        Response::Hello(h) => h,
        other => panic!("{other:?}"),
    }
}

fn item(pk: &PublicKey, ctx: &str, value: &str) -> SealedItem {
    SealedItem {
        record: record::seal(pk, ctx.as_bytes(), value.as_bytes()).unwrap(),
        context: ctx.as_bytes().to_vec(),
    }
}

fn unseal(
    d: &mut Dongle<impl Storage, TestPlatform>,
    items: Vec<SealedItem>,
    now: Now,
) -> Result<Vec<Result<String, &'static str>>, DongleError> {
    match d.handle(Request::UnsealBatch { items }, now, HOST) {
        Response::Unsealed(r) => Ok(r
            .into_iter()
            .map(|r| r.map(|p| String::from_utf8(p.0.to_vec()).unwrap()).map_err(|e| e.code()))
            .collect()),
        Response::Error(e) => Err(e),
        other => panic!("{other:?}"),
    }
}

fn err(r: Response) -> DongleError {
    match r {
        Response::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn unlock(d: &mut Dongle<impl Storage, TestPlatform>, pin: &[u8], now: Now) -> Response {
    d.handle(Request::Unlock { pin: Pin::new(pin) }, now, HOST)
}

fn audit_lines(d: &mut Dongle<impl Storage, TestPlatform>) -> Vec<String> {
    match d.handle(Request::AuditTail { max: 1000 }, at(0), HOST) {
        Response::AuditTail { entries, .. } => entries.into_iter().map(|e| e.line).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn init_generates_a_key_once_and_hello_reports_it() {
    let mut d = start(MemStorage::default());
    assert_eq!(hello(&mut d, at(0)).state, LockState::Uninitialised);
    assert_eq!(err(d.handle(Request::PublicKeys, at(0), HOST)), DongleError::NotInitialised);
    assert_eq!(
        err(d.handle(Request::Init { pin: Some(Pin::new(b"12")), admin_pin: None }, at(0), HOST)),
        DongleError::BadPin
    );
    let (mut d, pk) = initialised(Some(PIN));
    let h = hello(&mut d, at(1));
    assert_eq!(h.serial, "00000000a1b2c3d4");
    assert!(h.pin_set && h.audit_intact);
    assert_eq!(h.pin_tries_left, 8);
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].key_id, pk.key_id());
    assert_eq!(
        err(d.handle(Request::Init { pin: None, admin_pin: None }, at(2), HOST)),
        DongleError::AlreadyInitialised
    );
    // Public keys are readable while locked, after a restart.
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).state, LockState::Locked);
    assert!(
        matches!(d.handle(Request::PublicKeys, at(0), HOST), Response::PublicKeys(k) if k[0].key_id == pk.key_id())
    );
}

#[test]
fn pin_is_required_before_any_unseal_and_batches_answer_per_item() {
    let (d, pk) = initialised(Some(PIN));
    let mut d = restart(d);
    let batch = || vec![item(&pk, "cust_cards/1/card_number", "4111111111111111")];
    assert_eq!(unseal(&mut d, batch(), at(1)), Err(DongleError::Locked));
    assert_eq!(unlock(&mut d, PIN, at(2)), Response::Ok);
    assert!(d.platform.led.load(Ordering::SeqCst), "the LED shows unlocked");
    let other = SecretKey::derive(b"a key this dongle does not hold.");
    let mut wrong_ctx = item(&pk, "cust_cards/1/card_number", "4111111111111111");
    wrong_ctx.context = b"cust_cards/2/card_number".to_vec();
    let items = vec![
        item(&pk, "cust_cards/1/card_number", "4111111111111111"),
        wrong_ctx,
        item(other.public_key(), "c", "v"),
        SealedItem { record: b"garbage".to_vec(), context: vec![] },
        item(&pk, "cust_phones/1/phone", "+14155550100"),
    ];
    let out = unseal(&mut d, items, at(3)).unwrap();
    assert_eq!(
        out,
        vec![
            Ok("4111111111111111".into()),
            Err("tag_mismatch"),
            Err("no_such_key"),
            Err("bad_magic"),
            Ok("+14155550100".into())
        ]
    );
    assert!(
        audit_lines(&mut d).last().unwrap().contains(&format!(" unseal {} 2 3 test ", pk.key_id()))
    );
    assert_eq!(d.handle(Request::Lock, at(4), HOST), Response::Ok);
    assert_eq!(unseal(&mut d, batch(), at(5)), Err(DongleError::Locked));
    assert!(!d.platform.led.load(Ordering::SeqCst));
}

#[test]
fn wrong_pin_counter_survives_restart_and_locks_out() {
    let (d, pk) = initialised(Some(PIN));
    let mut d = restart(d);
    for left in (1..8u8).rev() {
        assert_eq!(
            err(unlock(&mut d, b"000000", at(1))),
            DongleError::WrongPin { tries_left: left }
        );
        // A restart (power cut) after each wrong try gives nothing back.
        d = restart(d);
        assert_eq!(hello(&mut d, at(0)).pin_tries_left, left);
    }
    assert_eq!(err(unlock(&mut d, b"000000", at(1))), DongleError::LockedOut);
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).state, LockState::LockedOut);
    // Even the right PIN no longer works; nothing can be unsealed.
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::LockedOut);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(2)), Err(DongleError::LockedOut));
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" locked-out ")));
    // A factory reset is the way out (restore from a backup afterwards).
    assert_eq!(d.handle(Request::FactoryReset, at(3), HOST), Response::Ok);
    assert_eq!(hello(&mut d, at(4)).state, LockState::Uninitialised);
}

#[test]
fn a_right_pin_resets_the_counter() {
    let (mut d, _) = initialised(Some(PIN));
    d.handle(Request::Lock, at(0), HOST);
    err(unlock(&mut d, b"999999", at(1)));
    err(unlock(&mut d, b"999999", at(1)));
    assert_eq!(hello(&mut d, at(1)).pin_tries_left, 6);
    assert_eq!(unlock(&mut d, PIN, at(2)), Response::Ok);
    assert_eq!(hello(&mut d, at(3)).pin_tries_left, 8);
}

/// Storage whose counter writes fail: proves the counter is written before the PIN is
/// compared (otherwise a right PIN would unlock while the try went uncounted).
struct CounterWriteFails(MemStorage);

impl Storage for CounterWriteFails {
    fn load(&self, f: File) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.load(f)
    }
    fn store(&mut self, f: File, data: &[u8]) -> Result<(), StorageError> {
        if f == File::PinCounter {
            return Err(StorageError::new("write", f, std::io::Error::other("injected failure")));
        }
        self.0.store(f, data)
    }
    fn append(&mut self, f: File, data: &[u8]) -> Result<(), StorageError> {
        self.0.append(f, data)
    }
    fn truncate(&mut self, f: File, len: u64) -> Result<(), StorageError> {
        self.0.truncate(f, len)
    }
    fn remove(&mut self, f: File) -> Result<(), StorageError> {
        self.0.remove(f)
    }
}

#[test]
fn counter_is_written_before_the_pin_is_compared() {
    let (d, _) = initialised(Some(PIN));
    let storage = CounterWriteFails(d.into_storage());
    let mut d = start_with(storage, cfg(), TestPlatform::default());
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::Storage);
    assert_eq!(hello(&mut d, at(2)).state, LockState::Locked);
}

#[test]
fn idle_lock_forgets_the_keys() {
    let (mut d, pk) = initialised(Some(PIN));
    let idle = cfg().idle_lock_ms;
    assert!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1000)).is_ok());
    // Activity keeps it open...
    assert!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1000 + idle - 1)).is_ok());
    // ...silence does not, whether a request or the transport's tick comes first.
    d.tick(at(1000 + 2 * idle));
    assert_eq!(hello(&mut d, at(1000 + 2 * idle)).state, LockState::Locked);
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" idle-lock ")));
    unlock(&mut d, PIN, at(5 * idle));
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(7 * idle)), Err(DongleError::Locked));
}

#[test]
fn rate_limit_bounds_records_per_minute() {
    let (mut d, pk) = initialised(Some(PIN));
    let cfg = cfg();
    let batch = |n: usize| (0..n).map(|i| item(&pk, &format!("t/{i}/f"), "v")).collect::<Vec<_>>();
    assert!(unseal(&mut d, batch(MAX_BATCH), at(0)).is_ok());
    let left = cfg.burst as usize - MAX_BATCH;
    assert!(unseal(&mut d, batch(left), at(0)).is_ok());
    match unseal(&mut d, batch(10), at(0)) {
        Err(DongleError::RateLimited { retry_after_ms }) => assert_eq!(retry_after_ms, 1000),
        other => panic!("{other:?}"),
    }
    // 600 per minute: 10 records are back after one second.
    assert!(unseal(&mut d, batch(10), at(1000)).is_ok());
    assert_eq!(unseal(&mut d, vec![], at(1000)), Err(DongleError::BadBatchSize));
    assert_eq!(unseal(&mut d, batch(MAX_BATCH + 1), at(1000)), Err(DongleError::BadBatchSize));
}

#[test]
fn large_batches_need_the_button() {
    let (d, pk) = initialised(None);
    let platform = TestPlatform::default();
    let config = Config { confirm_batch_over: Some(5), ..cfg() };
    let mut d = start_with(d.into_storage(), config, platform.clone());
    let batch = |n: usize| (0..n).map(|_| item(&pk, "c", "v")).collect::<Vec<_>>();
    assert!(unseal(&mut d, batch(5), at(1)).is_ok(), "small batches need no press");
    assert_eq!(unseal(&mut d, batch(6), at(2)), Err(DongleError::NotConfirmed));
    platform.button.store(true, Ordering::SeqCst);
    assert!(unseal(&mut d, batch(6), at(3)).is_ok());
}

#[test]
fn a_dongle_without_pin_serves_after_restart_without_unlock() {
    let (d, pk) = initialised(None);
    let mut d = restart(d);
    let h = hello(&mut d, at(0));
    assert!(!h.pin_set);
    assert_eq!(h.state, LockState::Unlocked);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1)).unwrap(), vec![Ok("v".into())]);
}

fn rotate(d: &mut Dongle<MemStorage, TestPlatform>, now: Now) -> PublicKey {
    match d.handle(Request::Rotate, now, HOST) {
        Response::PublicKeys(keys) => {
            PublicKey::from_bytes(keys.iter().find(|k| k.active).unwrap().public_key)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotate_rewrap_retire() {
    let (mut d, old) = initialised(Some(PIN));
    let items: Vec<SealedItem> = (0..5)
        .map(|i| {
            item(&old, &format!("cust_cards/{i}/card_number"), &format!("41111111111111{i:02}"))
        })
        .collect();
    let new = rotate(&mut d, at(1));
    assert_ne!(new.key_id(), old.key_id());
    let h = hello(&mut d, at(2));
    assert_eq!(h.keys.len(), 2);
    assert!(h.keys.iter().any(|k| k.active && k.version == 2));

    // Re-wrap to a foreign key is refused: it would be exfiltration past the rate limit.
    let foreign = SecretKey::derive(b"an attacker's key, not the dongle");
    let refused = d.handle(
        Request::Rewrap { items: items.clone(), new_public_key: *foreign.public_key().as_bytes() },
        at(3),
        HOST,
    );
    assert_eq!(err(refused), DongleError::NotAllowed);

    let out = match d.handle(
        Request::Rewrap { items: items.clone(), new_public_key: *new.as_bytes() },
        at(4),
        HOST,
    ) {
        Response::Rewrapped(r) => r,
        other => panic!("{other:?}"),
    };
    let rewrapped: Vec<SealedItem> = out
        .into_iter()
        .zip(&items)
        .map(|(r, i)| SealedItem { record: r.unwrap(), context: i.context.clone() })
        .collect();
    for (r, i) in rewrapped.iter().zip(&items) {
        assert_eq!(Record::parse(&r.record).unwrap().key_id(), new.key_id());
        assert_ne!(r.record, i.record);
    }
    // Retiring the active key is refused; retiring the old one works...
    assert_eq!(
        err(d.handle(Request::Retire { key_id: new.key_id() }, at(5), HOST)),
        DongleError::KeyIsActive
    );
    assert_eq!(
        err(d.handle(Request::Retire { key_id: KeyId([0; 8]) }, at(5), HOST)),
        DongleError::NoSuchKey
    );
    assert_eq!(d.handle(Request::Retire { key_id: old.key_id() }, at(6), HOST), Response::Ok);
    // ...after which the re-wrapped records open, across a restart, and the old ones do not.
    let mut d = restart(d);
    unlock(&mut d, PIN, at(7));
    let got = unseal(&mut d, rewrapped, at(8)).unwrap();
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, r)| r.as_deref() == Ok(format!("41111111111111{i:02}").as_str()))
    );
    assert!(unseal(&mut d, items, at(9)).unwrap().iter().all(|r| *r == Err("no_such_key")));
}

#[test]
fn change_pin_needs_the_old_pin_and_counts_wrong_ones() {
    let (mut d, pk) = initialised(Some(PIN));
    let change = |old: &[u8], new: Option<&[u8]>| Request::ChangePin {
        old: Some(Pin::new(old)),
        new: new.map(Pin::new),
    };
    assert_eq!(
        err(d.handle(change(b"000000", Some(b"2468")), at(1), HOST)),
        DongleError::WrongPin { tries_left: 7 }
    );
    assert_eq!(d.handle(change(PIN, Some(b"2468")), at(2), HOST), Response::Ok);
    let mut d = restart(d);
    assert_eq!(err(unlock(&mut d, PIN, at(3))), DongleError::WrongPin { tries_left: 7 });
    assert_eq!(unlock(&mut d, b"2468", at(4)), Response::Ok);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(5)).unwrap(), vec![Ok("v".into())]);
    // Removing the PIN makes it a no-PIN dongle.
    assert_eq!(d.handle(change(b"2468", None), at(6), HOST), Response::Ok);
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).state, LockState::Unlocked);
}

#[test]
fn factory_reset_is_refused_while_locked_with_a_pin() {
    let (d, _) = initialised(Some(PIN));
    let mut d = restart(d);
    assert_eq!(err(d.handle(Request::FactoryReset, at(1), HOST)), DongleError::NotAllowed);
    unlock(&mut d, PIN, at(2));
    assert_eq!(d.handle(Request::FactoryReset, at(3), HOST), Response::Ok);
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).state, LockState::Uninitialised);
    // The audit log survives the reset.
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" factory-reset ")));
}

#[test]
fn a_damaged_key_store_is_reported_and_never_replaced() {
    let (d, _) = initialised(Some(PIN));
    let mut storage = d.into_storage();
    let ks = storage.files.get_mut(&File::KeyStore).unwrap();
    ks[60] ^= 0xff;
    let damaged = ks.clone();
    let mut d = start(storage);
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::KeyStoreDamaged);
    assert_eq!(hello(&mut d, at(1)).pin_tries_left, 8, "damage does not burn PIN tries");
    assert_eq!(
        err(d.handle(Request::Init { pin: None, admin_pin: None }, at(2), HOST)),
        DongleError::AlreadyInitialised
    );
    assert_eq!(d.into_storage().files[&File::KeyStore], damaged);
}

#[test]
fn a_store_from_another_board_does_not_open() {
    let (d, _) = initialised(Some(PIN));
    let other_board = Binding { serial: "00000000ffffffff".into(), device_secret: None };
    let mut d = Dongle::start(cfg(), d.into_storage(), TestPlatform::default(), other_board, at(0))
        .unwrap();
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::WrongPin { tries_left: 7 });
}

#[test]
fn a_deleted_pin_counter_is_treated_as_lock_out() {
    let (d, _) = initialised(Some(PIN));
    let mut storage = d.into_storage();
    storage.files.remove(&File::PinCounter);
    let mut d = start(storage);
    assert_eq!(hello(&mut d, at(0)).state, LockState::LockedOut);
}

#[test]
fn a_broken_audit_log_stops_unsealing() {
    let (d, pk) = initialised(None);
    let mut storage = d.into_storage();
    let log = storage.files.get_mut(&File::AuditLog).unwrap();
    log[10] ^= 1;
    let mut d = start(storage);
    assert!(!hello(&mut d, at(0)).audit_intact);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1)), Err(DongleError::AuditBroken));
}

#[test]
fn audit_tail_returns_the_chain_head() {
    let (mut d, pk) = initialised(Some(PIN));
    unseal(&mut d, vec![item(&pk, "c", "v")], at(1)).unwrap();
    match d.handle(Request::AuditTail { max: 1 }, at(2), HOST) {
        Response::AuditTail { entries, head, total } => {
            assert_eq!(total, 2);
            assert_eq!(entries.len(), 1);
            assert!(entries[0].line.ends_with(&head));
            assert!(audit::verify(&audit_lines(&mut d).join("\n")).is_ok());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_frames_get_an_error_answer() {
    let (mut d, _) = initialised(None);
    for payload in [&b""[..], b"\x01", b"\x01\x05\xff\xff", &[0xffu8; 64]] {
        let frame = d.handle_frame(payload, at(1), HOST);
        let (_, resp): (u32, Response) = wire::decode(&frame[8..]).unwrap();
        assert!(
            matches!(
                resp,
                Response::Error(DongleError::Malformed | DongleError::UnsupportedVersion)
            ),
            "{resp:?}"
        );
    }
    let frame = wire::encode(42, &Request::Hello);
    let answer = d.handle_frame(&frame[8..], at(1), HOST);
    let (id, resp): (u32, Response) = wire::decode(&answer[8..]).unwrap();
    assert_eq!(id, 42);
    assert!(matches!(resp, Response::Hello(_)));
}

fn shares(d: &mut Dongle<MemStorage, TestPlatform>, m: u8, n: u8) -> Vec<String> {
    match d.handle(Request::Backup { threshold: m, count: n }, at(1), HOST) {
        Response::Shares(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn backup_three_of_five_restores_into_a_fresh_dongle() {
    let (mut d, pk) = initialised(Some(PIN));
    let new = rotate(&mut d, at(1));
    let items = vec![
        item(&pk, "cust_cards/1/card_number", "old key"),
        item(&new, "cust_cards/2/card_number", "new key"),
    ];
    let s = shares(&mut d, 3, 5);
    assert_eq!(s.len(), 5);
    assert!(s.iter().all(|l| l.starts_with("vkshare1.")));
    assert!(audit_lines(&mut d).last().unwrap().contains(" backup - 5 3 "));

    let mut fresh = start(MemStorage::default());
    let restore = |shares: Vec<String>| Request::Restore { shares, pin: Some(Pin::new(b"8642")) };
    assert_eq!(
        err(fresh.handle(restore(s[..2].to_vec()), at(2), HOST)),
        DongleError::TooFewShares { need: 3, got: 2 }
    );
    assert_eq!(
        err(fresh.handle(restore(vec![s[0].clone(), s[0].clone(), s[1].clone()]), at(2), HOST)),
        DongleError::TooFewShares { need: 3, got: 2 }
    );
    let mut typo = s[1].clone();
    typo.replace_range(20..21, if &typo[20..21] == "A" { "B" } else { "A" });
    assert_eq!(
        err(fresh.handle(restore(vec![s[0].clone(), typo, s[2].clone()]), at(2), HOST)),
        DongleError::BadShareText
    );
    let (mut other, _) = initialised(None);
    let foreign = shares(&mut other, 3, 5);
    assert_eq!(
        err(fresh.handle(
            restore(vec![s[0].clone(), s[1].clone(), foreign[2].clone()]),
            at(2),
            HOST
        )),
        DongleError::SharesMixed
    );
    match fresh.handle(restore(vec![s[4].clone(), s[1].clone(), s[3].clone()]), at(3), HOST) {
        Response::PublicKeys(k) => {
            assert_eq!(k.len(), 2);
            assert!(k.iter().any(|k| k.active && k.key_id == new.key_id()));
        }
        other => panic!("{other:?}"),
    }
    let mut fresh = restart(fresh);
    assert_eq!(unlock(&mut fresh, b"8642", at(4)), Response::Ok);
    assert_eq!(
        unseal(&mut fresh, items, at(5)).unwrap(),
        vec![Ok("old key".into()), Ok("new key".into())]
    );
    // An initialised dongle refuses a restore; a locked one refuses a backup.
    assert_eq!(
        err(fresh.handle(restore(s[..3].to_vec()), at(6), HOST)),
        DongleError::AlreadyInitialised
    );
    fresh.handle(Request::Lock, at(7), HOST);
    assert_eq!(
        err(fresh.handle(Request::Backup { threshold: 2, count: 3 }, at(8), HOST)),
        DongleError::Locked
    );
}

#[test]
fn backup_parameters_are_checked() {
    let (mut d, _) = initialised(None);
    for (m, n) in [(1, 3), (4, 3), (2, 17), (0, 0)] {
        assert_eq!(
            err(d.handle(Request::Backup { threshold: m, count: n }, at(1), HOST)),
            DongleError::BadBackupParameters,
            "{m} of {n}"
        );
    }
}

#[test]
fn clone_moves_the_keys_wrapped_to_the_target() {
    let (mut a, pk) = initialised(Some(PIN));
    let mut b = start(MemStorage::default());
    let blob_for = |a: &mut Dongle<MemStorage, TestPlatform>, to: [u8; 32]| match a.handle(
        Request::CloneExport { to },
        at(2),
        HOST,
    ) {
        Response::CloneBlob(blob) => blob,
        other => panic!("{other:?}"),
    };
    let import = |blob: Vec<u8>| Request::CloneImport { blob, pin: Some(Pin::new(b"1357")) };
    assert_eq!(err(b.handle(import(vec![1, 2, 3]), at(1), HOST)), DongleError::NoCloneInProgress);
    let to = match b.handle(Request::CloneBegin, at(1), HOST) {
        Response::CloneKey(k) => k,
        other => panic!("{other:?}"),
    };
    let blob = blob_for(&mut a, to);
    // The blob is sealed: the key bytes are not in it in clear, and an altered blob fails.
    let key_bytes = a.unlocked.as_ref().unwrap().keys.keys[0].1.to_bytes();
    assert!(!blob.windows(32).any(|w| w == &key_bytes[..]));
    let mut altered = blob.clone();
    altered[50] ^= 1;
    assert_eq!(err(b.handle(import(altered), at(3), HOST)), DongleError::BadCloneBlob);
    // A blob for another target does not open here.
    let stranger = SecretKey::derive(b"some other dongle's transfer key");
    let wrong = blob_for(&mut a, *stranger.public_key().as_bytes());
    assert_eq!(err(b.handle(import(wrong), at(3), HOST)), DongleError::BadCloneBlob);
    assert!(
        matches!(b.handle(import(blob), at(4), HOST), Response::PublicKeys(k) if k[0].key_id == pk.key_id())
    );
    let mut b = restart(b);
    unlock(&mut b, b"1357", at(5));
    let items = vec![item(&pk, "cust_cards/9/card_number", "4111111111111111")];
    assert_eq!(unseal(&mut b, items.clone(), at(6)).unwrap(), vec![Ok("4111111111111111".into())]);
    assert_eq!(unseal(&mut a, items, at(7)).unwrap(), vec![Ok("4111111111111111".into())]);
    assert!(audit_lines(&mut a).iter().any(|l| l.contains(" clone-export ")));
    assert!(audit_lines(&mut b).iter().any(|l| l.contains(" clone-import ")));
}

#[test]
fn an_admin_pin_gates_admin_requests() {
    let mut d = start(MemStorage::default());
    let init = Request::Init { pin: Some(Pin::new(PIN)), admin_pin: Some(Pin::new(b"admin-9753")) };
    assert!(matches!(d.handle(init, at(0), HOST), Response::PublicKeys(_)));
    assert!(hello(&mut d, at(1)).admin_pin_set);
    // Unlocked with the staff PIN: records open, admin requests do not.
    let pk = match d.handle(Request::PublicKeys, at(1), HOST) {
        Response::PublicKeys(k) => PublicKey::from_bytes(k[0].public_key),
        other => panic!("{other:?}"),
    };
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1)).unwrap(), vec![Ok("v".into())]);
    for req in [Request::Rotate, Request::Backup { threshold: 2, count: 3 }, Request::FactoryReset]
    {
        assert_eq!(err(d.handle(req, at(2), HOST)), DongleError::AdminRequired);
    }
    // A wrong admin PIN counts toward the lock-out, like a staff PIN.
    let auth = |p: &[u8]| Request::AdminAuth { admin_pin: Pin::new(p) };
    assert_eq!(
        err(d.handle(auth(b"admin-0000"), at(3), HOST)),
        DongleError::WrongPin { tries_left: 7 }
    );
    assert_eq!(d.handle(auth(b"admin-9753"), at(4), HOST), Response::Ok);
    assert_eq!(hello(&mut d, at(5)).pin_tries_left, 8);
    assert!(matches!(d.handle(Request::Rotate, at(5), HOST), Response::PublicKeys(_)));
    // The admin window closes by itself, and on Lock.
    let late = at(5 + wire::ADMIN_WINDOW_SECS * 1000);
    d.handle(Request::Hello, late, HOST);
    assert_eq!(
        err(d.handle(Request::Backup { threshold: 2, count: 3 }, late, HOST)),
        DongleError::AdminRequired
    );
    assert_eq!(d.handle(auth(b"admin-9753"), late, HOST), Response::Ok);
    d.handle(Request::Lock, late, HOST);
    unlock(&mut d, PIN, late);
    assert_eq!(
        err(d.handle(Request::Backup { threshold: 2, count: 3 }, late, HOST)),
        DongleError::AdminRequired
    );
    // The admin PIN survives a restart; a reset removes it.
    let mut d = restart(d);
    assert!(hello(&mut d, at(0)).admin_pin_set);
    unlock(&mut d, PIN, at(1));
    d.handle(auth(b"admin-9753"), at(1), HOST);
    assert_eq!(d.handle(Request::FactoryReset, at(2), HOST), Response::Ok);
    assert!(!hello(&mut d, at(3)).admin_pin_set);
}

#[test]
fn a_damaged_pairings_file_serves_no_host_until_hosts_are_paired_again() {
    let (mut d, _) = initialised(None);
    assert!(!d.pairing_required(), "no pairing yet: local hosts are served");
    let host = [7u8; 32];
    assert_eq!(
        d.handle(Request::Pair { host_key: host, label: "till".into() }, at(1), HOST),
        Response::Ok
    );
    assert!(d.pairing_required() && d.is_paired(&host));
    let d = restart(d);
    assert!(d.is_paired(&host), "pairings survive a restart");
    let mut storage = d.into_storage();
    let f = storage.files.get_mut(&File::Pairings).unwrap();
    let last = f.len() - 1;
    f[last] ^= 1;
    let mut d = start(storage);
    assert!(d.pairing_required(), "fail closed: not back to serving everyone");
    assert!(!d.is_paired(&host));
    // Pairing again (from a local link, unlocked) repairs it.
    assert_eq!(
        d.handle(Request::Pair { host_key: host, label: "till".into() }, at(2), HOST),
        Response::Ok
    );
    assert!(d.is_paired(&host));
    assert_eq!(
        err(d.handle(Request::Pair { host_key: host, label: "x".repeat(65) }, at(3), HOST)),
        DongleError::BadPairing
    );
    assert_eq!(
        err(d.handle(Request::Unpair { host_key: [8; 32] }, at(3), HOST)),
        DongleError::BadPairing
    );
}
