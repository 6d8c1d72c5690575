//! The core driven directly: every request and every policy, no I/O, simulated time and
//! simulated restarts (the storage outlives the `Dongle`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::{
    DongleError, LockState, MAX_BATCH, Pin, Request, Response, SealedItem, UnlockSecret,
};
use vbzkey_protocol::{KeyId, PublicKey, SecretKey};

use super::*;
use crate::keystore::{Credential, KdfParams, KeyStore};
use crate::storage::faults::{Fault, FaultyStorage};
use crate::storage::{File, MemStorage, Storage};

#[derive(Clone, Default)]
struct TestPlatform {
    led: Arc<AtomicBool>,
}

impl Platform for TestPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }
    fn show(&mut self, unlocked: bool) {
        self.led.store(unlocked, Ordering::SeqCst);
    }
}

const PIN: &[u8] = b"123456";
const ADMIN: &[u8] = b"admin-2468";

type TestDongle = Dongle<MemStorage, TestPlatform>;

fn cfg() -> Config {
    Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() }
}

fn at(ms: u64) -> Now {
    Now { mono_ms: ms, unix_secs: 1_700_000_000 + ms / 1000 }
}

fn binding() -> Binding {
    Binding { serial: "00000000a1b2c3d4".into(), device_secret: None }
}

/// The unlock secret the tests' host `key` holds (any 32 bytes do for the core).
fn secret_for(key: &[u8; 32]) -> UnlockSecret {
    let mut s = *key;
    s.reverse();
    s[0] ^= 0x5a;
    UnlockSecret(Zeroizing::new(s))
}

/// A connection in a session of `host`.
fn session(id: u64, host: [u8; 32]) -> Peer {
    Peer { id, label: format!("host{id}"), session: Some(host), network: false }
}

/// Unlock from `peer`, giving its host's unlock secret.
fn unlock_from(
    d: &mut Dongle<impl Storage, TestPlatform>,
    peer: &Peer,
    pin: &[u8],
    now: Now,
) -> Response {
    let unlock_secret = peer.session.as_ref().map(secret_for);
    ask_as(d, peer, Request::Unlock { pin: Pin::new(pin), unlock_secret }, now, Press::NotAsked)
}

/// Admin from `peer`, giving its host's unlock secret.
fn admin_from(d: &mut Dongle<impl Storage, TestPlatform>, peer: &Peer, now: Now) -> Response {
    let unlock_secret = peer.session.as_ref().map(secret_for);
    ask_as(
        d,
        peer,
        Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret },
        now,
        Press::NotAsked,
    )
}

/// A local connection (USB or the Unix socket) with this id, outside any session.
fn conn(id: u64) -> Peer {
    Peer { id, label: format!("test{id}"), session: None, network: false }
}

/// A local connection in a session of a host key made for it alone (what the admin tool and
/// the bridge use without a configured host key): served while no host is paired.
fn local(id: u64) -> Peer {
    let host = *SecretKey::derive(&id.to_le_bytes()).public_key().as_bytes();
    Peer { session: Some(host), ..conn(id) }
}

fn start_with<S: Storage>(
    storage: S,
    cfg: Config,
    platform: TestPlatform,
) -> Dongle<S, TestPlatform> {
    Dongle::start(cfg, storage, platform, binding(), at(0)).unwrap()
}

fn start(storage: MemStorage) -> TestDongle {
    start_with(storage, cfg(), TestPlatform::default())
}

/// Ask as connection 1 (in its own session), without the button.
fn ask(d: &mut Dongle<impl Storage, TestPlatform>, req: Request, now: Now) -> Response {
    ask_as(d, &local(1), req, now, Press::NotAsked)
}

fn ask_as(
    d: &mut Dongle<impl Storage, TestPlatform>,
    peer: &Peer,
    req: Request,
    now: Now,
    press: Press,
) -> Response {
    match d.handle(req, now, peer, press) {
        Outcome::Answer(r) => r,
        Outcome::NeedsPresence => Response::PresenceNeeded { timeout_secs: 0 },
    }
}

/// Ask as connection 1 with the button pressed.
fn pressed(d: &mut Dongle<impl Storage, TestPlatform>, req: Request, now: Now) -> Response {
    ask_as(d, &local(1), req, now, Press::Pressed)
}

fn init(pin: Option<&[u8]>, admin: &[u8]) -> Request {
    Request::Init { pin: pin.map(Pin::new), admin_pin: Pin::new(admin) }
}

fn initialised(pin: Option<&[u8]>) -> (TestDongle, PublicKey) {
    let mut d = start(MemStorage::default());
    let pk = match ask(&mut d, init(pin, ADMIN), at(0)) {
        Response::PublicKeys(keys) => PublicKey::from_bytes(keys[0].public_key),
        other => panic!("{other:?}"),
    };
    (d, pk)
}

/// Restart: drop the dongle, keep its storage.
fn restart(d: TestDongle) -> TestDongle {
    start(d.into_storage())
}

fn hello(d: &mut Dongle<impl Storage, TestPlatform>, now: Now) -> HelloInfo {
    match ask(d, Request::Hello, now) {
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

type Opened = Result<Vec<Result<String, &'static str>>, DongleError>;

fn unseal(d: &mut Dongle<impl Storage, TestPlatform>, items: Vec<SealedItem>, now: Now) -> Opened {
    match ask(d, Request::UnsealBatch { items }, now) {
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
    ask(d, Request::Unlock { pin: Pin::new(pin), unlock_secret: None }, now)
}

fn admin(d: &mut Dongle<impl Storage, TestPlatform>, now: Now) {
    assert_eq!(
        ask(d, Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None }, now),
        Response::Ok
    );
}

/// The audit log as stored (read from the card: paired dongles answer `AuditTail` only in a
/// session; `audit_tail_returns_the_chain_head` covers the request).
fn audit_lines(d: &mut Dongle<impl Storage, TestPlatform>) -> Vec<String> {
    let bytes = d.storage().load(File::AuditLog).unwrap().unwrap_or_default();
    String::from_utf8(bytes).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn init_needs_both_credentials_generates_a_key_once_and_leaves_the_dongle_locked() {
    let mut d = start(MemStorage::default());
    assert_eq!(hello(&mut d, at(0)).state, LockState::Uninitialised);
    assert_eq!(err(ask(&mut d, Request::PublicKeys, at(0))), DongleError::NotInitialised);
    assert_eq!(err(ask(&mut d, init(Some(b"12"), ADMIN), at(0))), DongleError::BadPin);
    assert_eq!(err(ask(&mut d, init(Some(PIN), b"short"), at(0))), DongleError::BadPin);
    assert_eq!(err(ask(&mut d, init(Some(ADMIN), ADMIN), at(0))), DongleError::SamePin);
    assert_eq!(hello(&mut d, at(0)).state, LockState::Uninitialised, "nothing half-made");
    let (mut d, pk) = initialised(Some(PIN));
    let h = hello(&mut d, at(1));
    assert_eq!(h.serial, "00000000a1b2c3d4");
    assert!(h.pin_set && h.audit_intact && !h.admin_window);
    assert_eq!((h.pin_tries_left, h.admin_tries_left), (8, 8));
    assert_eq!(h.state, LockState::Locked, "init does not unlock for staff");
    assert_eq!(h.keys.len(), 1);
    assert_eq!(h.keys[0].key_id, pk.key_id());
    assert_eq!(err(ask(&mut d, init(None, ADMIN), at(2))), DongleError::AlreadyInitialised);
    // Public keys are readable while locked, after a restart.
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).state, LockState::Locked);
    assert!(
        matches!(ask(&mut d, Request::PublicKeys, at(0)), Response::PublicKeys(k) if k[0].key_id == pk.key_id())
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
        audit_lines(&mut d)
            .last()
            .unwrap()
            .contains(&format!(" unseal {} 2 3 test1 ", pk.key_id()))
    );
    // Another connection is served by the same staff unlock; Lock ends it for everyone.
    let from_2 =
        ask_as(&mut d, &conn(2), Request::UnsealBatch { items: batch() }, at(4), Press::NotAsked);
    assert!(matches!(from_2, Response::Unsealed(_)));
    assert_eq!(ask(&mut d, Request::Lock, at(4)), Response::Ok);
    assert_eq!(unseal(&mut d, batch(), at(5)), Err(DongleError::Locked));
    assert!(!d.platform.led.load(Ordering::SeqCst));
}

#[test]
fn wrong_staff_pins_survive_restarts_lock_out_and_an_admin_sets_a_new_pin() {
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
    // The admin credential is unaffected: an admin sets a new staff PIN, with the button.
    admin(&mut d, at(3));
    let set = || Request::SetStaffPin { new: Some(Pin::new(b"654321")) };
    assert!(matches!(ask(&mut d, set(), at(3)), Response::PresenceNeeded { .. }));
    assert_eq!(
        err(ask_as(&mut d, &conn(1), set(), at(3), Press::NotPressed)),
        DongleError::NotConfirmed
    );
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" presence-missing ")));
    assert_eq!(pressed(&mut d, set(), at(4)), Response::Ok);
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).pin_tries_left, 8);
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::WrongPin { tries_left: 7 });
    assert_eq!(unlock(&mut d, b"654321", at(2)), Response::Ok);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(3)).unwrap(), vec![Ok("v".into())]);
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" staff-pin-set ")));
}

