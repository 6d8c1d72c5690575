//! The custody policy tried as an attacker would: a property test over `Dongle::handle` with
//! several hosts, restarts and clock ticks. The attackers know the staff PIN (they are a
//! compromised workstation, or anyone who watched staff type it) and guess admin PINs; one
//! legitimate admin connection works alongside them. Whatever they send, in whatever order:
//!
//! - no answer to an attacker carries key material (shares, clone blobs, key bytes);
//! - without a press of the button, nothing they send changes the keys, the credentials or
//!   the pairings; with one, the only change possible is a factory reset of a dongle whose
//!   admin credential they locked out (destruction, never disclosure);
//! - wrong admin PINs are never forgiven without the right admin PIN;
//! - after the idle times with no key use, the dongle is locked and the admin window shut;
//! - the admin's window never serves another connection.

use proptest::prelude::*;
use vbzkey_firmware::dongle::{Config, Dongle, Now, Outcome, Peer, Platform, Press, RngFailed};
use vbzkey_firmware::keystore::{Binding, Credential, Halves, KdfParams, KeyStore};
use vbzkey_firmware::storage::{File, MemStorage, Storage};
use vbzkey_protocol::wire::{
    LockState, PairingInfo, Pin, Request, Response, SealedItem, UnlockSecret,
};
use vbzkey_protocol::{PublicKey, record};

struct OsRng;

impl Platform for OsRng {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }
    fn show(&mut self, _: bool) {}
}

const STAFF_PIN: &[u8] = b"135790";
const ADMIN_PIN: &[u8] = b"admin-2468-real";
const ADMIN_PEER: u64 = 100;

fn cfg() -> Config {
    Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() }
}

fn binding() -> Binding {
    Binding { serial: "PROP0001".into(), device_secret: None }
}

fn peer(id: u64) -> Peer {
    Peer { id, label: format!("p{id}"), session: None, network: false }
}

/// The staff workstation's bridge host key: the attackers hold it (a compromised, paired
/// workstation), so their sessions are served once it is paired.
const STAFF_HOST: [u8; 32] = [0x57; 32];

fn attacker(id: u64) -> Peer {
    Peer { session: Some(STAFF_HOST), ..peer(id) }
}

/// A host nobody paired.
const STRANGER: [u8; 32] = [0x99; 32];

/// The unlock secret host `key` holds (any 32 bytes of its own do for the core).
fn secret_for(key: &[u8; 32]) -> UnlockSecret {
    let mut s = *key;
    s[31] ^= 0x3c;
    UnlockSecret(zeroize::Zeroizing::new(s))
}

/// What an attacker can put in a request: the staff PIN, guesses, real records, own keys.
#[derive(Debug, Clone)]
enum Attack {
    Hello,
    DeviceKey,
    Unlock {
        right: bool,
    },
    /// The right staff PIN, from a host that is not paired (a stolen dongle plugged in
    /// elsewhere, with the PIN watched over a shoulder).
    UnlockFromStranger,
    Lock,
    EndAdmin,
    AdminGuess(u8),
    Init,
    Unseal,
    Rewrap,
    Rotate,
    Retire,
    Backup,
    Restore,
    CloneBegin,
    CloneExport,
    CloneImport,
    Pair,
    Unpair,
    SetStaffPin {
        remove: bool,
    },
    ChangeAdminPin,
    FactoryReset,
    AuditTail,
    PublicKeys,
    Pairings,
}

#[derive(Debug, Clone)]
enum Op {
    Attacker {
        peer: u64,
        attack: Attack,
        press: u8,
    },
    AdminAuth,
    AdminRotate,
    AdminPair,
    AdminEnd,
    Disconnect(u64),
    Tick(u64),
    IdleCheck,
    Restart,
    /// Someone with the SD card adds the stranger to the pairings file (it has a checksum, not
    /// a MAC) and puts the card back: the stranger then gets a session, but no share.
    CardAddsStranger,
}

