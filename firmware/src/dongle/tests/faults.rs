//! Storage fault injection through a whole life of the dongle: every write operation of the
//! scenario (device key, key store, PIN counters, pairings, audit log) fails in turn, in every
//! way a card fails (`Fault::ALL`), and after each run the card is checked: no key is lost,
//! no PIN guess was compared without being counted, no change on the card and no answer
//! went unlogged, and the dongle works again once the fault is gone.

use super::*;
use crate::keystore::Credential;
use crate::pin_counter::Counters;

const HOST: [u8; 32] = [0x42; 32];
const NEW_PIN: &[u8] = b"654321";

type Faulty = Dongle<FaultyStorage<MemStorage>, TestPlatform>;

/// One step of the scenario, as the paired host's session asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Init,
    Unlock,
    Unseal,
    WrongPin,
    AdminAuth,
    Pair,
    Rotate,
    SetStaffPin,
    Backup,
    Lock,
    UnlockNewPin,
    UnsealAgain,
}

const SCENARIO: [Step; 12] = [
    Step::Init,
    Step::Unlock,
    Step::Unseal,
    Step::WrongPin,
    Step::AdminAuth,
    Step::Pair,
    Step::Rotate,
    Step::SetStaffPin,
    Step::Backup,
    Step::Lock,
    Step::UnlockNewPin,
    Step::UnsealAgain,
];

fn peer() -> Peer {
    session(1, HOST)
}

fn run_step(d: &mut Faulty, step: Step, pk: Option<&PublicKey>, now: Now) -> Response {
    let secret = Some(secret_for(&HOST));
    let req = match step {
        Step::Init => init(Some(PIN), ADMIN),
        Step::Unlock => Request::Unlock { pin: Pin::new(PIN), unlock_secret: secret },
        Step::UnlockNewPin => Request::Unlock { pin: Pin::new(NEW_PIN), unlock_secret: secret },
        Step::WrongPin => Request::Unlock { pin: Pin::new(b"999999"), unlock_secret: secret },
        Step::Unseal | Step::UnsealAgain => match pk {
            Some(pk) => Request::UnsealBatch { items: vec![item(pk, "t/1/c", "4111")] },
            None => Request::Hello,
        },
        Step::AdminAuth => Request::AdminAuth { admin_pin: Pin::new(ADMIN), unlock_secret: secret },
        Step::Pair => {
            Request::Pair { host_key: HOST, label: "till".into(), unlock_secret: secret_for(&HOST) }
        }
        Step::Rotate => Request::Rotate,
        Step::SetStaffPin => Request::SetStaffPin { new: Some(Pin::new(NEW_PIN)) },
        Step::Backup => Request::Backup { threshold: 2, count: 3 },
        Step::Lock => Request::Lock,
    };
    ask_as(d, &peer(), req, now, Press::Pressed)
}

/// The audit events a successful answer to `step` must have left in the log.
fn logged_event(step: Step) -> Option<&'static str> {
    match step {
        Step::Init => Some("init"),
        Step::Unlock | Step::UnlockNewPin => Some("unlock"),
        Step::Unseal | Step::UnsealAgain => Some("unseal"),
        Step::WrongPin => Some("unlock-failed"),
        Step::AdminAuth => Some("admin-auth"),
        Step::Pair => Some("pair"),
        Step::Rotate => Some("rotate"),
        Step::SetStaffPin => Some("staff-pin-set"),
        Step::Backup => Some("backup"),
        Step::Lock => None,
    }
}

fn answered_ok(step: Step, r: &Response) -> bool {
    match (step, r) {
        (Step::WrongPin, Response::Error(DongleError::WrongPin { .. })) => true,
        (_, Response::Error(_)) => false,
        (Step::Unseal | Step::UnsealAgain, r) => {
            matches!(r, Response::Unsealed(items) if items[0].is_ok())
        }
        _ => true,
    }
}

fn staff_failures(card: &MemStorage) -> Option<u8> {
    let bytes = card.files.get(&File::PinCounter)?;
    Counters::decode(bytes).map(|c| c.get(Credential::Staff))
}

