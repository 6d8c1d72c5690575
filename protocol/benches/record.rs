//! Benchmark: seal and open of a 32-byte value against the bare X25519 operations they are built on,
//! measured in one run so the ratios do not depend on the machine.
//!
//! `cargo bench -p vbzkey-protocol --bench record` (add `-- --json` for one JSON line).
//!
//! Each round times a batch of every operation back to back (interleaved, so frequency
//! scaling and noisy neighbours hit them alike); the figure per operation is the median over
//! rounds. Goals (docs/PERFORMANCE.md): open rate / DH rate >= 0.90, and seal rate /
//! (DH + basepoint) rate likewise.

use std::hint::black_box;
use std::time::Instant;

use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record;
use x25519_dalek::{PublicKey, StaticSecret};

const ROUNDS: usize = 31;
const BATCH: usize = 200;

fn time_batch(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let key = SecretKey::derive(b"benchmark recipient key seed, 32 bytes");
    let pk = key.public_key().clone();
    let value = [b'4'; 32];
    let ctx = b"cust_cards/1001/card_number";
    let rec = record::seal(&pk, ctx, &value).unwrap();

    let dh_secret = StaticSecret::from([7u8; 32]);
    let dh_peer = PublicKey::from(*pk.as_bytes());

    let (mut dh, mut base, mut seal, mut open) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        dh.push(time_batch(|| {
            black_box(black_box(&dh_secret).diffie_hellman(black_box(&dh_peer)));
        }));
        base.push(time_batch(|| {
            black_box(PublicKey::from(black_box(&dh_secret)));
        }));
        seal.push(time_batch(|| {
            black_box(record::seal(black_box(&pk), ctx, black_box(&value)).unwrap());
        }));
        open.push(time_batch(|| {
            black_box(record::open(black_box(&key), ctx, black_box(&rec)).unwrap());
        }));
    }
    let (dh, base, seal, open) = (median(dh), median(base), median(seal), median(open));
    let open_ratio = dh / open;
    let seal_ratio = (dh + base) / seal;
    if json {
        println!(
            "{{\"dh_ns\":{dh:.0},\"basepoint_ns\":{base:.0},\"seal_ns\":{seal:.0},\"open_ns\":{open:.0},\
             \"open_over_dh_rate\":{open_ratio:.3},\"seal_over_dh_plus_basepoint_rate\":{seal_ratio:.3}}}"
        );
        return;
    }
    println!("operation (32-byte value)        ns/op      ops/s");
    for (name, ns) in [
        ("x25519 DH (bare)", dh),
        ("x25519 basepoint mult (bare)", base),
        ("record seal", seal),
        ("record open", open),
    ] {
        println!("{name:<30} {ns:>8.0} {:>10.0}", 1e9 / ns);
    }
    println!("open rate / DH rate:                  {open_ratio:.3}  (goal >= 0.90)");
    println!("seal rate / (DH + basepoint) rate:    {seal_ratio:.3}  (goal >= 0.90)");
}
