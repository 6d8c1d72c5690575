//! Benchmark: a batch of 100 records through HTTP → bridge → emulated dongle, against opening
//! 100 records of the same sizes in-process, in one run; and the latency of a single record.
//!
//! ```sh
//! cargo build --release --bins && cargo bench -p vbzkey-e2e --bench bridge
//! ```
//!
//! The dongle's key never leaves it, so the in-process side opens the same values under the
//! same contexts sealed to a software key: identical sizes, identical work. The firmware's
//! state is on tmpfs (`/dev/shm`) when there is one, so the audit log's fsync measures the
//! software path, not this VM's disk; on a Pi the SD card's fsync adds to every batch. The
//! firmware's rate limit is raised for the run (`--records-per-minute`), or the benchmark
//! would measure the limit.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use vbzkey_e2e::{Bridge, Firmware, TempDir, http};
use vbzkey_protocol::{SecretKey, record};

const ROUNDS: usize = 25;
const BATCH: usize = 100;
const STORE: &str = "http://127.0.0.1:8080";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = TempDir(base.join(format!("vbzkey-bench-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let fw = Firmware::start(
        &dir.path("state"),
        &dir.path("dongle.sock"),
        &["--records-per-minute", "1000000000"],
    );
    let dongle_pk = fw.init(b"123456");
    let config = format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\ntrust_on_first_use = \"{}\"\n",
        fw.socket.display(),
        dir.path("known-dongle.pub").display()
    );
    let bridge = Bridge::start(&dir, &config);

    let local = SecretKey::generate().unwrap();
    let values: Vec<(String, String)> = (0..BATCH)
        .map(|i| (format!("cust_cards/{i}/card_number"), format!("41111111{i:08}")))
        .collect();
    let items: Vec<_> = values
        .iter()
        .map(|(c, v)| json!({ "record": record::to_text(&record::seal(&dongle_pk, c.as_bytes(), v.as_bytes()).unwrap()), "context": c }))
        .collect();
    let local_records: Vec<(Vec<u8>, &String)> = values
        .iter()
        .map(|(c, v)| (record::seal(local.public_key(), c.as_bytes(), v.as_bytes()).unwrap(), c))
        .collect();
    let body = json!({ "items": items }).to_string();
    let single = json!({ "items": [items[0]] }).to_string();
    assert_eq!(bridge.post("/v1/unlock", STORE, "{\"pin\":\"123456\"}").status, 200);

    let (mut http_batch, mut in_process, mut http_single) = (vec![], vec![], vec![]);
    for round in 0..ROUNDS + 3 {
        let t = Instant::now();
        let r = bridge.post("/v1/unseal", STORE, &body);
        let d_http = t.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        let t = Instant::now();
        for (rec, ctx) in &local_records {
            black_box(record::open(&local, ctx.as_bytes(), rec).unwrap());
        }
        let d_local = t.elapsed();
        let t = Instant::now();
        assert_eq!(bridge.post("/v1/unseal", STORE, &single).status, 200);
        let d_single = t.elapsed();
        if round >= 3 {
            // The first rounds warm caches and connections.
            http_batch.push(d_http);
            in_process.push(d_local);
            http_single.push(d_single);
        }
    }
    let (b, l, s) = (median(http_batch), median(in_process), median(http_single));
    let ratio = b.as_secs_f64() / l.as_secs_f64();
    println!(
        "batch of {BATCH} (median of {ROUNDS} interleaved rounds, state on {}):",
        base.display()
    );
    println!("  HTTP -> bridge -> emulated dongle   {:>8.2} ms", b.as_secs_f64() * 1e3);
    println!("  in-process open                     {:>8.2} ms", l.as_secs_f64() * 1e3);
    println!("  ratio                               {ratio:>8.3}  (goal <= 1.25)");
    println!("single record through HTTP            {:>8.2} ms", s.as_secs_f64() * 1e3);
    let host = format!("127.0.0.1:{}", bridge.port);
    let _ =
        http(bridge.port, "GET", "/v1/status", &[("Host", &host), ("Sec-Fetch-Site", "none")], b"");
}
