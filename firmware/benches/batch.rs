//! Benchmark: one `UnsealBatch` of 256 records through the firmware core (`Dongle::handle`:
//! policy checks, the opens, the audit line), opened on one thread and on two, measured in
//! one run so the ratio does not depend on the machine.
//!
//! `cargo bench -p vbzkey-firmware --bench batch` (add `-- --json` for one JSON line; add
//! `-- --threads N` to compare 1 with N).
//!
//! Each of 15 rounds (after 2 warm-up rounds) times the batch with 1 thread, then with N,
//! back to back; the figure per setting is the median over rounds. Goal
//! (docs/PERFORMANCE.md): speed-up >= 1.8 for N = 2 on a 2-core machine that is otherwise
//! idle. The speed-up can only be measured on cores this process gets: on a loaded machine
//! it reports what the other load leaves.

use std::hint::black_box;
use std::time::Instant;

use vbzkey_firmware::dongle::{Config, Dongle, Now, Outcome, Peer, Platform, Press, RngFailed};
use vbzkey_firmware::keystore::{Binding, KdfParams};
use vbzkey_firmware::storage::MemStorage;
use vbzkey_protocol::wire::{MAX_BATCH, Pin, Request, Response, SealedItem};
use vbzkey_protocol::{PublicKey, record};

const ROUNDS: usize = 15;
const WARM_UP: usize = 2;

struct BenchPlatform;

impl Platform for BenchPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }
    fn show(&mut self, _unlocked: bool) {}
}

const NOW: Now = Now { mono_ms: 1000, unix_secs: 1_800_000_000 };

fn ask(d: &mut Dongle<MemStorage, BenchPlatform>, req: Request) -> Response {
    let peer = Peer { id: 1, label: "bench".into(), session: None, network: false };
    match d.handle(req, NOW, &peer, Press::NotAsked) {
        Outcome::Answer(r) => r,
        Outcome::NeedsPresence => panic!("the bench's requests need no button"),
    }
}

fn dongle(threads: usize) -> (Dongle<MemStorage, BenchPlatform>, PublicKey) {
    let config = Config {
        kdf: KdfParams::TEST_ONLY_WEAK,
        records_per_minute: u32::MAX,
        burst: u32::MAX,
        log_lines_per_minute: u32::MAX,
        open_threads: threads,
        ..Config::default()
    };
    let binding = Binding { serial: "bench".into(), device_secret: None };
    let mut d = Dongle::start(config, MemStorage::default(), BenchPlatform, binding, NOW).unwrap();
    let init =
        Request::Init { pin: Some(Pin::new(b"123456")), admin_pin: Pin::new(b"bench-admin") };
    let pk = match ask(&mut d, init) {
        Response::PublicKeys(keys) => PublicKey::from_bytes(keys[0].public_key),
        other => panic!("init: {other:?}"),
    };
    let unlock = Request::Unlock { pin: Pin::new(b"123456"), unlock_secret: None };
    assert!(matches!(ask(&mut d, unlock), Response::Ok));
    (d, pk)
}

fn time_batch(d: &mut Dongle<MemStorage, BenchPlatform>, items: &[SealedItem]) -> f64 {
    let req = Request::UnsealBatch { items: items.to_vec() };
    let start = Instant::now();
    let resp = ask(d, black_box(req));
    let elapsed = start.elapsed().as_secs_f64();
    match resp {
        Response::Unsealed(r) => assert!(r.iter().all(Result::is_ok) && r.len() == items.len()),
        other => panic!("unseal: {other:?}"),
    }
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let threads: usize = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    // Two dongles with the same key would need a key import; instead each seals its own
    // batch of the same sizes and contexts.
    let (mut one, pk1) = dongle(1);
    let (mut many, pk_n) = dongle(threads);
    let batch = |pk: &PublicKey| -> Vec<SealedItem> {
        (0..MAX_BATCH)
            .map(|i| {
                let context = format!("cust_cards/{i}/card_number").into_bytes();
                let record = record::seal(pk, &context, b"4111111111111111").unwrap();
                SealedItem { record, context }
            })
            .collect()
    };
    let (items1, items_n) = (batch(&pk1), batch(&pk_n));
    let (mut t1, mut tn) = (vec![], vec![]);
    for round in 0..WARM_UP + ROUNDS {
        let a = time_batch(&mut one, &items1);
        let b = time_batch(&mut many, &items_n);
        if round >= WARM_UP {
            t1.push(a);
            tn.push(b);
        }
    }
    let (t1, tn) = (median(t1), median(tn));
    let speedup = t1 / tn;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if json {
        println!(
            "{{\"records\":{MAX_BATCH},\"threads\":{threads},\"cores\":{cores},\"ms_1\":{:.3},\"ms_n\":{:.3},\"speedup\":{speedup:.3}}}",
            t1 * 1e3,
            tn * 1e3
        );
    } else {
        println!(
            "batch of {MAX_BATCH} records through the firmware core ({cores} cores available)"
        );
        println!("  1 thread : {:8.2} ms  ({:.0} records/s)", t1 * 1e3, MAX_BATCH as f64 / t1);
        println!(
            "  {threads} threads: {:8.2} ms  ({:.0} records/s)",
            tn * 1e3,
            MAX_BATCH as f64 / tn
        );
        println!("  speed-up : {speedup:.3} (goal >= 1.8 with 2 threads on 2 idle cores)");
    }
}