fn attack() -> impl Strategy<Value = Attack> {
    // Weighted toward what would hurt: export, custody changes, and the staff unlock that
    // precedes them in a real attack.
    prop_oneof![
        1 => Just(Attack::Hello),
        1 => Just(Attack::DeviceKey),
        4 => any::<bool>().prop_map(|right| Attack::Unlock { right }),
        2 => Just(Attack::UnlockFromStranger),
        1 => Just(Attack::Lock),
        1 => Just(Attack::EndAdmin),
        2 => any::<u8>().prop_map(Attack::AdminGuess),
        1 => Just(Attack::Init),
        2 => Just(Attack::Unseal),
        3 => Just(Attack::Rewrap),
        3 => Just(Attack::Rotate),
        3 => Just(Attack::Retire),
        4 => Just(Attack::Backup),
        1 => Just(Attack::Restore),
        1 => Just(Attack::CloneBegin),
        4 => Just(Attack::CloneExport),
        1 => Just(Attack::CloneImport),
        3 => Just(Attack::Pair),
        3 => Just(Attack::Unpair),
        3 => any::<bool>().prop_map(|remove| Attack::SetStaffPin { remove }),
        3 => Just(Attack::ChangeAdminPin),
        3 => Just(Attack::FactoryReset),
        1 => Just(Attack::AuditTail),
        1 => Just(Attack::PublicKeys),
        1 => Just(Attack::Pairings),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (1u64..4, attack(), 0u8..4).prop_map(|(peer, attack, press)| Op::Attacker { peer, attack, press }),
        4 => Just(Op::AdminAuth),
        1 => Just(Op::AdminRotate),
        1 => Just(Op::AdminPair),
        1 => Just(Op::AdminEnd),
        1 => (1u64..4).prop_map(Op::Disconnect),
        2 => (0u64..400_000).prop_map(Op::Tick),
        1 => Just(Op::IdleCheck),
        1 => Just(Op::Restart),
        1 => Just(Op::CardAddsStranger),
    ]
}

/// The custody-relevant state an attacker must not change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Custody {
    key_store: Option<Vec<u8>>,
    pairings: Option<Vec<u8>>,
}

struct World {
    d: Option<Dongle<MemStorage, OsRng>>,
    now: u64,
    pk: PublicKey,
    items: Vec<SealedItem>,
    attacker_host: [u8; 32],
    admin_host: [u8; 32],
}

impl World {
    fn new() -> Self {
        let mut d = Dongle::start(cfg(), MemStorage::default(), OsRng, binding(), at(0)).unwrap();
        let init = Request::Init { pin: Some(Pin::new(STAFF_PIN)), admin_pin: Pin::new(ADMIN_PIN) };
        let pk = match answer(&mut d, init, 0, &peer(ADMIN_PEER), Press::NotAsked) {
            Response::PublicKeys(k) => PublicKey::from_bytes(k[0].public_key),
            other => panic!("{other:?}"),
        };
        let items = (0..3)
            .map(|i| {
                let ctx = format!("cust_cards/{i}/card_number");
                SealedItem {
                    record: record::seal(&pk, ctx.as_bytes(), b"4111111111111111").unwrap(),
                    context: ctx.into_bytes(),
                }
            })
            .collect();
        World { d: Some(d), now: 0, pk, items, attacker_host: [0xa7; 32], admin_host: [0xad; 32] }
    }

    fn dongle(&mut self) -> &mut Dongle<MemStorage, OsRng> {
        self.d.as_mut().unwrap()
    }

    fn restart(&mut self) {
        let s = self.d.take().unwrap().into_storage();
        self.d = Some(Dongle::start(cfg(), s, OsRng, binding(), at(self.now)).unwrap());
    }

    fn custody(&mut self) -> Custody {
        let s = self.dongle().storage();
        Custody {
            key_store: s.load(File::KeyStore).unwrap(),
            pairings: s.load(File::Pairings).unwrap(),
        }
    }

    fn hello(&mut self, id: u64) -> vbzkey_protocol::wire::HelloInfo {
        let now = self.now;
        match answer(self.dongle(), Request::Hello, now, &peer(id), Press::NotAsked) {
            Response::Hello(h) => h,
            other => panic!("{other:?}"),
        }
    }

