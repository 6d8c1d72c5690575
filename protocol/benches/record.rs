//! Benchmark: seal and open of a 32-byte value against the bare X25519 operations they are built on,
//! measured in one run so the ratios do not depend on the machine.
//!
//! `cargo bench -p vbzkey-protocol --bench record` (add `-- --json` for one JSON line).
//!
//! For the record, the same rounds also time libsodium's `crypto_box_seal_open` (X25519,
//! BLAKE2b, XSalsa20-Poly1305 on a 32-byte value: the nearest libsodium operation to a record
//! open) through PHP's sodium extension, in a PHP process this bench starts and drives over
//! a pipe, so the ratio open rate / libsodium rate is measured in one run. Without `php` (with
//! sodium) that row says so and the rest still runs.
//!
//! Each round times a batch of every operation back to back (interleaved, so frequency
//! scaling and noisy neighbours hit them alike); the figure per operation is the median over
//! rounds. Goals (docs/PERFORMANCE.md): open rate / DH rate >= 0.90, and seal rate /
//! (DH + basepoint) rate likewise.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record;

const ROUNDS: usize = 31;
const BATCH: usize = 200;

fn time_batch(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

/// PHP: one key pair and one sealed box, then for each line "N" on stdin, N opens and the
/// elapsed nanoseconds on stdout. A wrong plaintext exits non-zero.
const PHP_SODIUM: &str = r#"
$v = str_repeat('4', 32);
$kp = sodium_crypto_box_keypair();
$box = sodium_crypto_box_seal($v, sodium_crypto_box_publickey($kp));
while (($line = fgets(STDIN)) !== false) {
    $n = (int) $line; $pt = '';
    $t = hrtime(true);
    for ($i = 0; $i < $n; $i++) { $pt = sodium_crypto_box_seal_open($box, $kp); }
    $ns = hrtime(true) - $t;
    if ($pt !== $v) { fwrite(STDERR, "sodium: wrong plaintext\n"); exit(1); }
    echo $ns, "\n";
}
"#;

struct Sodium {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Sodium {
    fn start() -> Option<Sodium> {
        let mut child = Command::new("php")
            .args(["-r", PHP_SODIUM])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let input = child.stdin.take()?;
        let output = BufReader::new(child.stdout.take()?);
        let mut s = Sodium { child, input, output };
        s.time_batch().map(|_| s)
    }

    /// ns per open over one batch, or `None` if PHP failed.
    fn time_batch(&mut self) -> Option<f64> {
        writeln!(self.input, "{BATCH}").ok()?;
        let mut line = String::new();
        self.output.read_line(&mut line).ok()?;
        Some(line.trim().parse::<f64>().ok()? / BATCH as f64)
    }
}

impl Drop for Sodium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

    // The X25519 the records use (vbzkey-x25519: x25519-dalek on this CPU).
    let dh_secret = [7u8; 32];
    let dh_peer = *pk.as_bytes();

    let mut sodium = Sodium::start();
    let (mut dh, mut base, mut seal, mut open, mut sodium_open) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        if let Some(s) = sodium.as_mut() {
            match s.time_batch() {
                Some(ns) => sodium_open.push(ns),
                None => sodium = None,
            }
        }
        dh.push(time_batch(|| {
            black_box(vbzkey_x25519::x25519(black_box(&dh_secret), black_box(&dh_peer)));
        }));
        base.push(time_batch(|| {
            black_box(vbzkey_x25519::x25519_base(black_box(&dh_secret)));
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
    // Only a complete series counts: PHP failing halfway leaves the ratio unmeasured.
    let sodium_ns = (sodium.is_some() && sodium_open.len() == ROUNDS).then(|| median(sodium_open));
    let sodium_ratio = sodium_ns.map(|s| s / open);
    if json {
        let opt = |v: Option<f64>, p: usize| v.map_or("null".into(), |v| format!("{v:.p$}"));
        println!(
            "{{\"dh_ns\":{dh:.0},\"basepoint_ns\":{base:.0},\"seal_ns\":{seal:.0},\"open_ns\":{open:.0},\
             \"open_over_dh_rate\":{open_ratio:.3},\"seal_over_dh_plus_basepoint_rate\":{seal_ratio:.3},\
             \"sodium_box_seal_open_ns\":{},\"open_over_sodium_rate\":{}}}",
            opt(sodium_ns, 0),
            opt(sodium_ratio, 3)
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
    match (sodium_ns, sodium_ratio) {
        (Some(ns), Some(r)) => {
            println!("libsodium crypto_box_seal_open (PHP)  {ns:>8.0} {:>10.0}", 1e9 / ns);
            println!("open rate / libsodium seal_open rate: {r:.3}  (tracked, no goal)");
        }
        _ => println!("libsodium: not measured (needs `php` with the sodium extension)"),
    }
}
