//! Benchmark: `vbzkey-admin rewrap` of 10,000 records through an emulated dongle, directly in
//! a MariaDB table, directly in a SQLite table and on a JSON-lines file, in one run.
//!
//! ```sh
//! cargo build --release --bins && cargo bench -p vbzkey-e2e --bench rewrap
//! ```
//!
//! Each round rotates the dongle's key, then re-wraps the same 10,000 card numbers in all
//! three stores (in a rotating order, so none always runs first), timing the whole
//! `vbzkey-admin` process: start, connection, admin PIN check, reading, the dongle's work and the
//! per-batch commits. Everything lives in one temporary directory on the same file system,
//! with each store's default durability (MariaDB flushes its log at every commit; SQLite
//! syncs its journal; the JSON-lines output is fsynced per batch). The firmware's rate limit
//! is raised for the run, or the benchmark would measure the limit.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vbzkey_e2e::mariadb::MariaDb;
use vbzkey_e2e::{AdminDongle, TempDir, bin, ok, path_str};
use vbzkey_protocol::record;

const N: usize = 10_000;
const ROUNDS: usize = 5;
const BATCH: &str = "256";

fn main() {
    let dir = TempDir::new("rewrap-bench");
    let dongle = AdminDongle::init(&dir, "123456", &["--records-per-minute", "1000000000"]);
    let pk = dongle.public_key.clone();
    let rows: Vec<(String, String)> = (0..N)
        .map(|i| {
            let id = format!("{}", 100_000 + i);
            let ctx = format!("cust_cards/{id}/card_number");
            let rec = record::seal(&pk, ctx.as_bytes(), format!("5555{i:012}").as_bytes()).unwrap();
            (id, record::to_text(&rec))
        })
        .collect();
    let key_id = pk.key_id().to_string();

    // MariaDB: the SCD schema, the rows, a user that may read and update the table.
    let db = MariaDb::start(&dir.path("mariadb"));
    db.create_database("shop");
    db.load("shop", Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/mysql.sql")));
    let mut sql = String::new();
    for chunk in rows.chunks(1000) {
        sql.push_str("INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) VALUES ");
        let values: Vec<String> = chunk
            .iter()
            .map(|(id, rec)| {
                format!("('{id}', {id}, 'mastercard', '0000', '2030-01', '{rec}', '{key_id}')")
            })
            .collect();
        sql.push_str(&values.join(","));
        sql.push_str(";\n");
    }
    db.sql("shop", &sql);
    let password = dir.path("db-password");
    db.create_user("vbzkey", "bench-Pw-1", &["SELECT, UPDATE ON shop.cust_cards"], &password);
    let mysql = db.admin_url("vbzkey", "shop", &password);

    // SQLite: the same schema and rows (Python's sqlite3, as the store's code would write them).
    let sqlite_file = dir.path("store.db");
    let mut py = Command::new("python3")
        .args(["-c", "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1]); db.executescript(open(sys.argv[2]).read())\n\
                      db.executemany(\"INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) VALUES (?, ?, 'mastercard', '0000', '2030-01', ?, ?)\", (l.split() + [sys.argv[3]] for l in sys.stdin))\n\
                      db.commit()"])
        .arg(&sqlite_file)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/sqlite.sql"))
        .arg(&key_id)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = py.stdin.take().unwrap();
        for (id, rec) in &rows {
            writeln!(stdin, "{id} {id} {rec}").unwrap();
        }
    }
    assert!(py.wait().unwrap().success());
    let sqlite = format!("sqlite:{}", sqlite_file.display());

    // JSON lines: the same records.
    let mut jsonl = dir.path("records-0.jsonl");
    let text: String = rows
        .iter()
        .map(|(id, rec)| {
            format!("{}\n", serde_json::json!({ "id": id, "context": format!("cust_cards/{id}/card_number"), "record": rec }))
        })
        .collect();
    std::fs::write(&jsonl, text).unwrap();

    let admin = |args: &[&str]| -> Duration {
        let t = Instant::now();
        let out = Command::new(bin("vbzkey-admin"))
            .args(dongle.admin_options())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let d = t.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{N} rows, {N} re-wrapped"))
                || err.contains(&format!("{N} records: {N} re-wrapped")),
            "every record re-wrapped: {err}"
        );
        d
    };
    let mut times: [Vec<Duration>; 3] = [vec![], vec![], vec![]];
    for round in 0..ROUNDS {
        ok(dongle.admin(&["rotate"]));
        let out = dir.path(&format!("records-{}.jsonl", round + 1));
        for k in 0..3 {
            let which = (round + k) % 3;
            let table = ["--table", "cust_cards", "--column", "card_number", "--batch", BATCH];
            let d = match which {
                0 => admin(&[&["rewrap", "--db", &mysql][..], &table].concat()),
                1 => admin(&[&["rewrap", "--db", &sqlite][..], &table].concat()),
                _ => admin(&[
                    "rewrap",
                    "--in",
                    path_str(&jsonl),
                    "-o",
                    path_str(&out),
                    "--batch",
                    BATCH,
                ]),
            };
            times[which].push(d);
        }
        jsonl = out;
    }
    let rate = |d: &Duration| N as f64 / d.as_secs_f64();
    println!(
        "rewrap of {N} records, batches of {BATCH}, {ROUNDS} rounds (records/s, whole vbzkey-admin process)"
    );
    println!(
        "{:<26} {}",
        "store",
        (1..=ROUNDS).map(|r| format!("{:>10}", format!("round {r}"))).collect::<String>()
    );
    for (name, t) in [
        ("MariaDB table (socket)", &times[0]),
        ("SQLite table", &times[1]),
        ("JSON lines file", &times[2]),
    ] {
        println!(
            "{name:<26} {}",
            t.iter().map(|d| format!("{:>10.0}", rate(d))).collect::<String>()
        );
    }
    let total = |t: &Vec<Duration>| t.iter().sum::<Duration>();
    println!(
        "MariaDB / SQLite rate: {:.3}   MariaDB / JSON lines rate: {:.3}",
        total(&times[1]).as_secs_f64() / total(&times[0]).as_secs_f64(),
        total(&times[2]).as_secs_f64() / total(&times[0]).as_secs_f64()
    );
}