    /// The admin's connection: always in a session (an admin window opens in no other), of
    /// the admin's host, which is paired once hosts are.
    fn admin_peer(&mut self) -> Peer {
        Peer { session: Some(self.admin_host), ..peer(ADMIN_PEER) }
    }

    /// Every private key the dongle holds, read the way only the admin can.
    fn secret_keys(&mut self) -> Vec<[u8; 32]> {
        let s = self.dongle().storage();
        let Some(bytes) = s.load(File::KeyStore).unwrap() else { return Vec::new() };
        let store = KeyStore::parse(&bytes).unwrap();
        let b = binding();
        let device = store.device_half(Credential::Admin, &b, ADMIN_PIN).unwrap();
        let admin_host = (&self.admin_host, &secret_for(&self.admin_host).0);
        let staff_host = (&STAFF_HOST, &secret_for(&STAFF_HOST).0);
        let host = store
            .host_half(&b, Some(admin_host))
            .or_else(|_| store.host_half(&b, Some(staff_host)))
            .unwrap();
        let mk = Halves::new(device, host).master_key();
        store.open(&mk).unwrap().keys.iter().map(|(_, k)| *k.to_bytes()).collect()
    }

    fn request(&self, a: &Attack) -> Request {
        let own = *self.pk.as_bytes();
        match a {
            Attack::Hello => Request::Hello,
            Attack::DeviceKey => Request::DeviceKey,
            Attack::Unlock { right } => Request::Unlock {
                pin: Pin::new(if *right { STAFF_PIN } else { b"000000" }),
                unlock_secret: Some(secret_for(&STAFF_HOST)),
            },
            Attack::UnlockFromStranger => Request::Unlock {
                pin: Pin::new(STAFF_PIN),
                unlock_secret: Some(secret_for(&STRANGER)),
            },
            Attack::Lock => Request::Lock,
            Attack::EndAdmin => Request::EndAdmin,
            Attack::AdminGuess(g) => {
                // Guesses include the staff PIN itself and near misses of the admin PIN.
                let pin = match g % 3 {
                    0 => STAFF_PIN.to_vec(),
                    1 => format!("admin-2468-rea{}", g % 10).into_bytes(),
                    _ => format!("guess-{g:08}").into_bytes(),
                };
                Request::AdminAuth {
                    admin_pin: Pin::new(&pin),
                    unlock_secret: Some(secret_for(&STAFF_HOST)),
                }
            }
            Attack::Init => Request::Init { pin: None, admin_pin: Pin::new(b"attacker-admin") },
            Attack::Unseal => Request::UnsealBatch { items: self.items.clone() },
            Attack::Rewrap => Request::Rewrap { items: self.items.clone(), new_public_key: own },
            Attack::Rotate => Request::Rotate,
            Attack::Retire => Request::Retire { key_id: self.pk.key_id() },
            Attack::Backup => Request::Backup { threshold: 2, count: 2 },
            Attack::Restore => Request::Restore {
                shares: (1..=2)
                    .map(|i| {
                        let data = zeroize::Zeroizing::new(vec![i; 40]);
                        vbzkey_protocol::share::Share::checked([1; 4], 2, 2, i, data).unwrap()
                    })
                    .collect(),
                pin: None,
                admin_pin: Pin::new(b"attacker-admin"),
            },
            Attack::CloneBegin => Request::CloneBegin,
            Attack::CloneExport => Request::CloneExport { to: [0x42; 32] },
            Attack::CloneImport => Request::CloneImport {
                blob: vec![1, 2, 3],
                pin: None,
                admin_pin: Pin::new(b"attacker-admin"),
            },
            Attack::Pair => Request::Pair {
                host_key: self.attacker_host,
                label: "evil".into(),
                unlock_secret: secret_for(&self.attacker_host),
            },
            Attack::Unpair => Request::Unpair { host_key: self.admin_host },
            Attack::SetStaffPin { remove } => {
                Request::SetStaffPin { new: (!remove).then(|| Pin::new(b"attacker-pin")) }
            }
            Attack::ChangeAdminPin => Request::ChangeAdminPin { new: Pin::new(b"attacker-admin") },
            Attack::FactoryReset => Request::FactoryReset,
            Attack::AuditTail => Request::AuditTail { max: 10 },
            Attack::PublicKeys => Request::PublicKeys,
            Attack::Pairings => Request::Pairings,
        }
    }
}