#[test]
fn a_right_pin_resets_only_its_own_counter() {
    let (mut d, _) = initialised(Some(PIN));
    err(unlock(&mut d, b"999999", at(1)));
    err(unlock(&mut d, b"999999", at(1)));
    let wrong_admin =
        Request::AdminAuth { admin_pin: Pin::new(b"admin-0000"), unlock_secret: None };
    assert_eq!(
        err(ask(&mut d, wrong_admin.clone(), at(1))),
        DongleError::WrongAdminPin { tries_left: 7 }
    );
    let h = hello(&mut d, at(1));
    assert_eq!((h.pin_tries_left, h.admin_tries_left), (6, 7));
    // A right staff PIN does not give admin guesses back (7 wrong, 1 right, repeat: no).
    assert_eq!(unlock(&mut d, PIN, at(2)), Response::Ok);
    let h = hello(&mut d, at(3));
    assert_eq!((h.pin_tries_left, h.admin_tries_left), (8, 7));
    // Nor the reverse.
    err(unlock(&mut d, b"999999", at(4)));
    admin(&mut d, at(5));
    let h = hello(&mut d, at(6));
    assert_eq!((h.pin_tries_left, h.admin_tries_left), (7, 8));
}

#[test]
fn admin_lock_out_refuses_admin_requests_but_unsealing_goes_on_and_a_pressed_reset_recovers() {
    let (mut d, pk) = initialised(Some(PIN));
    for left in (1..8u8).rev() {
        let r = ask(
            &mut d,
            Request::AdminAuth { admin_pin: Pin::new(b"admin-0000"), unlock_secret: None },
            at(1),
        );
        assert_eq!(err(r), DongleError::WrongAdminPin { tries_left: left });
    }
    let r = ask(
        &mut d,
        Request::AdminAuth { admin_pin: Pin::new(b"admin-0000"), unlock_secret: None },
        at(1),
    );
    assert_eq!(err(r), DongleError::AdminLockedOut);
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).admin_tries_left, 0);
    assert_eq!(
        err(ask(
            &mut d,
            Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None },
            at(1)
        )),
        DongleError::AdminLockedOut
    );
    assert_eq!(
        err(pressed(&mut d, Request::Backup { threshold: 2, count: 3 }, at(1))),
        DongleError::AdminLockedOut
    );
    unlock(&mut d, PIN, at(2));
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(3)).unwrap(), vec![Ok("v".into())]);
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" admin-locked-out ")));
    // Nobody can administer it: a factory reset needs only the button now.
    assert!(matches!(ask(&mut d, Request::FactoryReset, at(4)), Response::PresenceNeeded { .. }));
    assert_eq!(pressed(&mut d, Request::FactoryReset, at(4)), Response::Ok);
    assert_eq!(hello(&mut d, at(5)).state, LockState::Uninitialised);
}

#[test]
fn counters_are_written_before_either_credential_is_compared() {
    // Counter writes fail: were the counter written after the comparison, a right PIN would
    // unlock while its try went uncounted.
    let (d, _) = initialised(Some(PIN));
    let mut storage = FaultyStorage::new(d.into_storage());
    storage.fail_writes_to(File::PinCounter, Fault::NoSpace);
    let mut d = start_with(storage, cfg(), TestPlatform::default());
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::Storage);
    assert_eq!(
        err(ask(
            &mut d,
            Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None },
            at(1)
        )),
        DongleError::Storage
    );
    let h = hello(&mut d, at(2));
    assert_eq!(h.state, LockState::Locked);
    assert!(!h.admin_window);
}

#[test]
fn idle_lock_counts_key_use_only() {
    let (mut d, pk) = initialised(Some(PIN));
    let idle = cfg().idle_lock_ms;
    unlock(&mut d, PIN, at(1000));
    assert!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1000)).is_ok());
    // Key use keeps it open...
    assert!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1000 + idle - 1)).is_ok());
    // ...status reads do not, however often they come.
    for t in (1000 + idle..1000 + 2 * idle).step_by(1000) {
        hello(&mut d, at(t));
        ask(&mut d, Request::PublicKeys, at(t));
        ask(&mut d, Request::AuditTail { max: 1 }, at(t));
    }
    assert_eq!(hello(&mut d, at(1000 + 2 * idle)).state, LockState::Locked);
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" idle-lock ")));
    // The transport's tick alone locks it too.
    unlock(&mut d, PIN, at(5 * idle));
    d.tick(at(6 * idle));
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(6 * idle)), Err(DongleError::Locked));
}