fn events(card: &MemStorage) -> Vec<String> {
    let text = String::from_utf8(card.files.get(&File::AuditLog).cloned().unwrap_or_default())
        .expect("the log is text");
    text.lines().filter_map(|l| l.split(' ').nth(3).map(str::to_string)).collect()
}

/// One run with `fault` at write operation `at` (or none); returns the card, the answers, and
/// the first public key.
fn run(fault: Option<(usize, Fault)>) -> (MemStorage, Vec<(Step, Response)>, Option<PublicKey>) {
    let mut storage = FaultyStorage::new(MemStorage::default());
    if let Some((at, f)) = fault {
        storage.fail_at(at, f);
    }
    let started = Dongle::start(cfg(), storage, TestPlatform::default(), binding(), at(0));
    let Ok(mut d) = started else {
        // The first write (the device key) failed: the dongle does not start, nothing is lost.
        return (MemStorage::default(), Vec::new(), None);
    };
    let mut pk = None;
    let mut answers = Vec::new();
    for (i, step) in SCENARIO.into_iter().enumerate() {
        let now = at(1000 * (i as u64 + 1));
        let failures_before = staff_failures(d.storage().inner());
        let r = run_step(&mut d, step, pk.as_ref(), now);
        if let (Step::Init, Response::PublicKeys(keys)) = (step, &r) {
            pk = Some(PublicKey::from_bytes(keys[0].public_key));
        }
        if let Response::Error(DongleError::WrongPin { .. }) = r {
            // No free guess: a compared PIN was counted on the card first.
            let after = staff_failures(d.storage().inner());
            assert_eq!(after, failures_before.map(|n| n + 1), "{step:?} under {fault:?}");
        }
        answers.push((step, r));
        // The fault has happened: the card works again (a read-only card, too).
        if fault.is_some_and(|(at, _)| d.storage().writes() > at) {
            let mut s = d.into_storage();
            s.clear();
            d = Dongle::start(cfg(), s, TestPlatform::default(), binding(), now)
                .expect("a restart after the fault");
        }
    }
    (d.into_storage().into_inner(), answers, pk)
}

/// After a run: restart from the card and check what must hold whatever failed.
fn check(card: MemStorage, answers: &[(Step, Response)], pk: Option<PublicKey>, what: &str) {
    let mut d = start(card);
    assert!(hello(&mut d, at(100_000)).audit_intact, "{what}: the chain stays intact");
    let card = d.storage().clone();
    let logged = events(&card);
    // Every answer the host saw as done is in the log (a failed change may be there too,
    // with its failure line).
    for (step, r) in answers {
        if let Some(event) = logged_event(*step).filter(|_| answered_ok(*step, r)) {
            assert!(logged.iter().any(|e| e == event), "{what}: {step:?} answered, not logged");
        }
    }
    if hello(&mut d, at(100_000)).state == LockState::Uninitialised {
        assert!(pk.is_none(), "{what}: the keys the host was given are gone");
        return;
    }
    // Initialised: the host may not know it (its answer failed), but the log does.
    assert!(logged.iter().any(|e| e == "init"), "{what}: an init went unlogged");
    // No change on the card went unlogged.
    let keys = match ask_as(&mut d, &peer(), Request::PublicKeys, at(100_001), Press::NotAsked) {
        Response::PublicKeys(k) => k,
        other => panic!("{what}: {other:?}"),
    };
    if keys.len() > 1 {
        assert!(logged.iter().any(|e| e == "rotate"), "{what}: a rotation went unlogged");
    }
    if matches!(ask_as(&mut d, &peer(), Request::Pairings, at(100_001), Press::NotAsked),
        Response::Pairings(p) if !p.is_empty())
    {
        assert!(logged.iter().any(|e| e == "pair"), "{what}: a pairing went unlogged");
    }
    // No key lost: with one of the two PINs, from the host, every key still opens.
    let unlocked = [PIN, NEW_PIN].into_iter().find(|p| {
        let r = unlock_from(&mut d, &peer(), p, at(100_002));
        r == Response::Ok
    });
    let pin = unlocked.unwrap_or_else(|| panic!("{what}: neither PIN unlocks: keys lost"));
    if pin == NEW_PIN {
        assert!(logged.iter().any(|e| e == "staff-pin-set"), "{what}: a PIN change unlogged");
    }
    let mut items: Vec<SealedItem> = pk.iter().map(|pk| item(pk, "t/9/c", "kept")).collect();
    items.extend(keys.iter().map(|k| item(&PublicKey::from_bytes(k.public_key), "t/8/c", "kept")));
    match ask_as(&mut d, &peer(), Request::UnsealBatch { items }, at(100_003), Press::NotAsked) {
        Response::Unsealed(r) => assert!(r.iter().all(Result::is_ok), "{what}: a key was lost"),
        other => panic!("{what}: {other:?}"),
    }
}