fn at(ms: u64) -> Now {
    Now { mono_ms: ms, unix_secs: 1_700_000_000 + ms / 1000 }
}

fn answer(
    d: &mut Dongle<MemStorage, OsRng>,
    req: Request,
    now: u64,
    p: &Peer,
    press: Press,
) -> Response {
    match d.handle(req, at(now), p, press) {
        Outcome::Answer(r) => r,
        Outcome::NeedsPresence => Response::PresenceNeeded { timeout_secs: 0 },
    }
}

fn contains(haystack: &[u8], needle: &[u8; 32]) -> bool {
    haystack.windows(32).any(|w| w == needle)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut w = World::new();
    for op in ops {
        if w.hello(1).state == LockState::Uninitialised {
            // Only a pressed reset of an admin-locked-out dongle gets here: the keys are
            // destroyed, not disclosed, and the dongle is a blank one from now on.
            break;
        }
        match op {
            Op::Attacker { peer: id, attack, press } => {
                // The worst case is the common one: someone presses whenever asked.
                let press = [Press::NotAsked, Press::NotPressed, Press::Pressed, Press::Pressed]
                    [usize::from(press)];
                let keys = w.secret_keys();
                let before = w.custody();
                let admin_before = cfg().max_admin_tries - w.hello(id).admin_tries_left;
                let locked_out_before = w.hello(id).admin_tries_left == 0;
                let req = w.request(&attack);
                let now = w.now;
                // Split custody: a host was paired through the admin, not just listed on the card.
                let paired = w.hello(id).split_custody;
                let p = match attack {
                    Attack::UnlockFromStranger => Peer { session: Some(STRANGER), ..peer(id) },
                    _ => attacker(id),
                };
                let resp = answer(w.dongle(), req, now, &p, press);
                prop_assert!(
                    !matches!(
                        resp,
                        Response::Shares(_) | Response::CloneBlob(_) | Response::Rewrapped(_)
                    ),
                    "{attack:?} from an attacker answered {resp:?}"
                );
                let bytes = postcard::to_allocvec(&resp).unwrap();
                for k in &keys {
                    prop_assert!(!contains(&bytes, k), "{attack:?}: a private key in the answer");
                }
                if matches!(attack, Attack::UnlockFromStranger) && paired {
                    prop_assert!(
                        resp != Response::Ok,
                        "a host without a share unlocked with the PIN"
                    );
                }
                if matches!(attack, Attack::Lock) && resp == Response::Ok {
                    prop_assert!(!w.dongle().secrets_held().staff_unlock, "keys kept after Lock");
                }
                let after = w.custody();
                let reset_of_locked_out = press == Press::Pressed
                    && locked_out_before
                    && matches!(attack, Attack::FactoryReset)
                    && after.key_store.is_none();
                if !reset_of_locked_out {
                    prop_assert_eq!(&before, &after, "{:?} changed custody state", attack);
                }
                let admin_after = cfg().max_admin_tries - w.hello(id).admin_tries_left;
                if !reset_of_locked_out {
                    prop_assert!(
                        admin_after >= admin_before,
                        "admin failures forgiven by {:?}",
                        attack
                    );
                }
            }
            Op::AdminAuth => {
                let now = w.now;
                let p = w.admin_peer();
                let unlock_secret = p.session.as_ref().map(secret_for);
                let auth = Request::AdminAuth { admin_pin: Pin::new(ADMIN_PIN), unlock_secret };
                let _ = answer(w.dongle(), auth, now, &p, Press::NotAsked);
            }
            Op::AdminRotate => {
                let now = w.now;
                let p = w.admin_peer();
                let _ = answer(w.dongle(), Request::Rotate, now, &p, Press::NotAsked);
            }
            Op::AdminPair => {
                // The admin pairs its own host and the staff workstation.
                let now = w.now;
                let host = w.admin_host;
                for (host_key, label) in [(host, "admin"), (STAFF_HOST, "till")] {
                    let p = w.admin_peer();
                    let pair = Request::Pair {
                        host_key,
                        label: label.into(),
                        unlock_secret: secret_for(&host_key),
                    };
                    let _ = answer(w.dongle(), pair, now, &p, Press::Pressed);
                }
            }
            Op::AdminEnd => {
                let now = w.now;
                let p = w.admin_peer();
                let _ = answer(w.dongle(), Request::EndAdmin, now, &p, Press::NotAsked);
            }
            Op::Disconnect(id) => {
                let now = at(w.now);
                w.dongle().disconnect(id, now);
            }
            Op::Tick(ms) => {
                w.now += ms;
                let now = at(w.now);
                w.dongle().tick(now);
            }
            Op::IdleCheck => {
                // The idle time passes with only status reads (a page polling /v1/status,
                // an admin tool's `info`): they are not key use.
                let c = cfg();
                let end = w.now + c.idle_lock_ms.max(c.admin_idle_ms);
                while w.now < end {
                    w.now = (w.now + 30_000).min(end);
                    let now = w.now;
                    for req in [Request::Hello, Request::PublicKeys, Request::AuditTail { max: 1 }]
                    {
                        let _ = answer(w.dongle(), req, now, &attacker(2), Press::NotAsked);
                    }
                }
                let h = w.hello(2);
                prop_assert!(h.state != LockState::Unlocked, "unlocked after the idle time");
                let admin = w.admin_peer();
                let h = w.hello(admin.id);
                prop_assert!(!h.admin_window, "admin window open after its idle time");
                prop_assert_eq!(
                    w.dongle().secrets_held(),
                    vbzkey_firmware::dongle::SecretsHeld::default(),
                    "a key, half or master key is still in memory after the idle time"
                );
            }
            Op::Restart => w.restart(),
            Op::CardAddsStranger => {
                let mut s = w.d.take().unwrap().into_storage();
                let mut hosts = vbzkey_firmware::pairing::load(&s).unwrap().unwrap_or_default();
                hosts.push(PairingInfo { host_key: STRANGER, label: "card".into(), paired_at: 0 });
                vbzkey_firmware::pairing::store(&mut s, &hosts).unwrap();
                w.d = Some(Dongle::start(cfg(), s, OsRng, binding(), at(w.now)).unwrap());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn hosts_that_know_only_the_staff_pin_get_no_key_material_and_change_no_custody(
        ops in prop::collection::vec(op(), 1..60)
    ) {
        run(ops)?;
    }
}

/// The worst case spelled out: 7 wrong admin PINs, a right staff PIN, and again; the admin
/// counter is not reset by the staff PIN (it was, before protocol version 2).
#[test]
fn a_right_staff_pin_never_buys_more_admin_guesses() {
    let mut w = World::new();
    let p = attacker(1);
    for round in 0..2 {
        for _ in 0..4 {
            let r = answer(
                w.dongle(),
                Request::AdminAuth { admin_pin: Pin::new(b"guess-0000"), unlock_secret: None },
                0,
                &p,
                Press::NotAsked,
            );
            assert!(matches!(r, Response::Error(_)), "round {round}: {r:?}");
        }
        let r = answer(
            w.dongle(),
            Request::Unlock { pin: Pin::new(STAFF_PIN), unlock_secret: None },
            0,
            &p,
            Press::NotAsked,
        );
        assert_eq!(r, Response::Ok);
    }
    assert_eq!(w.hello(1).admin_tries_left, 0);
    let r = answer(
        w.dongle(),
        Request::AdminAuth { admin_pin: Pin::new(ADMIN_PIN), unlock_secret: None },
        0,
        &p,
        Press::NotAsked,
    );
    assert_eq!(r, Response::Error(vbzkey_protocol::wire::DongleError::AdminLockedOut));
}