#[test]
fn rate_limit_bounds_records_per_minute() {
    let (mut d, pk) = initialised(Some(PIN));
    unlock(&mut d, PIN, at(0));
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
    let config = Config { confirm_batch_over: Some(5), ..cfg() };
    let mut d = start_with(d.into_storage(), config, TestPlatform::default());
    let batch = |n: usize| (0..n).map(|_| item(&pk, "c", "v")).collect::<Vec<_>>();
    assert!(unseal(&mut d, batch(5), at(1)).is_ok(), "small batches need no press");
    let big = || Request::UnsealBatch { items: batch(6) };
    assert!(matches!(ask(&mut d, big(), at(2)), Response::PresenceNeeded { .. }));
    assert_eq!(
        err(ask_as(&mut d, &conn(1), big(), at(2), Press::NotPressed)),
        DongleError::NotConfirmed
    );
    assert!(matches!(pressed(&mut d, big(), at(3)), Response::Unsealed(_)));
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

fn rotate(d: &mut TestDongle, now: Now) -> PublicKey {
    match ask(d, Request::Rotate, now) {
        Response::PublicKeys(keys) => {
            PublicKey::from_bytes(keys.iter().find(|k| k.active).unwrap().public_key)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotate_rewrap_retire_need_the_admin_window() {
    let (mut d, old) = initialised(Some(PIN));
    let items: Vec<SealedItem> = (0..5)
        .map(|i| {
            item(&old, &format!("cust_cards/{i}/card_number"), &format!("41111111111111{i:02}"))
        })
        .collect();
    unlock(&mut d, PIN, at(1));
    assert_eq!(
        err(ask(&mut d, Request::Rotate, at(1))),
        DongleError::AdminRequired,
        "the staff PIN is not enough"
    );
    admin(&mut d, at(1));
    let new = rotate(&mut d, at(1));
    assert_ne!(new.key_id(), old.key_id());
    let h = hello(&mut d, at(2));
    assert_eq!(h.keys.len(), 2);
    assert!(h.keys.iter().any(|k| k.active && k.version == 2));
    // The staff unlock sees the new version at once.
    assert_eq!(unseal(&mut d, vec![item(&new, "c", "v")], at(2)).unwrap(), vec![Ok("v".into())]);

    // Re-wrap to a foreign key is refused: it would be exfiltration past the rate limit.
    let foreign = SecretKey::derive(b"an attacker's key, not the dongle");
    let refused = ask(
        &mut d,
        Request::Rewrap { items: items.clone(), new_public_key: *foreign.public_key().as_bytes() },
        at(3),
    );
    assert_eq!(err(refused), DongleError::NotAllowed);

    let out = match ask(
        &mut d,
        Request::Rewrap { items: items.clone(), new_public_key: *new.as_bytes() },
        at(4),
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
        err(ask(&mut d, Request::Retire { key_id: new.key_id() }, at(5))),
        DongleError::KeyIsActive
    );
    assert_eq!(
        err(ask(&mut d, Request::Retire { key_id: KeyId([0; 8]) }, at(5))),
        DongleError::NoSuchKey
    );
    assert_eq!(ask(&mut d, Request::Retire { key_id: old.key_id() }, at(6)), Response::Ok);
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
fn staff_pin_removal_and_admin_pin_changes_need_admin_and_the_button() {
    let (mut d, _) = initialised(Some(PIN));
    unlock(&mut d, PIN, at(1));
    for req in [
        Request::SetStaffPin { new: None },
        Request::SetStaffPin { new: Some(Pin::new(b"13572468")) },
        Request::ChangeAdminPin { new: Pin::new(b"admin-1357") },
    ] {
        assert_eq!(err(pressed(&mut d, req, at(1))), DongleError::AdminRequired);
    }
    admin(&mut d, at(2));
    // A staff PIN equal to the admin credential, or the reverse, is refused.
    assert_eq!(
        err(pressed(&mut d, Request::SetStaffPin { new: Some(Pin::new(ADMIN)) }, at(2))),
        DongleError::SamePin
    );
    assert_eq!(
        err(pressed(&mut d, Request::ChangeAdminPin { new: Pin::new(b"123456") }, at(2))),
        DongleError::BadPin
    );
    let same = Request::SetStaffPin { new: Some(Pin::new(b"admin-9999")) };
    assert_eq!(pressed(&mut d, same, at(2)), Response::Ok);
    assert_eq!(
        err(pressed(&mut d, Request::ChangeAdminPin { new: Pin::new(b"admin-9999") }, at(2))),
        DongleError::SamePin
    );
    assert_eq!(
        pressed(&mut d, Request::ChangeAdminPin { new: Pin::new(b"admin-1357") }, at(3)),
        Response::Ok
    );
    assert_eq!(
        hello(&mut d, at(3)).state,
        LockState::Locked,
        "a new staff PIN ends the old unlock"
    );
    // Removing the staff PIN makes it a no-PIN dongle.
    assert_eq!(pressed(&mut d, Request::SetStaffPin { new: None }, at(4)), Response::Ok);
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(0)).state, LockState::Unlocked);
    assert_eq!(
        err(ask(
            &mut d,
            Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None },
            at(1)
        )),
        DongleError::WrongAdminPin { tries_left: 7 }
    );
    assert_eq!(
        ask(
            &mut d,
            Request::AdminAuth { admin_pin: Pin::new(b"admin-1357"), unlock_secret: None },
            at(1)
        ),
        Response::Ok
    );
    let lines = audit_lines(&mut d);
    for event in [" staff-pin-set ", " staff-pin-removed ", " admin-pin-changed "] {
        assert!(lines.iter().any(|l| l.contains(event)), "{event}");
    }
}

#[test]
fn an_admin_window_belongs_to_one_connection_and_closes() {
    let (mut d, _) = initialised(Some(PIN));
    let backup = || Request::Backup { threshold: 2, count: 3 };
    admin(&mut d, at(1));
    assert!(hello(&mut d, at(1)).admin_window);
    // Another connection, even one that knows the staff PIN, gets nothing from it.
    let other = conn(2);
    ask_as(
        &mut d,
        &other,
        Request::Unlock { pin: Pin::new(PIN), unlock_secret: None },
        at(1),
        Press::NotAsked,
    );
    assert_eq!(
        err(ask_as(&mut d, &other, backup(), at(1), Press::Pressed)),
        DongleError::AdminRequired
    );
    assert!(
        matches!(ask_as(&mut d, &other, Request::Hello, at(1), Press::NotAsked), Response::Hello(h) if !h.admin_window)
    );
    assert!(matches!(pressed(&mut d, backup(), at(1)), Response::Shares(_)));
    // EndAdmin closes it (the admin tool sends it when it finishes)...
    assert_eq!(ask(&mut d, Request::EndAdmin, at(2)), Response::Ok);
    assert_eq!(err(pressed(&mut d, backup(), at(2))), DongleError::AdminRequired);
    // ...so do Lock, the end of the connection, and idleness.
    admin(&mut d, at(3));
    ask(&mut d, Request::Lock, at(3));
    assert_eq!(err(pressed(&mut d, backup(), at(3))), DongleError::AdminRequired);
    admin(&mut d, at(4));
    d.disconnect(1, at(4));
    assert_eq!(err(pressed(&mut d, backup(), at(4))), DongleError::AdminRequired);
    admin(&mut d, at(5));
    let idle = cfg().admin_idle_ms;
    assert!(
        matches!(ask(&mut d, Request::Rotate, at(5 + idle - 1)), Response::PublicKeys(_)),
        "use keeps it open"
    );
    hello(&mut d, at(5 + 2 * idle - 2));
    assert_eq!(err(pressed(&mut d, backup(), at(5 + 2 * idle))), DongleError::AdminRequired);
    assert!(audit_lines(&mut d).iter().filter(|l| l.contains(" admin-end ")).count() >= 4);
}

#[test]
fn admin_commands_never_unlock_records_for_staff() {
    let (mut d, pk) = initialised(Some(PIN));
    admin(&mut d, at(1));
    rotate(&mut d, at(1));
    pressed(&mut d, Request::Backup { threshold: 2, count: 2 }, at(1));
    assert_eq!(hello(&mut d, at(2)).state, LockState::Locked);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(2)), Err(DongleError::Locked));
    let staff_page = conn(7);
    let r = ask_as(
        &mut d,
        &staff_page,
        Request::UnsealBatch { items: vec![item(&pk, "c", "v")] },
        at(2),
        Press::NotAsked,
    );
    assert_eq!(err(r), DongleError::Locked);
}

