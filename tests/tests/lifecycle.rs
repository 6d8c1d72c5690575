//! The key lifecycle an admin runs, end to end on emulated dongles with the real binaries:
//! init → 10,000 records → backup 3-of-5 → wipe → restore from 3 shares → all open; clone
//! A→B → both open them; rotate → re-wrap all 10,000 (killed once, resumed) → every record
//! opens under the new key only → retire the old key (refused while records still use it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vbzkey_e2e::{Firmware, TempDir, admin, bin, ok, refused};
use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::wire::{Pin, Request, Response, SealedItem};
use vbzkey_protocol::{KeyId, PublicKey};

const N: usize = 10_000;
const FAST: &[&str] = &["--records-per-minute", "1000000000"];

fn key_id_of(text: &str) -> KeyId {
    Record::parse(&record::from_text(text).unwrap()).unwrap().key_id()
}

/// Unseal every line of a JSONL file on `fw`; returns how many opened to their value.
fn open_all(fw: &Firmware, lines: &[Value]) -> (usize, Vec<&'static str>) {
    let mut opened = 0;
    let mut errors = Vec::new();
    for chunk in lines.chunks(256) {
        let items = chunk
            .iter()
            .map(|l| SealedItem {
                record: record::from_text(l["record"].as_str().unwrap()).unwrap(),
                context: l["context"].as_str().unwrap().as_bytes().to_vec(),
            })
            .collect();
        match fw.request(&Request::UnsealBatch { items }) {
            Response::Unsealed(rs) => {
                for (r, l) in rs.iter().zip(chunk) {
                    match r {
                        Ok(p) if p.0[..] == *l["value"].as_str().unwrap().as_bytes() => opened += 1,
                        Ok(_) => errors.push("wrong value"),
                        Err(e) => errors.push(e.code()),
                    }
                }
            }
            other => panic!("{other:?}"),
        }
    }
    errors.dedup();
    (opened, errors)
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn backup_restore_clone_rotate_rewrap_retire() {
    let dir = TempDir::new("lifecycle");
    let pin = dir.path("pin.txt");
    std::fs::write(&pin, "424242\n").unwrap();
    let a = Firmware::start(&dir.path("a-state"), &dir.path("a.sock"), FAST);
    let pk =
        PublicKey::from_text(&ok(admin(&a.socket, &["init", "--pin-file", pin.to_str().unwrap()])))
            .unwrap();

    // 10,000 records, as the store would hold them (sealed with the public key only).
    let records = dir.path("records.jsonl");
    let mut text = String::new();
    for i in 0..N {
        let ctx = format!("cust_cards/{i}/card_number");
        let value = format!("4111{i:012}");
        let rec = record::to_text(&record::seal(&pk, ctx.as_bytes(), value.as_bytes()).unwrap());
        text.push_str(&json!({ "id": i, "context": ctx, "record": rec, "key_id": pk.key_id().to_string(), "value": value }).to_string());
        text.push('\n');
    }
    std::fs::write(&records, text).unwrap();
    let lines = read_jsonl(&records);

    // Backup 3-of-5, then wipe.
    let shares = dir.path("shares");
    ok(admin(
        &a.socket,
        &[
            "backup",
            "--threshold",
            "3",
            "--shares",
            "5",
            "--pin-file",
            pin.to_str().unwrap(),
            "--out-dir",
            shares.to_str().unwrap(),
        ],
    ));
    let share = |i: usize| shares.join(format!("share-{i}.txt")).to_str().unwrap().to_string();
    ok(admin(&a.socket, &["reset", "--pin-file", pin.to_str().unwrap(), "--force"]));
    assert!(ok(admin(&a.socket, &["info"])).contains("Uninitialised"));

    // Unsafe restores are refused with a clear message, before the dongle sees them.
    refused(
        admin(
            &a.socket,
            &[
                "restore",
                "--share-file",
                &share(1),
                "--share-file",
                &share(2),
                "--new-pin-file",
                pin.to_str().unwrap(),
            ],
        ),
        "3 different shares are needed",
    );
    let typo = dir.path("typo.txt");
    let good = std::fs::read_to_string(share(3)).unwrap();
    let data_line = good.lines().find(|l| l.starts_with("vkshare1.")).unwrap();
    let mut bad = data_line.to_string();
    let i = bad.len() - 12;
    bad.replace_range(i..i + 1, if &bad[i..i + 1] == "A" { "B" } else { "A" });
    std::fs::write(&typo, format!("{bad}\n")).unwrap();
    refused(
        admin(
            &a.socket,
            &[
                "restore",
                "--share-file",
                &share(1),
                "--share-file",
                &share(2),
                "--share-file",
                typo.to_str().unwrap(),
                "--new-pin-file",
                pin.to_str().unwrap(),
            ],
        ),
        "checksum",
    );

    // Restore from shares 1, 3 and 5: every record opens again.
    ok(admin(
        &a.socket,
        &[
            "restore",
            "--share-file",
            &share(5),
            "--share-file",
            &share(1),
            "--share-file",
            &share(3),
            "--new-pin-file",
            pin.to_str().unwrap(),
        ],
    ));
    assert_eq!(a.request(&Request::Unlock { pin: Pin::new(b"424242") }), Response::Ok);
    assert_eq!(open_all(&a, &lines), (N, vec![]));

    // Clone A → B: both open the same records.
    let b = Firmware::start(&dir.path("b-state"), &dir.path("b.sock"), FAST);
    let out = Command::new(bin("vbzkey-admin"))
        .args([
            "clone",
            "--from",
            &format!("unix:{}", a.socket.display()),
            "--to",
            &format!("unix:{}", b.socket.display()),
        ])
        .args(["--pin-file", pin.to_str().unwrap(), "--new-pin-file", pin.to_str().unwrap()])
        .output()
        .unwrap();
    ok(out);
    assert_eq!(b.request(&Request::Unlock { pin: Pin::new(b"424242") }), Response::Ok);
    assert_eq!(open_all(&b, &lines), (N, vec![]));

    // Rotate A, then re-wrap all 10,000; kill the first run part-way and resume.
    let new_pk = PublicKey::from_text(&ok(admin(
        &a.socket,
        &["rotate", "--pin-file", pin.to_str().unwrap()],
    )))
    .unwrap();
    assert_ne!(new_pk.key_id(), pk.key_id());
    let rewrapped = dir.path("rewrapped.jsonl");
    let rewrap_args = |batch: &str| {
        let mut c = Command::new(bin("vbzkey-admin"));
        c.arg("--dongle").arg(format!("unix:{}", a.socket.display()));
        c.args(["rewrap", "--pin-file", pin.to_str().unwrap(), "--in", records.to_str().unwrap()]);
        c.args(["--out", rewrapped.to_str().unwrap(), "--batch", batch]);
        c
    };
    let mut first = rewrap_args("50").stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = std::fs::read_to_string(&rewrapped).map(|t| t.lines().count()).unwrap_or(0);
        if done >= 500 {
            break;
        }
        assert!(Instant::now() < deadline, "the first re-wrap run made no progress");
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let partial = read_jsonl(&rewrapped).len();
    assert!(partial < N, "interrupted before the end ({partial} lines)");
    // As if the kill had landed mid-write: a torn last line, which the resume must cut off.
    std::fs::OpenOptions::new().append(true).open(&rewrapped).unwrap().write_all_torn();
    let resumed = rewrap_args("256").output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let summary = String::from_utf8_lossy(&resumed.stderr);
    assert!(summary.contains("resumed after") && summary.contains("torn last line"), "{summary}");

    let new_lines = read_jsonl(&rewrapped);
    assert_eq!(new_lines.len(), N, "no line lost, none duplicated");
    for (old, new) in lines.iter().zip(&new_lines) {
        assert_eq!(old["context"], new["context"]);
        assert_eq!(old["id"], new["id"]);
        assert_eq!(key_id_of(new["record"].as_str().unwrap()), new_pk.key_id());
        assert_eq!(new["key_id"], new_pk.key_id().to_string());
    }
    assert_eq!(open_all(&a, &new_lines), (N, vec![]));

    // Retire: refused while the old file still has records on the old key, then done.
    let old_id = pk.key_id().to_string();
    refused(
        admin(
            &a.socket,
            &[
                "retire",
                &old_id,
                "--pin-file",
                pin.to_str().unwrap(),
                "--records",
                records.to_str().unwrap(),
            ],
        ),
        "10000 record(s)",
    );
    ok(admin(
        &a.socket,
        &[
            "retire",
            &old_id,
            "--pin-file",
            pin.to_str().unwrap(),
            "--records",
            rewrapped.to_str().unwrap(),
        ],
    ));
    // Every record opens under the new key only: the old records no longer open at all.
    assert_eq!(open_all(&a, &new_lines), (N, vec![]));
    assert_eq!(open_all(&a, &lines[..300]), (0, vec!["no_such_key"]));

    // The audit log tells the story and verifies.
    let audit = ok(admin(&a.socket, &["audit", "verify"]));
    assert!(audit.starts_with("audit log verifies"), "{audit}");
    let log = ok(admin(&a.socket, &["audit", "export"]));
    for event in [
        " backup ",
        " factory-reset ",
        " restore ",
        " clone-export ",
        " rotate ",
        " rewrap ",
        " retire ",
    ] {
        assert!(log.contains(event), "no{event}in the audit log");
    }
    let exported = dir.path("audit.log");
    std::fs::write(&exported, log.replacen(" rotate ", " r0tate ", 1)).unwrap();
    refused(admin(&a.socket, &["audit", "verify", exported.to_str().unwrap()]), "does NOT verify");
}

#[test]
fn every_admin_command_has_an_example_and_refuses_bad_input() {
    for cmd in [
        "info",
        "init",
        "pubkey",
        "change-pin",
        "reset",
        "rotate",
        "retire",
        "backup",
        "restore",
        "clone",
        "rewrap",
    ] {
        let out = Command::new(bin("vbzkey-admin")).args([cmd, "--help"]).output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{cmd} --help has no example"
        );
    }
    for sub in ["export", "verify"] {
        let out =
            Command::new(bin("vbzkey-admin")).args(["audit", sub, "--help"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("Example"), "audit {sub}");
    }
    let dir = TempDir::new("admin-bad");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let pin = dir.path("pin.txt");
    std::fs::write(&pin, "1234\n").unwrap();
    ok(admin(&fw.socket, &["init", "--pin-file", pin.to_str().unwrap()]));
    refused(
        admin(&fw.socket, &["retire", "not-a-key-id", "--records", pin.to_str().unwrap()]),
        "not a key id",
    );
    refused(
        admin(
            &fw.socket,
            &["backup", "--threshold", "1", "--shares", "3", "--pin-file", pin.to_str().unwrap()],
        ),
        "threshold",
    );
    refused(admin(&fw.socket, &["init", "--pin-file", pin.to_str().unwrap()]), "already has a key");
    refused(admin(&fw.socket, &["reset", "--pin-file", pin.to_str().unwrap()]), "--force");
    refused(admin(Path::new("/nonexistent/dongle.sock"), &["info"]), "no dongle found");
    // A public key of the wrong form is refused with what is wrong with it.
    refused(
        admin(&fw.socket, &["unpair", "vkpub1.short", "--pin-file", pin.to_str().unwrap()]),
        "damaged",
    );
    refused(
        admin(&fw.socket, &["unpair", "ssh-ed25519 AAAA", "--pin-file", pin.to_str().unwrap()]),
        "vkpub1.",
    );
    let host_key = dir.path("host.key");
    std::fs::write(
        &host_key,
        "not a key
",
    )
    .unwrap();
    refused(admin(&fw.socket, &["--host-key", host_key.to_str().unwrap(), "info"]), "vksec1.");
    let out =
        Command::new(bin("vbzkey-admin")).args(["--dongle", "serial:1", "info"]).output().unwrap();
    refused(out, "usb, unix:PATH or tcp:ADDR:PORT");
}

trait TornWrite {
    fn write_all_torn(self);
}

impl TornWrite for std::fs::File {
    fn write_all_torn(mut self) {
        use std::io::Write;
        self.write_all(b"{\"id\": 99999, \"context\": \"cust_ca").unwrap();
    }
}

fn sqlite(db: &Path, script: &str, stdin: &str) -> String {
    use std::io::Write;
    let mut py = Command::new("python3")
        .args(["-c", script, db.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn rewrap_a_sqlite_table_in_place_and_retire_checked_against_it() {
    let dir = TempDir::new("sqlite-rewrap");
    let pin = dir.path("pin.txt");
    std::fs::write(&pin, "2468\n").unwrap();
    let pin = pin.to_str().unwrap();
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), FAST);
    let pk = PublicKey::from_text(&ok(admin(&fw.socket, &["init", "--pin-file", pin]))).unwrap();
    let db = dir.path("store.db");
    let rows: Vec<Value> = (0..500)
        .map(|i| {
            let (id, value) = (format!("c{i:04}"), format!("5555{i:012}"));
            let ctx = format!("cust_cards/{id}/card_number");
            json!([
                id,
                record::to_text(&record::seal(&pk, ctx.as_bytes(), value.as_bytes()).unwrap()),
                value
            ])
        })
        .collect();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/sqlite.sql");
    sqlite(
        &db,
        &format!(
            "import json, sqlite3, sys\ndb = sqlite3.connect(sys.argv[1]); db.executescript(open({schema:?}).read())\n\
             for id, rec, _ in json.load(sys.stdin):\n    db.execute(\"INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) VALUES (?,1,'mastercard','0000','2030-01',?,?)\", (id, rec, {:?}))\n\
             db.commit()",
            pk.key_id().to_string()
        ),
        &Value::from(rows.clone()).to_string(),
    );
    let new_pk =
        PublicKey::from_text(&ok(admin(&fw.socket, &["rotate", "--pin-file", pin]))).unwrap();
    let db_arg = format!("sqlite:{}", db.display());
    let rewrap = |batch: &str| {
        admin(
            &fw.socket,
            &[
                "rewrap",
                "--pin-file",
                pin,
                "--db",
                &db_arg,
                "--table",
                "cust_cards",
                "--column",
                "card_number",
                "--batch",
                batch,
            ],
        )
    };
    // Killed at every step of a batch (the third of each run): only whole batches are ever on
    // the new key, and each run gets further.
    let on_new_key = || -> Vec<String> {
        sqlite(
            &db,
            &format!(
                "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n\
                 print('\\n'.join(r[0] for r in db.execute(\"SELECT id FROM cust_cards WHERE key_id = '{}' ORDER BY id\")))",
                new_pk.key_id()
            ),
            "",
        )
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
    };
    let mut done = 0;
    for step in ["read", "rewrapped", "half-written", "committed"] {
        let out = Command::new(bin("vbzkey-admin"))
            .arg("--dongle")
            .arg(format!("unix:{}", fw.socket.display()))
            .args(["rewrap", "--pin-file", pin, "--db", &db_arg, "--table", "cust_cards"])
            .args(["--column", "card_number", "--batch", "32"])
            .env("VBZKEY_DANGEROUS_CRASH_AT", format!("rewrap-db:{step}:3"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "killed at {step}");
        let ids = on_new_key();
        assert_eq!(ids.len() % 32, 0, "killed at {step}: whole batches only ({} rows)", ids.len());
        let expected: Vec<String> = (0..ids.len()).map(|i| format!("c{i:04}")).collect();
        assert_eq!(ids, expected, "killed at {step}: the batches done are the first ones");
        assert!(ids.len() >= done, "killed at {step}: nothing re-wrapped was lost");
        done = ids.len();
    }
    assert!(done > 0 && done < 500);
    let first = rewrap("64");
    assert!(
        String::from_utf8_lossy(&first.stderr)
            .contains(&format!("500 rows, {} re-wrapped", 500 - done)),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Running it again (as after an interruption) re-wraps nothing twice.
    let again = rewrap("64");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("500 rows, 0 re-wrapped"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let stored: Vec<Value> = serde_json::from_str(&sqlite(
        &db,
        "import json, sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n\
         print(json.dumps([{'id': r[0], 'record': r[1], 'key_id': r[2]} for r in db.execute('SELECT id, card_number, key_id FROM cust_cards ORDER BY id')]))",
        "",
    ))
    .unwrap();
    assert_eq!(stored.len(), 500);
    let lines: Vec<Value> = stored
        .iter()
        .zip(&rows)
        .map(|(s, r)| {
            assert_eq!(s["key_id"], new_pk.key_id().to_string());
            assert_eq!(key_id_of(s["record"].as_str().unwrap()), new_pk.key_id());
            json!({ "context": format!("cust_cards/{}/card_number", s["id"].as_str().unwrap()), "record": s["record"], "value": r[2] })
        })
        .collect();
    assert_eq!(open_all(&fw, &lines), (500, vec![]));
    let old = pk.key_id().to_string();
    ok(admin(
        &fw.socket,
        &["retire", &old, "--pin-file", pin, "--db", &db_arg, "--column", "cust_cards.card_number"],
    ));
    refused(
        admin(
            &fw.socket,
            &[
                "rewrap",
                "--pin-file",
                pin,
                "--db",
                "mysql://shop@db.example.com/store",
                "--table",
                "t",
                "--column",
                "c",
            ],
        ),
        "only a server on this machine",
    );
    refused(
        admin(
            &fw.socket,
            &[
                "rewrap",
                "--pin-file",
                pin,
                "--db",
                &db_arg,
                "--table",
                "cust_cards; DROP TABLE x",
                "--column",
                "c",
            ],
        ),
        "not a plain",
    );
}

#[test]
fn an_admin_pin_is_needed_for_admin_commands() {
    let dir = TempDir::new("admin-pin");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
    std::fs::write(&pin, "5678\n").unwrap();
    std::fs::write(&admin_pin, "admin-13579\n").unwrap();
    let (pin, admin_pin) = (pin.to_str().unwrap(), admin_pin.to_str().unwrap());
    ok(admin(&fw.socket, &["init", "--pin-file", pin, "--new-admin-pin-file", admin_pin]));
    refused(
        admin(&fw.socket, &["backup", "--threshold", "2", "--shares", "3", "--pin-file", pin]),
        "admin PIN",
    );
    refused(admin(&fw.socket, &["rotate", "--pin-file", pin]), "admin PIN");
    let wrong = dir.path("wrong.txt");
    std::fs::write(&wrong, "admin-00000\n").unwrap();
    refused(
        admin(
            &fw.socket,
            &["--admin-pin-file", wrong.to_str().unwrap(), "rotate", "--pin-file", pin],
        ),
        "wrong PIN",
    );
    let shares = ok(admin(
        &fw.socket,
        &[
            "--admin-pin-file",
            admin_pin,
            "backup",
            "--threshold",
            "2",
            "--shares",
            "3",
            "--pin-file",
            pin,
        ],
    ));
    assert_eq!(shares.lines().count(), 3);
}