#[test]
fn every_write_of_a_dongles_life_fails_in_every_way_and_nothing_is_lost_or_unlogged() {
    let (card, answers, pk) = run(None);
    assert!(answers.iter().all(|(s, r)| answered_ok(*s, r)), "{answers:?}");
    check(card, &answers, pk, "no fault");
    let writes = {
        let mut storage = FaultyStorage::new(MemStorage::default());
        storage.fail_at(usize::MAX - 1, Fault::NoSpace);
        let mut d =
            Dongle::start(cfg(), storage, TestPlatform::default(), binding(), at(0)).unwrap();
        let mut pk = None;
        for (i, step) in SCENARIO.into_iter().enumerate() {
            if let Response::PublicKeys(k) =
                run_step(&mut d, step, pk.as_ref(), at(1000 * i as u64 + 1000))
            {
                pk.get_or_insert(PublicKey::from_bytes(k[0].public_key));
            }
        }
        d.storage().writes()
    };
    assert!(writes > 20, "the scenario writes {writes} times");
    for at in 0..writes {
        for fault in Fault::ALL {
            let (card, answers, pk) = run(Some((at, fault)));
            check(card, &answers, pk, &format!("{fault:?} at write {at}"));
        }
    }
}

/// With the log failing, a right PIN and a wrong one look alike: both counted, neither reset,
/// the same error. A right guess is never learnt without its line.
#[test]
fn a_right_pin_whose_line_cannot_be_written_looks_like_a_wrong_one() {
    for who in [Credential::Staff, Credential::Admin] {
        let (d, _) = initialised(Some(PIN));
        let mut storage = FaultyStorage::new(d.into_storage());
        storage.fail_writes_to(File::AuditLog, Fault::NoSpace);
        let mut d = start_with(storage, cfg(), TestPlatform::default());
        let ask_with = |d: &mut Faulty, right: bool| {
            let secret = if right {
                if who == Credential::Staff { PIN } else { ADMIN }
            } else {
                b"99999999"
            };
            let req = match who {
                Credential::Staff => Request::Unlock { pin: Pin::new(secret), unlock_secret: None },
                Credential::Admin => {
                    Request::AdminAuth { admin_pin: Pin::new(secret), unlock_secret: None }
                }
            };
            ask(d, req, at(1))
        };
        let tries = |d: &mut Faulty| {
            let h = hello(d, at(1));
            (h.pin_tries_left, h.admin_tries_left)
        };
        let before = tries(&mut d);
        let right = ask_with(&mut d, true);
        let after_right = tries(&mut d);
        let wrong = ask_with(&mut d, false);
        let after_wrong = tries(&mut d);
        assert_eq!(right, wrong, "{who:?}");
        assert_eq!(right, Response::Error(DongleError::Storage), "{who:?}");
        let one_less = |t: (u8, u8), n| match who {
            Credential::Staff => (t.0 - n, t.1),
            Credential::Admin => (t.0, t.1 - n),
        };
        assert_eq!((after_right, after_wrong), (one_less(before, 1), one_less(before, 2)));
        let held = d.secrets_held();
        assert!(!held.staff_unlock && !held.admin_window, "{who:?}: nothing opened unlogged");
    }
}