#[test]
fn factory_reset_needs_admin_and_the_button_and_wipes_pairings() {
    let (d, _) = initialised(Some(PIN));
    let mut d = restart(d);
    unlock(&mut d, PIN, at(1));
    assert_eq!(err(pressed(&mut d, Request::FactoryReset, at(1))), DongleError::AdminRequired);
    admin(&mut d, at(2));
    assert_eq!(
        pressed(
            &mut d,
            Request::Pair {
                host_key: [7; 32],
                label: "till".into(),
                unlock_secret: secret_for(&[7; 32])
            },
            at(2)
        ),
        Response::Ok
    );
    // Paired now: the admin works from the paired host's session.
    let till = session(9, [7; 32]);
    assert_eq!(admin_from(&mut d, &till, at(3)), Response::Ok);
    let reset = ask_as(&mut d, &till, Request::FactoryReset, at(3), Press::NotAsked);
    assert!(matches!(reset, Response::PresenceNeeded { .. }));
    assert_eq!(ask_as(&mut d, &till, Request::FactoryReset, at(3), Press::Pressed), Response::Ok);
    let mut d = restart(d);
    let h = hello(&mut d, at(0));
    assert_eq!((h.state, h.paired_hosts), (LockState::Uninitialised, 0));
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
    assert_eq!(err(ask(&mut d, init(None, ADMIN), at(2))), DongleError::AlreadyInitialised);
    // Recovery: a pressed factory reset, no credential (none can be checked).
    assert_eq!(d.into_storage().files[&File::KeyStore], damaged);
}

/// A card copied into another board: both credentials' slots (the admin verifier included)
/// are bound to the board, so the right PINs verify nothing there, offline or through the
/// firmware; the firmware sees the board is wrong and counts no try.
#[test]
fn a_copied_card_opens_neither_credential_on_another_board() {
    let (d, _) = initialised(Some(PIN));
    let other_board = Binding { serial: "00000000ffffffff".into(), device_secret: None };
    let storage = d.into_storage();
    let store = KeyStore::parse(&storage.files[&File::KeyStore]).unwrap();
    assert!(store.device_half(Credential::Admin, &binding(), ADMIN).is_ok());
    assert!(store.device_half(Credential::Staff, &binding(), PIN).is_ok());
    assert!(store.device_half(Credential::Admin, &other_board, ADMIN).is_err());
    assert!(store.device_half(Credential::Staff, &other_board, PIN).is_err());
    let mut d = Dongle::start(cfg(), storage, TestPlatform::default(), other_board, at(0)).unwrap();
    assert_eq!(err(unlock(&mut d, PIN, at(1))), DongleError::DeviceSecretMissing);
    let r =
        ask(&mut d, Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None }, at(1));
    assert_eq!(err(r), DongleError::DeviceSecretMissing);
    assert_eq!(hello(&mut d, at(1)).pin_tries_left, 8);
}

#[test]
fn a_deleted_pin_counter_is_treated_as_lock_out_of_both_credentials() {
    let (d, _) = initialised(Some(PIN));
    let mut storage = d.into_storage();
    storage.files.remove(&File::PinCounter);
    let mut d = start(storage);
    let h = hello(&mut d, at(0));
    assert_eq!((h.state, h.admin_tries_left), (LockState::LockedOut, 0));
}

#[test]
fn a_broken_audit_log_refuses_key_use_and_custody_changes_but_answers_reads() {
    let (d, pk) = initialised(None);
    let mut storage = d.into_storage();
    let log = storage.files.get_mut(&File::AuditLog).unwrap();
    log[10] ^= 1;
    let mut d = start(storage);
    assert!(!hello(&mut d, at(0)).audit_intact);
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1)), Err(DongleError::AuditBroken));
    for req in [
        Request::Unlock { pin: Pin::new(PIN), unlock_secret: None },
        Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None },
        Request::Backup { threshold: 2, count: 3 },
        Request::Pair {
            host_key: [1; 32],
            label: String::new(),
            unlock_secret: secret_for(&[1; 32]),
        },
    ] {
        assert_eq!(err(pressed(&mut d, req, at(1))), DongleError::AuditBroken);
    }
    // Reads answer: the state, and the broken log's last lines as stored.
    match ask(&mut d, Request::AuditTail { max: 5 }, at(1)) {
        Response::AuditTail { entries, total, .. } => {
            assert_eq!((entries.len(), total), (1, 0), "one (edited) line, numbered unreliably")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ask(&mut d, Request::PublicKeys, at(1)), Response::PublicKeys(_)));
    assert_eq!(
        err(ask(&mut d, Request::AuditRead { from_seq: 0, max: 5 }, at(1))),
        DongleError::AuditBroken
    );
    // The way back: a factory reset with a press (nobody can open an admin window) sets the
    // broken log aside, kept on the card, and starts a new chain that says so.
    let broken = d.storage().files[&File::AuditLog].clone();
    assert!(matches!(ask(&mut d, Request::FactoryReset, at(2)), Response::PresenceNeeded { .. }));
    assert_eq!(pressed(&mut d, Request::FactoryReset, at(2)), Response::Ok);
    let kept = d.storage().files.iter().find(|(f, _)| matches!(f, File::AuditSetAside { .. }));
    assert_eq!(kept.map(|(_, b)| b), Some(&broken));
    let h = hello(&mut d, at(3));
    assert!(h.audit_intact && h.state == LockState::Uninitialised);
    let lines = audit_lines(&mut d);
    assert!(lines[0].contains(" log-set-aside - 1 0 ") && lines[1].contains(" factory-reset "));
    assert!(matches!(ask(&mut d, init(Some(PIN), ADMIN), at(4)), Response::PublicKeys(_)));
    assert!(audit::verify(&(lines.join("\n") + "\n")).is_ok());
}

/// What a host may cause to be logged is rate-limited (the card cannot be filled), and a
/// request whose line is refused does not run.
#[test]
fn audit_lines_hosts_cause_are_rate_limited_and_refused_requests_do_not_run() {
    let (mut d, pk) = initialised(Some(PIN));
    let per_minute = cfg().log_lines_per_minute;
    // Init made one line; the bucket started full.
    for i in 1..per_minute {
        assert_eq!(unlock(&mut d, PIN, at(1)), Response::Ok, "line {i}");
    }
    assert!(matches!(err(unlock(&mut d, PIN, at(1))), DongleError::RateLimited { .. }));
    // Refused before the PIN was looked at: no try spent, right or wrong.
    assert!(matches!(err(unlock(&mut d, b"999999", at(1))), DongleError::RateLimited { .. }));
    assert_eq!(hello(&mut d, at(1)).pin_tries_left, cfg().max_pin_tries);
    assert!(matches!(
        unseal(&mut d, vec![item(&pk, "c", "v")], at(1)),
        Err(DongleError::RateLimited { .. })
    ));
    let lines = audit_lines(&mut d).len();
    assert_eq!(lines as u32, per_minute, "refused requests wrote nothing");
    // A second later, two more lines may be written.
    assert_eq!(unseal(&mut d, vec![item(&pk, "c", "v")], at(1001)).unwrap(), [Ok("v".into())]);
}

/// A restart grants no fresh burst: the records opened lately are read back from the log.
#[test]
fn a_restart_does_not_refill_the_records_bucket() {
    let (mut d, pk) = initialised(None);
    let burst = cfg().burst as usize;
    let batch = |n| (0..n).map(|i| item(&pk, "c", &format!("{i}"))).collect::<Vec<_>>();
    let mut opened = 0;
    while opened + 256 <= burst {
        assert!(unseal(&mut d, batch(256), at(0)).is_ok());
        opened += 256;
    }
    assert!(unseal(&mut d, batch(burst - opened), at(0)).is_ok());
    assert!(matches!(unseal(&mut d, batch(5), at(0)), Err(DongleError::RateLimited { .. })));
    let mut d = restart(d);
    assert!(
        matches!(unseal(&mut d, batch(5), at(0)), Err(DongleError::RateLimited { .. })),
        "the bucket restarted empty, as it was"
    );
    // Started a second later by the clock the log uses: ten a second came back.
    let t = Now { mono_ms: 0, unix_secs: at(0).unix_secs + 1 };
    let mut later =
        Dongle::start(cfg(), d.into_storage(), TestPlatform::default(), binding(), t).unwrap();
    assert!(unseal(&mut later, batch(10), t).is_ok());
    assert!(matches!(unseal(&mut later, batch(1), t), Err(DongleError::RateLimited { .. })));
}

