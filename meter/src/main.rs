//! `vbzkey-meter OP N`: set up OP, run it once to warm up, then N more times, and exit.
//!
//! `scripts/meter` runs this under an instruction counter (qemu's TCG plugin for the Pi's
//! CPUs, callgrind on x86) with N = 0 and N = k: the difference divided by k is the cost of
//! one operation, free of the setup, the warm-up and the process start. Every iteration checks
//! its result, so the optimiser cannot drop the work and a wrong answer fails the meter.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::process::ExitCode;

use vbzkey_firmware::dongle::{Config, Dongle, Now, Outcome, Peer, Platform, Press, RngFailed};
use vbzkey_firmware::keystore::{self, Binding, KdfParams};
use vbzkey_firmware::storage::MemStorage;
use vbzkey_protocol::wire::{Pin, Request, Response, SealedItem};
use vbzkey_protocol::{PublicKey, SecretKey, record};

const USAGE: &str = "usage: vbzkey-meter OP N\n  OP: x25519 | x25519-dalek | x25519-varied | x25519-base | x25519-base-dalek | open | seal | batch100 | batch100-4threads | argon2id\n  N: iterations after one warm-up";

/// A 32-byte value, the size of a card number record's plaintext and then some.
const VALUE: &[u8] = b"4111111111111111 / 12-29 / Jane ";
const CONTEXT: &[u8] = b"cust_cards/1001/card_number";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (op, n) = match args.as_slice() {
        [op, n] => match n.parse::<u32>() {
            Ok(n) => (op.as_str(), n),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let mut run: Box<dyn FnMut()> = match op {
        "x25519" => x25519(),
        "x25519-dalek" => x25519_dalek_op(),
        "x25519-varied" => x25519_varied(),
        "x25519-base" => x25519_base(),
        "x25519-base-dalek" => x25519_base_dalek(),
        "open" => open(),
        "seal" => seal(),
        "batch100" => batch(100, 1),
        "batch100-4threads" => batch(100, 4),
        "argon2id" => argon2id(),
        _ => return usage(),
    };
    for _ in 0..=n {
        run();
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn recipient() -> SecretKey {
    SecretKey::derive(b"vbzkey meter recipient key seed, 32+ bytes")
}

/// The variable-base X25519 every record open costs, through the project's own entry point.
fn x25519() -> Box<dyn FnMut()> {
    let peer = *recipient().public_key().as_bytes();
    let want = x25519_dalek::x25519([7u8; 32], peer);
    Box::new(move || {
        let out = vbzkey_x25519::x25519(black_box(&[7u8; 32]), black_box(&peer));
        assert_eq!(out, want);
    })
}

/// The same through x25519-dalek's portable field arithmetic (the "before" figure).
fn x25519_dalek_op() -> Box<dyn FnMut()> {
    let peer = *recipient().public_key().as_bytes();
    let want = vbzkey_x25519::x25519(&[7u8; 32], &peer);
    Box::new(move || {
        let out = x25519_dalek::x25519(black_box([7u8; 32]), black_box(peer));
        assert_eq!(out, want);
    })
}

/// X25519 on a new pseudo-random scalar and point at every iteration: `scripts/meter --check`
/// requires every iteration to cost the same number of instructions (no input-dependent
/// branch in the ladder or the field arithmetic).
fn x25519_varied() -> Box<dyn FnMut()> {
    let mut state = 0x7662_7a6b_6579_u64;
    let mut next = move || {
        let mut out = [0u8; 32];
        for c in out.chunks_exact_mut(8) {
            // splitmix64: cheap, and the same cost for every output.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            c.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out
    };
    Box::new(move || {
        let (k, u) = (next(), next());
        black_box(vbzkey_x25519::x25519(black_box(&k), black_box(&u)));
    })
}

/// The fixed-base multiplication that makes a seal's ephemeral public key.
fn x25519_base() -> Box<dyn FnMut()> {
    let want = x25519_dalek::x25519([7u8; 32], x25519_dalek::X25519_BASEPOINT_BYTES);
    Box::new(move || {
        assert_eq!(vbzkey_x25519::x25519_base(black_box(&[7u8; 32])), want);
    })
}

/// The same through x25519-dalek's fixed-base code (Edwards, precomputed tables).
fn x25519_base_dalek() -> Box<dyn FnMut()> {
    let want = vbzkey_x25519::x25519_base(&[7u8; 32]);
    let secret = x25519_dalek::StaticSecret::from([7u8; 32]);
    Box::new(move || {
        assert_eq!(x25519_dalek::PublicKey::from(black_box(&secret)).to_bytes(), want);
    })
}

fn open() -> Box<dyn FnMut()> {
    let key = recipient();
    let rec = record::seal(key.public_key(), CONTEXT, VALUE).expect("seal");
    Box::new(move || {
        let pt = record::open(black_box(&key), CONTEXT, black_box(&rec)).expect("open");
        assert_eq!(&pt[..], VALUE);
    })
}

fn seal() -> Box<dyn FnMut()> {
    let pk = recipient().public_key().clone();
    Box::new(move || {
        let rec = record::seal(black_box(&pk), CONTEXT, black_box(VALUE)).expect("seal");
        assert_eq!(rec.len(), record::MIN_RECORD_LEN + VALUE.len());
    })
}

struct MeterPlatform;

impl Platform for MeterPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }
    fn show(&mut self, _unlocked: bool) {}
}

/// One `UnsealBatch` of `n` records through the firmware core (`Dongle::handle`): request
/// dispatch, policy checks, the opens on `threads` threads, the audit line (to memory). With
/// several threads the count is the total over all of them: the parallel path's overhead.
fn batch(n: usize, threads: usize) -> Box<dyn FnMut()> {
    let now = Now { mono_ms: 1000, unix_secs: 1_800_000_000 };
    let config = Config {
        kdf: KdfParams::TEST_ONLY_WEAK,
        records_per_minute: u32::MAX,
        burst: u32::MAX,
        log_lines_per_minute: u32::MAX,
        open_threads: threads,
        ..Config::default()
    };
    let binding = Binding { serial: "meter".into(), device_secret: None };
    let mut dongle =
        Dongle::start(config, MemStorage::default(), MeterPlatform, binding, now).expect("start");
    let peer = Peer { id: 1, label: "meter".into(), session: None, network: false };
    let ask = move |d: &mut Dongle<MemStorage, MeterPlatform>, req| match d.handle(
        req,
        now,
        &peer,
        Press::NotAsked,
    ) {
        Outcome::Answer(r) => r,
        Outcome::NeedsPresence => panic!("the meter's requests need no button"),
    };
    let init =
        Request::Init { pin: Some(Pin::new(b"123456")), admin_pin: Pin::new(b"meter-admin") };
    let pk = match ask(&mut dongle, init) {
        Response::PublicKeys(keys) => PublicKey::from_bytes(keys[0].public_key),
        other => panic!("init: {other:?}"),
    };
    let unlock = Request::Unlock { pin: Pin::new(b"123456"), unlock_secret: None };
    assert!(matches!(ask(&mut dongle, unlock), Response::Ok), "unlock");
    let items: Vec<SealedItem> = (0..n)
        .map(|i| {
            let context = format!("cust_cards/{i}/card_number").into_bytes();
            let record = record::seal(&pk, &context, VALUE).expect("seal");
            SealedItem { record, context }
        })
        .collect();
    Box::new(move || {
        let req = Request::UnsealBatch { items: items.clone() };
        match ask(&mut dongle, req) {
            Response::Unsealed(results) => {
                assert!(results.iter().all(|r| r.as_ref().is_ok_and(|p| &p.0[..] == VALUE)));
            }
            other => panic!("unseal: {other:?}"),
        }
    })
}

/// One key-store key derivation at the Pi Zero's Argon2id parameters (an unlock's cost).
fn argon2id() -> Box<dyn FnMut()> {
    Box::new(move || {
        let stretched = keystore::stretch(KdfParams::PI_ZERO, &[0; 16], b"123456");
        black_box(&stretched);
    })
}
