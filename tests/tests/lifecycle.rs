//! The key lifecycle an admin runs, end to end on emulated dongles with the real binaries,
//! one test per operation: backup, restore (and the refusals before it), clone, rotate,
//! re-wrap (10,000 records, killed once and resumed), retire (refused while records still use
//! the key), and the audit log that records them all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vbzkey_e2e::{Firmware, TempDir, admin, admin_pressing, bin, ok, refused};
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

/// An initialised emulated dongle with its PIN and admin PIN files, in a directory of its own.
struct Setup {
    dir: TempDir,
    pin: PathBuf,
    admin_pin: PathBuf,
    fw: Firmware,
    pk: PublicKey,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
        std::fs::write(&pin, "424242\n").unwrap();
        std::fs::write(&admin_pin, "admin-424242\n").unwrap();
        let fw = Firmware::start(&dir.path("a-state"), &dir.path("a.sock"), FAST);
        let init = ["init", "--pin-file", s(&pin), "--new-admin-pin-file", s(&admin_pin)];
        let pk = PublicKey::from_text(&ok(admin(&fw.socket, &init))).unwrap();
        let a = Setup { dir, pin, admin_pin, fw, pk };
        // Init leaves the dongle locked; staff unlock it (tests that open records need it).
        a.unlock(&a.fw);
        a
    }

    /// The admin tool as the admin runs it: with the admin PIN, pressing the button when asked.
    fn admin(&self, args: &[&str]) -> Output {
        let mut all = vec!["--admin-pin-file", self.admin_pin()];
        all.extend(args);
        admin(&self.fw.socket, &all)
    }

    fn pin(&self) -> &str {
        s(&self.pin)
    }

    fn admin_pin(&self) -> &str {
        s(&self.admin_pin)
    }

    /// `n` records sealed to the public key, as the store would hold them, in a JSONL file.
    fn records(&self, name: &str, n: usize) -> (PathBuf, Vec<Value>) {
        let path = self.dir.path(name);
        let mut text = String::new();
        for i in 0..n {
            let ctx = format!("cust_cards/{i}/card_number");
            let value = format!("4111{i:012}");
            let rec =
                record::to_text(&record::seal(&self.pk, ctx.as_bytes(), value.as_bytes()).unwrap());
            text.push_str(&json!({ "id": i, "context": ctx, "record": rec, "key_id": self.pk.key_id().to_string(), "value": value }).to_string());
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        let lines = read_jsonl(&path);
        (path, lines)
    }

    /// Backup 3-of-5 into `shares/`; returns the path of share `i`.
    fn backup(&self) -> impl Fn(usize) -> String {
        let shares = self.dir.path("shares");
        ok(self.admin(&["backup", "--threshold", "3", "--shares", "5", "-o", s(&shares)]));
        move |i| s(&shares.join(format!("share-{i}.txt"))).to_string()
    }

    fn unlock(&self, fw: &Firmware) {
        let unlock = Request::Unlock { pin: Pin::new(b"424242"), unlock_secret: None };
        assert_eq!(fw.request(&unlock), Response::Ok);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn backup_writes_one_private_file_per_share() {
    let a = Setup::new("backup");
    let share = a.backup();
    for i in 1..=5 {
        let text = std::fs::read_to_string(share(i)).unwrap();
        assert!(
            text.starts_with(&format!("# vbzkey recovery share {i} of 5 (3 needed)\nvkshare1."))
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(share(i)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "share {i}");
    }
    assert!(!Path::new(&share(6)).exists());
    // A second backup into the same directory never overwrites a share.
    refused(
        a.admin(&["backup", "--threshold", "3", "--shares", "5", "-o", s(&a.dir.path("shares"))]),
        "share-1.txt",
    );
}

#[test]
fn restore_from_any_three_of_five_shares_after_a_wipe_opens_every_record() {
    let a = Setup::new("restore");
    let (_, lines) = a.records("records.jsonl", 300);
    let share = a.backup();
    ok(a.admin(&["reset", "--force"]));
    assert!(ok(a.admin(&["info"])).contains("Uninitialised"));
    ok(a.admin(&[
        "restore",
        "--share-file",
        &share(5),
        "--share-file",
        &share(1),
        "--share-file",
        &share(3),
        "--new-pin-file",
        a.pin(),
        "--new-admin-pin-file",
        a.admin_pin(),
    ]));
    a.unlock(&a.fw);
    assert_eq!(open_all(&a.fw, &lines), (300, vec![]));
}

#[test]
fn restore_refuses_too_few_or_mistyped_shares_before_the_dongle_sees_them() {
    let a = Setup::new("restore-bad");
    let share = a.backup();
    ok(a.admin(&["reset", "--force"]));
    let too_few = a.admin(&[
        "restore",
        "--share-file",
        &share(1),
        "--share-file",
        &share(2),
        "--new-pin-file",
        a.pin(),
        "--new-admin-pin-file",
        a.admin_pin(),
    ]);
    assert_eq!(too_few.status.code(), Some(3), "bad input");
    refused(too_few, "3 different shares are needed");
    let typo = a.dir.path("typo.txt");
    let good = std::fs::read_to_string(share(3)).unwrap();
    let mut bad = good.lines().find(|l| l.starts_with("vkshare1.")).unwrap().to_string();
    let i = bad.len() - 12;
    bad.replace_range(i..i + 1, if &bad[i..i + 1] == "A" { "B" } else { "A" });
    std::fs::write(&typo, format!("{bad}\n")).unwrap();
    refused(
        a.admin(&[
            "restore",
            "--share-file",
            &share(1),
            "--share-file",
            &share(2),
            "--share-file",
            s(&typo),
            "--new-pin-file",
            a.pin(),
            "--new-admin-pin-file",
            a.admin_pin(),
        ]),
        "typo.txt line 1: the share's checksum does not match",
    );
    // Nothing reached the dongle: it is still empty.
    assert!(ok(a.admin(&["info"])).contains("Uninitialised"));
}

#[test]
fn clone_copies_every_key_so_both_dongles_open_the_records() {
    let a = Setup::new("clone");
    let (_, lines) = a.records("records.jsonl", 300);
    let b = Firmware::start(&a.dir.path("b-state"), &a.dir.path("b.sock"), FAST);
    let (from, to) = (a.fw.target(), b.target());
    let out = admin_pressing(
        &[
            "--admin-pin-file",
            a.admin_pin(),
            "clone",
            "--from",
            &from,
            "--to",
            &to,
            "--new-pin-file",
            a.pin(),
            "--new-admin-pin-file",
            a.admin_pin(),
        ],
        Some(&a.fw.button),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cloned 1 key version(s)."));
    ok(out);
    a.unlock(&b);
    assert_eq!(open_all(&b, &lines), (300, vec![]));
    assert_eq!(open_all(&a.fw, &lines), (300, vec![]));
}

#[test]
fn rotate_makes_a_new_key_active_and_keeps_the_old_one_for_opening() {
    let a = Setup::new("rotate");
    let (_, lines) = a.records("records.jsonl", 50);
    let new_pk = PublicKey::from_text(&ok(a.admin(&["rotate"]))).unwrap();
    assert_ne!(new_pk.key_id(), a.pk.key_id());
    assert_eq!(ok(a.admin(&["pubkey"])).trim(), new_pk.to_text());
    let info = ok(a.admin(&["info"]));
    assert!(info.contains("key v2 (active)") && info.contains("key v1 "), "{info}");
    assert_eq!(open_all(&a.fw, &lines), (50, vec![]));
}

#[test]
fn rewrap_of_10000_records_resumes_after_a_kill_and_a_torn_line() {
    let a = Setup::new("rewrap");
    let (records, lines) = a.records("records.jsonl", N);
    let new_pk = PublicKey::from_text(&ok(a.admin(&["rotate"]))).unwrap();
    let rewrapped = a.dir.path("rewrapped.jsonl");
    let rewrap_args = |batch: &str| {
        let mut c = Command::new(bin("vbzkey-admin"));
        c.arg("--dongle").arg(format!("unix:{}", a.fw.socket.display()));
        c.args(["--admin-pin-file", a.admin_pin(), "rewrap", "--in", s(&records)]);
        c.args(["-o", s(&rewrapped), "--batch", batch]);
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
    assert_eq!(open_all(&a.fw, &new_lines), (N, vec![]));
}

#[test]
fn retire_is_refused_while_records_use_the_key_then_the_old_records_no_longer_open() {
    let a = Setup::new("retire");
    let (records, lines) = a.records("records.jsonl", 300);
    // The active key: re-wrapping cannot help (it seals to the active key); rotating does.
    let active = a.admin(&["retire", &a.pk.key_id().grouped(), "--records", s(&records)]);
    assert_eq!(active.status.code(), Some(5), "refused");
    refused(active, "rotate first");
    ok(a.admin(&["rotate"]));
    let rewrapped = a.dir.path("rewrapped.jsonl");
    ok(a.admin(&["rewrap", "--in", s(&records), "-o", s(&rewrapped)]));
    let new_lines = read_jsonl(&rewrapped);
    // The grouped form `info` prints is what an admin copies.
    let old_id = a.pk.key_id().grouped();
    let still = a.admin(&["retire", &old_id, "--records", s(&records)]);
    assert_eq!(still.status.code(), Some(5), "refused");
    refused(still, "300 record(s)");
    ok(a.admin(&["retire", &old_id, "--records", s(&rewrapped)]));
    assert_eq!(open_all(&a.fw, &new_lines), (300, vec![]));
    assert_eq!(open_all(&a.fw, &lines), (0, vec!["no_such_key"]));
    let gone = a.admin(&["retire", &old_id, "--records", s(&rewrapped)]);
    assert_eq!(gone.status.code(), Some(4), "not found");
    refused(gone, "no key with that id");
}

#[test]
fn the_audit_log_records_each_operation_and_an_edited_export_does_not_verify() {
    let a = Setup::new("audit");
    let (_, lines) = a.records("records.jsonl", 20);
    let _shares = a.backup();
    ok(a.admin(&["rotate"]));
    a.unlock(&a.fw);
    assert_eq!(open_all(&a.fw, &lines), (20, vec![]));
    let audit = ok(a.admin(&["audit", "verify"]));
    assert!(audit.starts_with("audit log verifies"), "{audit}");
    let log = ok(a.admin(&["audit", "export"]));
    for event in [" init ", " backup ", " rotate ", " unseal "] {
        assert!(log.contains(event), "no{event}in the audit log");
    }
    let exported = a.dir.path("audit.log");
    std::fs::write(&exported, log.replacen(" rotate ", " r0tate ", 1)).unwrap();
    let tampered = a.admin(&["audit", "verify", s(&exported)]);
    assert_eq!(tampered.status.code(), Some(9), "not verified");
    refused(tampered, "does NOT verify");
}

#[test]
fn every_admin_command_has_an_example_and_refuses_bad_input() {
    for cmd in [
        "info",
        "init",
        "pubkey",
        "set-pin",
        "change-admin-pin",
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
    let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
    std::fs::write(&pin, "123456\n").unwrap();
    std::fs::write(&admin_pin, "admin-123456\n").unwrap();
    let (pin, admin_pin) = (pin.to_str().unwrap(), admin_pin.to_str().unwrap());
    // Too short a PIN is refused by the dongle, and nothing is made.
    let short = dir.path("short.txt");
    std::fs::write(&short, "1234\n").unwrap();
    let init =
        |p: &str| admin(&fw.socket, &["init", "--pin-file", p, "--new-admin-pin-file", admin_pin]);
    refused(init(short.to_str().unwrap()), "a staff PIN must be 6 to 128 bytes");
    ok(init(pin));
    let as_admin = |args: &[&str]| {
        let mut all = vec!["--admin-pin-file", admin_pin];
        all.extend(args);
        admin(&fw.socket, &all)
    };
    refused(
        as_admin(&["retire", "not-a-key-id", "--records", pin]),
        "a key id holds hex digits only",
    );
    refused(as_admin(&["backup", "--threshold", "1", "--shares", "3"]), "threshold");
    refused(init(pin), "already has a key");
    refused(as_admin(&["reset"]), "--force");
    refused(admin(Path::new("/nonexistent/dongle.sock"), &["info"]), "no dongle found");
    // A public key of the wrong form is refused with what is wrong with it.
    refused(as_admin(&["unpair", "vkpub1.short"]), "damaged");
    refused(as_admin(&["unpair", "ssh-ed25519 AAAA"]), "vkpub1.");
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
    assert_eq!(out.status.code(), Some(2), "usage");
    refused(out, "usb, usb:SERIAL, unix:PATH or tcp:HOST:PORT");
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
    let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
    std::fs::write(&pin, "246800\n").unwrap();
    std::fs::write(&admin_pin, "admin-246800\n").unwrap();
    let (pin, admin_pin) = (pin.to_str().unwrap(), admin_pin.to_str().unwrap());
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), FAST);
    let init = ["init", "--pin-file", pin, "--new-admin-pin-file", admin_pin];
    let pk = PublicKey::from_text(&ok(admin(&fw.socket, &init))).unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["--admin-pin-file", admin_pin];
        all.extend(args);
        admin(&fw.socket, &all)
    };
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
    let new_pk = PublicKey::from_text(&ok(admin(&["rotate"]))).unwrap();
    let db_arg = format!("sqlite:{}", db.display());
    let rewrap = |batch: &str| {
        admin(&[
            "rewrap",
            "--db",
            &db_arg,
            "--table",
            "cust_cards",
            "--column",
            "card_number",
            "--batch",
            batch,
        ])
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
            .args([
                "--admin-pin-file",
                admin_pin,
                "rewrap",
                "--db",
                &db_arg,
                "--table",
                "cust_cards",
            ])
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
    let unlock = Request::Unlock { pin: Pin::new(b"246800"), unlock_secret: None };
    assert_eq!(fw.request(&unlock), Response::Ok);
    assert_eq!(open_all(&fw, &lines), (500, vec![]));
    let old = pk.key_id().to_string();
    ok(admin(&["retire", &old, "--db", &db_arg, "--column", "cust_cards.card_number"]));
    refused(
        admin(&[
            "rewrap",
            "--db",
            "mysql://shop@db.example.com/store",
            "--table",
            "t",
            "--column",
            "c",
        ]),
        "only a server on this machine",
    );
    refused(
        admin(&["rewrap", "--db", &db_arg, "--table", "cust_cards; DROP TABLE x", "--column", "c"]),
        "not a plain",
    );
}

#[test]
fn admin_commands_need_the_admin_pin_and_never_take_the_staff_pin() {
    let dir = TempDir::new("admin-pin");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
    std::fs::write(&pin, "567890\n").unwrap();
    std::fs::write(&admin_pin, "admin-13579\n").unwrap();
    let (pin, admin_pin) = (pin.to_str().unwrap(), admin_pin.to_str().unwrap());
    ok(admin(&fw.socket, &["init", "--pin-file", pin, "--new-admin-pin-file", admin_pin]));
    let staff =
        admin(&fw.socket, &["backup", "--threshold", "2", "--shares", "3", "--pin-file", pin]);
    assert_eq!(staff.status.code(), Some(2), "usage");
    refused(staff, "staff PIN does not authorise `backup`");
    refused(admin(&fw.socket, &["rotate"]), "--admin-pin-file");
    let wrong = dir.path("wrong.txt");
    std::fs::write(&wrong, "admin-00000\n").unwrap();
    let out = admin(&fw.socket, &["--admin-pin-file", wrong.to_str().unwrap(), "rotate"]);
    assert_eq!(out.status.code(), Some(6), "wrong credential");
    refused(out, "wrong admin PIN");
    let shares = ok(admin(
        &fw.socket,
        &["--admin-pin-file", admin_pin, "backup", "--threshold", "2", "--shares", "3"],
    ));
    assert_eq!(shares.lines().count(), 3);
    // The admin command left nothing unlocked for the staff page.
    assert!(ok(admin(&fw.socket, &["info"])).contains("state:      Locked"));
}