#[test]
fn audit_tail_returns_the_chain_head() {
    let (mut d, pk) = initialised(Some(PIN));
    unlock(&mut d, PIN, at(1));
    unseal(&mut d, vec![item(&pk, "c", "v")], at(1)).unwrap();
    match ask(&mut d, Request::AuditTail { max: 1 }, at(2)) {
        Response::AuditTail { entries, head, total } => {
            assert_eq!(total, 3);
            assert_eq!(entries.len(), 1);
            assert!(entries[0].line.ends_with(&vbzkey_protocol::audit::hex(&head)));
            assert!(audit::verify(&audit_lines(&mut d).join("\n")).is_ok());
        }
        other => panic!("{other:?}"),
    }
}

fn frame_answer(d: &mut TestDongle, payload: &[u8]) -> (u32, Response) {
    match d.handle_frame(payload, at(1), &conn(1), Press::NotAsked) {
        FrameOutcome::Answer(frame) => wire::decode(&frame[8..]).unwrap(),
        FrameOutcome::NeedsPresence { .. } => panic!("no press expected"),
    }
}

#[test]
fn malformed_frames_get_an_error_answer() {
    let (mut d, _) = initialised(None);
    for payload in [&b""[..], b"\x01", b"\x01\x05\xff\xff", &[0xffu8; 64]] {
        let (_, resp) = frame_answer(&mut d, payload);
        assert!(
            matches!(
                resp,
                Response::Error(DongleError::Malformed | DongleError::UnsupportedVersion)
            ),
            "{resp:?}"
        );
    }
    let frame = wire::encode(42, &Request::Hello);
    let (id, resp) = frame_answer(&mut d, &frame[8..]);
    assert_eq!(id, 42);
    assert!(matches!(resp, Response::Hello(_)));
    let frame = wire::encode(43, &Request::Backup { threshold: 2, count: 2 });
    admin(&mut d, at(1));
    assert!(matches!(
        d.handle_frame(&frame[8..], at(1), &conn(1), Press::NotAsked),
        FrameOutcome::NeedsPresence { request_id: 43 }
    ));
}

fn shares(d: &mut TestDongle, m: u8, n: u8) -> Vec<Share> {
    admin(d, at(1));
    match pressed(d, Request::Backup { threshold: m, count: n }, at(1)) {
        Response::Shares(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn backup_three_of_five_restores_into_a_fresh_dongle() {
    let (mut d, pk) = initialised(Some(PIN));
    admin(&mut d, at(1));
    let new = rotate(&mut d, at(1));
    let items = vec![
        item(&pk, "cust_cards/1/card_number", "old key"),
        item(&new, "cust_cards/2/card_number", "new key"),
    ];
    // Admin alone is not enough: shares are dealt only after a press.
    assert!(matches!(
        ask(&mut d, Request::Backup { threshold: 3, count: 5 }, at(1)),
        Response::PresenceNeeded { .. }
    ));
    let s = shares(&mut d, 3, 5);
    assert_eq!(s.len(), 5);
    assert!(s.iter().enumerate().all(|(i, x)| x.threshold == 3 && usize::from(x.index) == i + 1));
    assert!(audit_lines(&mut d).last().unwrap().contains(" backup - 5 3 "));

    let mut fresh = start(MemStorage::default());
    let restore = |shares: Vec<Share>| Request::Restore {
        shares,
        pin: Some(Pin::new(b"864200")),
        admin_pin: Pin::new(b"admin-8642"),
    };
    assert_eq!(
        err(ask(&mut fresh, restore(s[..2].to_vec()), at(2))),
        DongleError::TooFewShares { need: 3, got: 2 }
    );
    assert_eq!(
        err(ask(&mut fresh, restore(vec![s[0].clone(), s[0].clone(), s[1].clone()]), at(2))),
        DongleError::TooFewShares { need: 3, got: 2 }
    );
    // A share altered on the way (its printed checksum is the admin tool's to check) does
    // not rebuild the keys, and nothing is installed.
    let mut altered = s[1].clone();
    altered.data[0] ^= 1;
    assert_eq!(
        err(ask(&mut fresh, restore(vec![s[0].clone(), altered, s[2].clone()]), at(2))),
        DongleError::WrongShare
    );
    let (mut other, _) = initialised(None);
    let foreign = shares(&mut other, 3, 5);
    assert_eq!(
        err(ask(&mut fresh, restore(vec![s[0].clone(), s[1].clone(), foreign[2].clone()]), at(2))),
        DongleError::SharesMixed
    );
    match ask(&mut fresh, restore(vec![s[4].clone(), s[1].clone(), s[3].clone()]), at(3)) {
        Response::PublicKeys(k) => {
            assert_eq!(k.len(), 2);
            assert!(k.iter().any(|k| k.active && k.key_id == new.key_id()));
        }
        other => panic!("{other:?}"),
    }
    let mut fresh = restart(fresh);
    assert_eq!(unlock(&mut fresh, b"864200", at(4)), Response::Ok);
    assert_eq!(
        unseal(&mut fresh, items, at(5)).unwrap(),
        vec![Ok("old key".into()), Ok("new key".into())]
    );
    // An initialised dongle refuses a restore; the restored admin credential works.
    assert_eq!(
        err(ask(&mut fresh, restore(s[..3].to_vec()), at(6))),
        DongleError::AlreadyInitialised
    );
    assert_eq!(
        ask(
            &mut fresh,
            Request::AdminAuth { admin_pin: Pin::new(b"admin-8642"), unlock_secret: None },
            at(7)
        ),
        Response::Ok
    );
}

#[test]
fn backup_parameters_are_checked() {
    let (mut d, _) = initialised(None);
    admin(&mut d, at(1));
    for (m, n) in [(1, 3), (4, 3), (2, 17), (0, 0)] {
        assert_eq!(
            err(pressed(&mut d, Request::Backup { threshold: m, count: n }, at(1))),
            DongleError::BadBackupParameters,
            "{m} of {n}"
        );
    }
}

#[test]
fn clone_moves_the_keys_wrapped_to_the_target() {
    let (mut a, pk) = initialised(Some(PIN));
    let mut b = start(MemStorage::default());
    let blob_for =
        |a: &mut TestDongle, to: [u8; 32]| match pressed(a, Request::CloneExport { to }, at(2)) {
            Response::CloneBlob(blob) => blob,
            other => panic!("{other:?}"),
        };
    let import = |blob: Vec<u8>| Request::CloneImport {
        blob,
        pin: Some(Pin::new(b"135700")),
        admin_pin: Pin::new(b"admin-1357"),
    };
    assert_eq!(err(ask(&mut b, import(vec![1, 2, 3]), at(1))), DongleError::NoCloneInProgress);
    let to = match ask(&mut b, Request::CloneBegin, at(1)) {
        Response::CloneKey(k) => k,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(pressed(&mut a, Request::CloneExport { to }, at(2))),
        DongleError::AdminRequired
    );
    admin(&mut a, at(2));
    // Sealed to one of the dongle's own keys, a clone blob is refused (it is in its own
    // domain and would not open as a record anyway: `a_clone_blob_given_as_a_record_...`).
    assert_eq!(
        err(pressed(&mut a, Request::CloneExport { to: *pk.as_bytes() }, at(2))),
        DongleError::BadPublicKey
    );
    let blob = blob_for(&mut a, to);
    // The blob is sealed: the key bytes are not in it in clear, and an altered blob fails.
    let key_bytes = a.admin_keys().unwrap().0.keys[0].1.to_bytes();
    assert!(!blob.windows(32).any(|w| w == &key_bytes[..]));
    let mut altered = blob.clone();
    altered[50] ^= 1;
    assert_eq!(err(ask(&mut b, import(altered), at(3))), DongleError::BadCloneBlob);
    // A blob for another target does not open here.
    let stranger = SecretKey::derive(b"some other dongle's transfer key");
    let wrong = blob_for(&mut a, *stranger.public_key().as_bytes());
    assert_eq!(err(ask(&mut b, import(wrong), at(3))), DongleError::BadCloneBlob);
    assert!(
        matches!(ask(&mut b, import(blob), at(4)), Response::PublicKeys(k) if k[0].key_id == pk.key_id())
    );
    let mut b = restart(b);
    unlock(&mut b, b"135700", at(5));
    let items = vec![item(&pk, "cust_cards/9/card_number", "4111111111111111")];
    assert_eq!(unseal(&mut b, items.clone(), at(6)).unwrap(), vec![Ok("4111111111111111".into())]);
    unlock(&mut a, PIN, at(7));
    assert_eq!(unseal(&mut a, items, at(7)).unwrap(), vec![Ok("4111111111111111".into())]);
    assert!(audit_lines(&mut a).iter().any(|l| l.contains(" clone-export ")));
    assert!(audit_lines(&mut b).iter().any(|l| l.contains(" clone-import ")));
}

/// A clone's blob is a key transfer, not a record: given to `UnsealBatch` or `Rewrap` (even
/// with the context clones once used), it is refused item by item, and the refusal is logged.
#[test]
fn a_clone_blob_given_as_a_record_is_refused_and_the_refusal_is_logged() {
    let (mut d, pk) = initialised(Some(PIN));
    admin(&mut d, at(1));
    let target = SecretKey::derive(b"a clone target's transfer key");
    let export = Request::CloneExport { to: *target.public_key().as_bytes() };
    let blob = match pressed(&mut d, export, at(1)) {
        Response::CloneBlob(b) => b,
        other => panic!("{other:?}"),
    };
    let as_item = SealedItem { record: blob, context: b"vbzkey clone v1".to_vec() };
    unlock(&mut d, PIN, at(2));
    assert_eq!(
        unseal(&mut d, vec![as_item.clone(), item(&pk, "c", "v")], at(2)).unwrap(),
        vec![Err("key_transfer"), Ok("v".into())]
    );
    let rewrap = Request::Rewrap { items: vec![as_item], new_public_key: *pk.as_bytes() };
    match ask(&mut d, rewrap, at(3)) {
        Response::Rewrapped(r) => {
            assert_eq!(r, vec![Err(wire::ItemError::Record(record::RecordErrorCode::KeyTransfer))])
        }
        other => panic!("{other:?}"),
    }
    let refusals =
        audit_lines(&mut d).iter().filter(|l| l.contains(" key-transfer-refused ")).count();
    assert_eq!(refusals, 2);
}

#[test]
fn once_hosts_are_paired_only_their_sessions_are_served() {
    let (mut d, _) = initialised(Some(PIN));
    let host = [7u8; 32];
    assert!(
        d.accepts_session(&[9; 32], false),
        "no pairing yet: any local host may open a session"
    );
    assert!(!d.accepts_session(&[9; 32], true), "but never over the network");
    admin(&mut d, at(1));
    assert_eq!(
        pressed(
            &mut d,
            Request::Pair {
                host_key: host,
                label: "till".into(),
                unlock_secret: secret_for(&host)
            },
            at(1)
        ),
        Response::Ok
    );
    assert!(d.accepts_session(&host, true) && !d.accepts_session(&[9; 32], false));
    // Plain requests other than identity questions are refused now, even Lock.
    let plain = conn(3);
    for req in [
        Request::Unlock { pin: Pin::new(PIN), unlock_secret: None },
        Request::Lock,
        Request::PublicKeys,
    ] {
        assert_eq!(
            err(ask_as(&mut d, &plain, req, at(2), Press::NotAsked)),
            DongleError::PairingRequired
        );
    }
    assert!(matches!(
        ask_as(&mut d, &plain, Request::Hello, at(2), Press::NotAsked),
        Response::Hello(_)
    ));
    let lan = Peer { id: 4, label: "host".into(), session: Some(host), network: true };
    assert_eq!(unlock_from(&mut d, &lan, PIN, at(2)), Response::Ok);
    let d = restart(d);
    assert!(d.accepts_session(&host, false), "pairings survive a restart");
}

#[test]
fn a_damaged_pairings_file_serves_no_staff_until_an_admin_pairs_again() {
    let (mut d, _) = initialised(Some(PIN));
    let host = [7u8; 32];
    admin(&mut d, at(1));
    pressed(
        &mut d,
        Request::Pair { host_key: host, label: "till".into(), unlock_secret: secret_for(&host) },
        at(1),
    );
    let mut storage = d.into_storage();
    let f = storage.files.get_mut(&File::Pairings).unwrap();
    let last = f.len() - 1;
    f[last] ^= 1;
    let mut d = start(storage);
    // Fail closed: not back to serving everyone, and the paired host is no longer known...
    let till = session(5, host);
    assert_eq!(err(unlock_from(&mut d, &till, PIN, at(2))), DongleError::PairingRequired);
    let admin_auth = || Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None };
    assert_eq!(
        err(ask_as(&mut d, &conn(2), admin_auth(), at(2), Press::NotAsked)),
        DongleError::NotAllowed
    );
    assert_eq!(
        err(ask_as(&mut d, &session(6, [9; 32]), admin_auth(), at(2), Press::NotAsked)),
        DongleError::HostNotTrusted
    );
    assert!(!d.accepts_session(&host, true));
    // ...but a local session can still present the admin credential and pair again.
    assert!(d.accepts_session(&host, false));
    // (The key store still holds the host's wrap: its secret still opens the host half.)
    assert_eq!(admin_from(&mut d, &till, at(3)), Response::Ok);
    let pair =
        |label: String| Request::Pair { host_key: host, label, unlock_secret: secret_for(&host) };
    assert_eq!(ask_as(&mut d, &till, pair("till".into()), at(3), Press::Pressed), Response::Ok);
    assert_eq!(unlock_from(&mut d, &till, PIN, at(4)), Response::Ok);
    assert_eq!(
        err(ask_as(&mut d, &till, pair("x".repeat(65)), at(5), Press::Pressed)),
        DongleError::BadPairing
    );
    let unpair = Request::Unpair { host_key: [8; 32] };
    assert_eq!(err(ask_as(&mut d, &till, unpair, at(5), Press::Pressed)), DongleError::BadPairing);
}

fn pair(d: &mut TestDongle, admin: &Peer, host: [u8; 32], now: Now) -> Response {
    let req = Request::Pair { host_key: host, label: "h".into(), unlock_secret: secret_for(&host) };
    ask_as(d, admin, req, now, Press::Pressed)
}

/// Split custody in the core: once a host is paired, the right PIN from an unpaired host (or a
/// paired one without its secret) opens nothing, and does not cost a PIN try.
#[test]
fn once_paired_the_pin_alone_opens_nothing() {
    let (mut d, pk) = initialised(Some(PIN));
    let (a, b) = ([0xa1; 32], [0xb2; 32]);
    assert!(!hello(&mut d, at(0)).split_custody, "no host paired: the PIN alone protects it");
    admin(&mut d, at(1));
    assert_eq!(pair(&mut d, &conn(1), a, at(1)), Response::Ok);
    assert!(hello(&mut d, at(1)).split_custody);
    let (from_a, from_b) = (session(10, a), session(11, b));
    // B is not paired: no session is accepted. Even with one forced through, nothing opens.
    assert!(!d.accepts_session(&b, false));
    assert_eq!(err(unlock_from(&mut d, &from_b, PIN, at(2))), DongleError::PairingRequired);
    // A without its secret, or with another's: refused before the PIN is counted.
    let no_secret = Request::Unlock { pin: Pin::new(PIN), unlock_secret: None };
    assert_eq!(
        err(ask_as(&mut d, &from_a, no_secret, at(2), Press::NotAsked)),
        DongleError::HostNotTrusted
    );
    let wrong = Request::Unlock { pin: Pin::new(PIN), unlock_secret: Some(secret_for(&b)) };
    assert_eq!(
        err(ask_as(&mut d, &from_a, wrong, at(2), Press::NotAsked)),
        DongleError::HostNotTrusted
    );
    assert_eq!(hello(&mut d, at(2)).pin_tries_left, 8, "no PIN try was spent");
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" host-not-trusted ")));
    // A with its secret and the PIN: records open.
    assert_eq!(unlock_from(&mut d, &from_a, PIN, at(3)), Response::Ok);
    let items = vec![item(&pk, "c", "v")];
    let r = ask_as(
        &mut d,
        &from_a,
        Request::UnsealBatch { items: items.clone() },
        at(3),
        Press::NotAsked,
    );
    assert!(matches!(r, Response::Unsealed(_)));
    // Pairing B from A's admin window: B now unlocks too; unpairing A ends A's share.
    ask_as(&mut d, &from_a, Request::Lock, at(4), Press::NotAsked);
    assert_eq!(admin_from(&mut d, &from_a, at(4)), Response::Ok);
    assert_eq!(pair(&mut d, &from_a, b, at(4)), Response::Ok);
    assert_eq!(unlock_from(&mut d, &from_b, PIN, at(5)), Response::Ok);
    ask_as(&mut d, &from_b, Request::Lock, at(5), Press::NotAsked);
    let unpair = Request::Unpair { host_key: a };
    assert_eq!(ask_as(&mut d, &from_a, unpair, at(6), Press::Pressed), Response::Ok);
    let mut d = restart(d);
    assert!(!d.accepts_session(&a, false), "A is no longer paired");
    let forced = Request::Unlock { pin: Pin::new(PIN), unlock_secret: Some(secret_for(&a)) };
    // Even a session forced through with A's key and secret finds no share for A any more.
    let r = d.handle(forced, at(7), &session(12, a), Press::NotAsked);
    assert!(matches!(r, Outcome::Answer(Response::Error(DongleError::PairingRequired))));
    assert_eq!(unlock_from(&mut d, &session(13, b), PIN, at(8)), Response::Ok);
    // Unpairing the last host puts the dongle back to PIN-only custody, and says so.
    assert_eq!(admin_from(&mut d, &session(13, b), at(9)), Response::Ok);
    let unpair_b = Request::Unpair { host_key: b };
    assert_eq!(ask_as(&mut d, &session(13, b), unpair_b, at(9), Press::Pressed), Response::Ok);
    assert!(!hello(&mut d, at(10)).split_custody);
    assert_eq!(unlock(&mut d, PIN, at(10)), Response::Ok);
}

/// The whole state directory of a paired, locked dongle, with the right staff PIN, serial and
/// OTP secret, offline: the PIN's half alone, with or without each stored wrap's data, does
/// not open the key store; with a paired host's unlock secret added, it does.
#[test]
fn a_stolen_paired_dongle_with_its_pin_opens_nothing_offline() {
    use crate::keystore::{Credential, Halves, KeyStore, KeyStoreError};
    let (mut d, _) = initialised(Some(PIN));
    let host = [0x77; 32];
    admin(&mut d, at(1));
    assert_eq!(pair(&mut d, &conn(1), host, at(1)), Response::Ok);
    ask(&mut d, Request::EndAdmin, at(1));
    let state = d.into_storage();
    // Everything on the card: key store, counters, pairings, device key, audit log.
    for f in [File::KeyStore, File::PinCounter, File::Pairings, File::DeviceKey, File::AuditLog] {
        assert!(state.files.contains_key(&f), "{f:?}");
    }
    let b = binding();
    let store = KeyStore::parse(&state.files[&File::KeyStore]).unwrap();
    let device = store.device_half(Credential::Staff, &b, PIN).unwrap();
    // The PIN's half as the master key, or paired with any value found on the card.
    assert!(store.open(&device).is_err());
    let card: Vec<u8> = state.files.values().flatten().copied().collect();
    for guess in card.windows(32).step_by(7) {
        let mut g = [0u8; 32];
        g.copy_from_slice(guess);
        let mk = Halves::new(device.clone(), Zeroizing::new(g)).master_key();
        assert!(store.open(&mk).is_err(), "a value on the card opened the store");
    }
    assert_eq!(store.host_half(&b, None).err(), Some(KeyStoreError::NoSlot));
    // With the paired host's secret, it opens.
    let h = store.host_half(&b, Some((&host, &secret_for(&host).0))).unwrap();
    assert!(store.open(&Halves::new(device, h).master_key()).is_ok());
}

/// Lock and the idle lock leave no key, half or master key in the dongle's memory.
#[test]
fn locking_leaves_no_secret_in_memory() {
    let (mut d, pk) = initialised(Some(PIN));
    let host = [0x42; 32];
    admin(&mut d, at(1));
    pair(&mut d, &conn(1), host, at(1));
    let till = session(2, host);
    assert_eq!(unlock_from(&mut d, &till, PIN, at(2)), Response::Ok);
    assert_eq!(admin_from(&mut d, &till, at(2)), Response::Ok);
    let held = d.secrets_held();
    assert!(held.staff_unlock && held.admin_window);
    let shown = format!("{d:?}");
    assert!(
        !shown.contains(&format!("{:?}", secret_for(&host).0))
            && shown.contains("staff_unlock: true"),
        "{shown}"
    );
    ask_as(&mut d, &till, Request::Lock, at(3), Press::NotAsked);
    assert_eq!(d.secrets_held(), SecretsHeld::default());
    assert_eq!(unlock_from(&mut d, &till, PIN, at(4)), Response::Ok);
    let _ = unseal(&mut d, vec![item(&pk, "c", "v")], at(4));
    d.tick(at(4 + cfg().idle_lock_ms.max(cfg().admin_idle_ms)));
    assert_eq!(d.secrets_held(), SecretsHeld::default());
}

/// Through the core, with four threads: every answer at its request's place (good, tampered
/// and foreign-context records mixed), and one audit line for the batch.
#[test]
fn a_parallel_batch_answers_in_request_order_with_one_audit_line() {
    let mut d = start_with(
        MemStorage::default(),
        Config { open_threads: 4, ..cfg() },
        TestPlatform::default(),
    );
    let pk = match ask(&mut d, init(Some(PIN), ADMIN), at(0)) {
        Response::PublicKeys(keys) => PublicKey::from_bytes(keys[0].public_key),
        other => panic!("{other:?}"),
    };
    assert_eq!(unlock(&mut d, PIN, at(1)), Response::Ok);
    let bad = |i: usize| i % 7 == 3 || i % 11 == 5;
    let items: Vec<SealedItem> = (0..40)
        .map(|i| {
            let mut it = item(&pk, &format!("cust_cards/{i}/card_number"), &format!("value {i}"));
            if i % 7 == 3 {
                *it.record.last_mut().unwrap() ^= 1; // a tampered tag
            }
            if i % 11 == 5 {
                it.context = b"another/place".to_vec();
            }
            it
        })
        .collect();
    let results = unseal(&mut d, items, at(2)).unwrap();
    assert_eq!(results.len(), 40);
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(v) => assert!(!bad(i) && *v == format!("value {i}"), "{i}"),
            Err(_) => assert!(bad(i), "{i}"),
        }
    }
    let unseal_lines = audit_lines(&mut d).iter().filter(|l| l.contains(" unseal ")).count();
    assert_eq!(unseal_lines, 1);
}

mod faults;

fn with_otp() -> Binding {
    Binding { device_secret: Some(Zeroizing::new([0x42; 32])), ..binding() }
}

/// A store sealed to the board's OTP secret, started without it (the boot unit failed): its
/// own state, no credential is counted (the counter file is never written: writes to it fail
/// here), no host is blamed, no reset is offered even with the button, and the public keys
/// are still served. With the secret back, both PINs work with every try left.
#[test]
fn a_missing_device_secret_opens_nothing_and_counts_no_try() {
    let mut d =
        Dongle::start(cfg(), MemStorage::default(), TestPlatform::default(), with_otp(), at(0))
            .unwrap();
    assert!(matches!(ask(&mut d, init(Some(PIN), ADMIN), at(0)), Response::PublicKeys(_)));
    let host = [7u8; 32];
    admin(&mut d, at(1));
    let pair =
        Request::Pair { host_key: host, label: "till".into(), unlock_secret: secret_for(&host) };
    assert_eq!(pressed(&mut d, pair, at(1)), Response::Ok);
    let mut storage = FaultyStorage::new(d.into_storage());
    storage.fail_writes_to(File::PinCounter, Fault::NoSpace);
    let mut d = start_with(storage, cfg(), TestPlatform::default());
    let till = session(2, host);
    for _ in 0..10 {
        assert_eq!(err(unlock_from(&mut d, &till, PIN, at(2))), DongleError::DeviceSecretMissing);
        assert_eq!(
            err(unlock_from(&mut d, &till, b"999999", at(2))),
            DongleError::DeviceSecretMissing
        );
        assert_eq!(err(admin_from(&mut d, &till, at(2))), DongleError::DeviceSecretMissing);
    }
    let reset = ask_as(&mut d, &till, Request::FactoryReset, at(3), Press::Pressed);
    assert_eq!(err(reset), DongleError::DeviceSecretMissing);
    // The device key is sealed to the secret too: no session, and hosts are told why.
    assert_eq!(d.device_secret(), None);
    assert_eq!(err(ask(&mut d, Request::DeviceKey, at(3))), DongleError::DeviceSecretMissing);
    assert!(matches!(
        ask_as(&mut d, &till, Request::PublicKeys, at(3), Press::NotAsked),
        Response::PublicKeys(_)
    ));
    let h = match ask_as(&mut d, &till, Request::Hello, at(3), Press::NotAsked) {
        Response::Hello(h) => h,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (h.state, h.pin_tries_left, h.admin_tries_left),
        (LockState::DeviceSecretMissing, 8, 8)
    );
    assert_eq!(d.secrets_held(), SecretsHeld::default());
    assert!(!audit_lines(&mut d).iter().any(|l| l.contains("host-not-trusted")));

    let storage = d.into_storage().into_inner();
    let mut d = Dongle::start(cfg(), storage, TestPlatform::default(), with_otp(), at(4)).unwrap();
    assert!(matches!(ask(&mut d, Request::DeviceKey, at(5)), Response::DeviceKey(_)));
    assert_eq!(unlock_from(&mut d, &till, PIN, at(5)), Response::Ok);
    assert_eq!(admin_from(&mut d, &till, at(5)), Response::Ok);
}

/// A store without a staff PIN, sealed to the OTP secret: it does not open by itself at
/// start while the secret is missing.
#[test]
fn a_store_without_pin_stays_closed_without_its_device_secret() {
    let mut d =
        Dongle::start(cfg(), MemStorage::default(), TestPlatform::default(), with_otp(), at(0))
            .unwrap();
    assert!(matches!(ask(&mut d, init(None, ADMIN), at(0)), Response::PublicKeys(_)));
    let mut d = restart(d);
    assert_eq!(hello(&mut d, at(1)).state, LockState::DeviceSecretMissing);
    assert_eq!(d.secrets_held(), SecretsHeld::default());
    assert_eq!(err(unlock(&mut d, b"", at(1))), DongleError::DeviceSecretMissing);
}

/// Split custody without a staff PIN: opening records needs a paired host's share, so the
/// staff unlock is a real unlock and ends after the idle time like one made with a PIN (it
/// used to last until `Lock` or a restart, keys in memory and the light on). The unlock a
/// PIN-less dongle had before its first pairing ends the same way.
#[test]
fn split_custody_without_a_staff_pin_still_locks_when_idle() {
    let (mut d, pk) = initialised(None);
    let idle = cfg().idle_lock_ms;
    let host = [0x5c; 32];
    admin(&mut d, at(1));
    assert_eq!(pair(&mut d, &conn(1), host, at(1)), Response::Ok);
    assert!(hello(&mut d, at(1)).split_custody);
    let till = session(2, host);
    let batch = || Request::UnsealBatch { items: vec![item(&pk, "c", "v")] };
    d.tick(at(1 + idle));
    assert_eq!(hello(&mut d, at(1 + idle)).state, LockState::Locked);
    assert_eq!(
        err(ask_as(&mut d, &till, batch(), at(1 + idle), Press::NotAsked)),
        DongleError::Locked
    );
    // Unlocked with the host's share, it stays open while used, then locks.
    assert_eq!(unlock_from(&mut d, &till, b"", at(2 * idle)), Response::Ok);
    let opened = ask_as(&mut d, &till, batch(), at(3 * idle - 1), Press::NotAsked);
    assert!(matches!(opened, Response::Unsealed(_)), "{opened:?}");
    d.tick(at(4 * idle));
    assert_eq!(d.secrets_held(), SecretsHeld::default());
    assert_eq!(
        err(ask_as(&mut d, &till, batch(), at(4 * idle), Press::NotAsked)),
        DongleError::Locked
    );
    assert!(audit_lines(&mut d).iter().any(|l| l.contains(" idle-lock ")));
}

/// The card moved to another Pi (another serial; a wrong OTP secret read at boot is the same):
/// no slot opens there, so the right PINs the admin tries come back "wrong", each counted on
/// the card, until both credentials are locked out and only a reset (keys lost) is left when
/// the card is back in its own board. The device key, sealed to the board alone and opened
/// without a PIN, shows the board is wrong before any PIN is counted.
#[test]
fn on_another_board_no_pin_try_is_counted() {
    let (d, _) = initialised(Some(PIN));
    let other = Binding { serial: "00000000ffffffff".into(), device_secret: None };
    let mut d =
        Dongle::start(cfg(), d.into_storage(), TestPlatform::default(), other, at(1)).unwrap();
    assert_eq!(d.device_secret(), None, "the device key does not open on this board");
    assert_eq!(err(ask(&mut d, Request::DeviceKey, at(1))), DongleError::DeviceSecretMissing);
    for _ in 0..8 {
        assert_eq!(err(unlock(&mut d, PIN, at(2))), DongleError::DeviceSecretMissing);
        let auth = Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: None };
        assert_eq!(err(ask(&mut d, auth, at(2))), DongleError::DeviceSecretMissing);
    }
    let reset = pressed(&mut d, Request::FactoryReset, at(2));
    assert_eq!(err(reset), DongleError::DeviceSecretMissing, "the keys are not lost to a move");
    let h = hello(&mut d, at(2));
    assert_eq!(
        (h.state, h.pin_tries_left, h.admin_tries_left),
        (LockState::DeviceSecretMissing, 8, 8)
    );
    // Back in its own board: both PINs still work.
    let mut d = start(d.into_storage());
    assert_eq!(unlock(&mut d, PIN, at(3)), Response::Ok);
    admin(&mut d, at(3));
}
