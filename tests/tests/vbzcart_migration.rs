//! VbzCart's own `cust_cards` (tests/vbzcart/schema.sql, as VbzCart documents it) in a private
//! MariaDB, filled by real PHP the way VbzCart fills it: 1,000 rows whose packed string
//! "\t" number "\t" cvv "\t" expiry was encrypted with `openssl_public_encrypt` to a fresh
//! RSA-2048 key (raw or base64), some clear, some wiped, some damaged. `vbzcart-migrate`
//! (clients/php) dry-runs it, refuses the documented MyISAM table, then runs: paced, a store
//! transaction changing a row under it, killed from outside, killed at every step of a batch,
//! and run to the end. Every card then opens through the real bridge and emulated dongle under
//! the VbzCart context to its number alone; no row is lost or doubled; no CVV is left, clear
//! or sealed; `CardSafe` is VbzCart's for every brand; the damaged rows are reported by id and
//! reason and left byte for byte as they were. The drop-in cipher's records open the same way
//! and never hold the CVV.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mysql::TxOpts;
use mysql::prelude::Queryable;
use serde_json::{Value, json};
use vbzkey_e2e::mariadb::MariaDb;
use vbzkey_e2e::{AdminDongle, Bridge, TempDir, path_str};

const N: usize = 1000;
const BATCH: usize = 50;
const PIN: &str = "271828";
const CONTEXT: &str = "vbzcart/cust_cards/Encrypted/card_number";
const ORIGIN: &str = "https://admin.vbzcart.example";
const FAST: &[&str] = &["--records-per-minute", "1000000000"];
/// A wiped row (blob only) that a store transaction changes while the migration waits on it.
const CHANGED: &str = "5207";
const CHANGED_NUMBER: &str = "4012888888881881";

fn php_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn php(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("php")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php is installed (scripts/test)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// id -> [CardNum, CardExp, CardCVV, CardSafe, Encrypted (a vk1. text, or hex), WhenEnc].
fn rows(db: &MariaDb) -> BTreeMap<String, Vec<String>> {
    db.sql(
        "vbzcart",
        "SELECT ID, IFNULL(CardNum, 'NULL'), IFNULL(CardExp, 'NULL'), IFNULL(CardCVV, 'NULL'), \
         CardSafe, IF(Encrypted LIKE 'vk1.%', Encrypted, IFNULL(HEX(Encrypted), 'NULL')), \
         IFNULL(WhenEnc, 'NULL') FROM cust_cards ORDER BY ID",
    )
    .lines()
    .map(|l| {
        let f: Vec<String> = l.split('\t').map(str::to_string).collect();
        (f[0].clone(), f[1..].to_vec())
    })
    .collect()
}

struct Shop {
    db: MariaDb,
    dsn: String,
    password_file: PathBuf,
    public_key: PathBuf,
    /// The old RSA key, or none (a sweep of clear cards only).
    rsa_key: Option<PathBuf>,
}

impl Shop {
    fn migrate(&self, extra: &[&str], crash_at: Option<&str>) -> Child {
        let mut cmd = Command::new("php");
        cmd.arg(php_file("../clients/php/bin/vbzcart-migrate"))
            .args(["--dsn", &self.dsn, "--user", "migrate", "--password-file"])
            .arg(&self.password_file)
            .arg("--public-key")
            .arg(&self.public_key)
            .args(
                self.rsa_key
                    .iter()
                    .flat_map(|k| [std::ffi::OsStr::new("--rsa-key"), k.as_os_str()]),
            )
            .args(["--batch", &BATCH.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(point) = crash_at {
            cmd.env("VBZKEY_DANGEROUS_CRASH_AT", point);
        }
        cmd.spawn().expect("php vbzcart-migrate")
    }

    fn migrate_json(&self, extra: &[&str]) -> (Option<i32>, Value, String) {
        let mut args = vec!["--json"];
        args.extend(extra);
        let out = self.migrate(&args, None).wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{err}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), summary, err)
    }
}

/// Rows in id order, in pages of one batch: each page's migratable rows are all done or none
/// (per-batch transactions). Returns how many are done.
fn assert_whole_batches(db: &MariaDb, expected: &Value) -> usize {
    let all = rows(db);
    let mut done = 0;
    for (p, page) in all.iter().collect::<Vec<_>>().chunks(BATCH).enumerate() {
        let states: Vec<bool> = page
            .iter()
            .filter(|(id, _)| {
                id.as_str() != CHANGED
                    && matches!(expected[id.as_str()]["kind"].as_str(), Some("clear" | "blob"))
            })
            .map(|(_, r)| r[4].starts_with("vk1."))
            .collect();
        assert!(
            states.iter().all(|s| *s) || states.iter().all(|s| !*s),
            "page {p} is half migrated: a batch was not one transaction"
        );
        done += states.iter().filter(|s| **s).count();
    }
    done
}

/// Open `(context, record)` pairs through the bridge, at most 256 a request.
fn open_all(bridge: &Bridge, items: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in items.chunks(256) {
        let body = json!({"items": chunk.iter().map(|(c, r)| json!({"record": r, "context": c})).collect::<Vec<_>>()});
        let answer = bridge.post("/v1/unseal", ORIGIN, &body.to_string());
        assert_eq!(answer.status, 200, "{}", answer.text());
        for r in answer.json()["results"].as_array().unwrap() {
            out.push(r["value"].as_str().unwrap_or_else(|| panic!("not opened: {r}")).to_string());
        }
    }
    out
}

#[test]
fn vbzcart_rsa_cards_move_to_vbzkey_through_kills_and_open_on_the_dongle_without_any_cvv() {
    let dir = TempDir::new("vbzcart");
    let dongle = AdminDongle::init(&dir, PIN, FAST);
    let db = MariaDb::start(&dir.path("mariadb"));
    db.create_database("vbzcart");
    let shop_password = dir.path("shop-password");
    db.create_user("shop", "shop-Pw-17", &["ALL PRIVILEGES ON vbzcart.*"], &shop_password);
    db.load("vbzcart", &php_file("vbzcart/schema.sql"));
    db.load("vbzcart", &php_file("vbzcart/legacy.sql"));
    let dsn = db.pdo_dsn("vbzcart");

    // 1,000 rows the way VbzCart made them, with PHP's openssl, through PDO.
    let out = php(
        &[
            path_str(&php_file("vbzcart/vbzcart.php")),
            "legacy-rows",
            &dsn,
            "shop",
            path_str(&shop_password),
            path_str(&dir.0),
            &N.to_string(),
        ],
        "",
    );
    assert!(out.status.success(), "legacy rows: {}", String::from_utf8_lossy(&out.stderr));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("expected.json")).unwrap()).unwrap();
    let kind = |id: &str| expected[id]["kind"].as_str().unwrap().to_string();
    let count = |k: &str| expected.as_object().unwrap().values().filter(|v| v["kind"] == k).count();
    assert_eq!(rows(&db).len(), N);

    let migrate_password = dir.path("migrate-password");
    db.create_user(
        "migrate",
        "migrate-Pw-17",
        &["SELECT, UPDATE ON vbzcart.cust_cards"],
        &migrate_password,
    );
    let public_key = dir.path("vbzkey-public.txt");
    std::fs::write(&public_key, format!("{}\n", dongle.public_key.to_text())).unwrap();
    let shop = Shop {
        db,
        dsn,
        password_file: migrate_password,
        public_key,
        rsa_key: Some(dir.path("rsa-private.pem")),
    };
    let db = &shop.db;
    let before = rows(db);

    // 2. The dry run says exactly what a run will do, and writes nothing.
    let (code, dry, err) = shop.migrate_json(&["--dry-run"]);
    assert_eq!(code, Some(3), "some rows are unreadable: {dry}");
    // It names the key it seals to as `vbzkey-admin pubkey` prints the dongle's fingerprint,
    // so the admin can tell a wrong or swapped public key file before anything is sealed.
    let fingerprint = dongle.public_key.key_id().grouped();
    assert!(err.contains(&format!("sealing to vbzkey key id {fingerprint}")), "{err}");
    assert_eq!(dry["key_id"], fingerprint);
    let damaged: BTreeMap<String, String> = expected
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["kind"] == "damaged")
        .map(|(id, v)| (id.clone(), v["reason"].as_str().unwrap().to_string()))
        .collect();
    let mut by_reason = BTreeMap::new();
    for r in damaged.values() {
        *by_reason.entry(r.clone()).or_insert(0) += 1;
    }
    let cvvs = expected.as_object().unwrap().values().filter(|v| v["cvv_seen"] == true).count();
    let c = &dry["counts"];
    assert_eq!(c["rows"], N);
    assert_eq!(c["no_card"], count("no_card"));
    assert_eq!(c["cards_clear"], count("clear"));
    assert_eq!(c["blobs_decrypted"], count("blob"));
    assert_eq!(c["sealed"], count("clear") + count("blob"));
    assert_eq!(c["cvvs_dropped"], cvvs);
    assert_eq!(c["unreadable"], damaged.len());
    assert_eq!(dry["unreadable_by_reason"], json!(by_reason));
    assert!(by_reason.len() >= 4, "damaged in several ways: {by_reason:?}");
    // An unreadable row keeps what it had, but a clear CVV beside it is dropped (and said so).
    let mut cvv_beside_damage = 0;
    for r in dry["unreadable_rows"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        assert_eq!(r["cvv_dropped"], expected[id]["cvv_seen"], "row {id}: {r}");
        cvv_beside_damage += usize::from(r["cvv_dropped"] == true);
    }
    assert!(cvv_beside_damage > 0, "some damaged rows hold a clear CVV");
    assert_eq!(rows(db), before, "a dry run writes nothing");

    // 3. VbzCart documents the table as MyISAM (no transactions): a run refuses it, saying
    //    how to convert it; the admin converts it (docs/VBZCART.md).
    let out = shop.migrate(&[], None).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ALTER TABLE cust_cards ENGINE=InnoDB"), "{err}");
    assert_eq!(rows(db), before);
    db.sql("vbzcart", "ALTER TABLE cust_cards ENGINE=InnoDB");

    // 4. A paced run; a store transaction holds row CHANGED, the run waits on it inside its
    //    batch, the store gives that customer a new card meanwhile, and the run must not
    //    overwrite it (compare-and-swap). Then it is killed from outside a third of the way.
    let mut store = db.connect("shop", "shop-Pw-17", "vbzcart");
    let mut tx = store.start_transaction(TxOpts::default()).unwrap();
    tx.exec_drop("SELECT ID FROM cust_cards WHERE ID = ? FOR UPDATE", (CHANGED,)).unwrap();
    let mut first = shop.migrate(&["--rows-per-minute", "3000"], None);
    let (progress_tx, progress) = mpsc::channel();
    let stderr = first.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = progress_tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while db.lock_waits() == 0 {
        assert!(Instant::now() < deadline, "the run never reached the locked row");
        assert!(first.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The process holding the RSA key keeps it out of core dumps.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", first.id())).unwrap();
    assert!(
        limits.lines().any(|l| l.starts_with("Max core file size")
            && l.split_whitespace().skip(4).take(2).all(|v| v == "0")),
        "{limits}"
    );
    tx.exec_drop(
        "UPDATE cust_cards SET CardNum = ?, CardExp = '2030-12-31', CardSafe = 'V-1881x12/30', \
         Encrypted = NULL, WhenUpd = NOW() WHERE ID = ?",
        (CHANGED_NUMBER, CHANGED),
    )
    .unwrap();
    tx.commit().unwrap();
    loop {
        let line = progress.recv_timeout(deadline - Instant::now()).expect("progress lines");
        let done: usize = line
            .strip_prefix("vbzcart-migrate: ")
            .and_then(|l| l.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if done >= N / 3 {
            break;
        }
    }
    let pid = first.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    assert_eq!(first.wait().unwrap().signal(), Some(9), "killed in the middle");
    reader.join().unwrap();
    let mut done = assert_whole_batches(db, &expected);
    let migratable = count("clear") + count("blob") - 1;
    assert!(done > 0 && done < migratable, "the kill landed in the middle ({done} done)");
    assert_eq!(rows(db)[CHANGED][0], CHANGED_NUMBER, "the store's new card was not overwritten");

    // 5. Killed at every step of a batch: only whole batches are ever done.
    for step in ["read", "half-written", "committed"] {
        let out = shop.migrate(&[], Some(&format!("vbzcart:{step}:2"))).wait_with_output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "crash at {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let now = assert_whole_batches(db, &expected);
        assert!(now >= done, "a crash at {step} lost migrated rows ({done} -> {now})");
        done = now;
    }

    // 5b. A store still on the old cipher writes a new RSA blob (number and CVV) into a row the
    //     run has already passed, while the run waits on a later row. The run must not end
    //     saying the table holds no RSA blob nor tell the admin to destroy the key that row
    //     needs: it names the rows left for the next run and exits 5.
    let order: Vec<String> =
        before.keys().filter(|id| kind(id) == "blob" && id.as_str() != CHANGED).cloned().collect();
    let (behind, late) = (order[0].clone(), order[order.len() - 1].clone());
    assert!(rows(db)[&behind][4].starts_with("vk1."), "row {behind} is already migrated");
    assert!(!rows(db)[&late][4].starts_with("vk1."), "row {late} is still to do");
    let mut tx = store.start_transaction(TxOpts::default()).unwrap();
    tx.exec_drop("SELECT ID FROM cust_cards WHERE ID = ? FOR UPDATE", (&late,)).unwrap();
    let run = shop.migrate(&[], None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while db.lock_waits() == 0 {
        assert!(Instant::now() < deadline, "the run never reached row {late}");
        std::thread::sleep(Duration::from_millis(20));
    }
    db.sql(
        "vbzcart",
        &format!(
            "UPDATE cust_cards SET Encrypted = UNHEX('{}'), WhenUpd = NOW() WHERE ID = {behind}",
            before[&behind][4]
        ),
    );
    tx.commit().unwrap();
    let out = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(!err.contains("DESTROY") && !err.contains("holds no RSA blob"), "{err}");
    assert!(err.contains(&format!("left for the next run: {behind}")), "{err}");
    assert!(!rows(db)[&behind][4].starts_with("vk1."), "the store's blob is still there");

    // 6. The last run finishes and tells the admin to destroy the RSA key; one more finds
    //    everything sealed and the same damaged rows.
    let out = shop.migrate(&[], None).wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("DESTROY the old RSA private key"), "{stderr}");
    assert!(stderr.contains("CVVs"), "it says why: {stderr}");
    let (code, last, _) = shop.migrate_json(&[]);
    assert_eq!(code, Some(3));
    assert_eq!(last["counts"]["already_sealed"], migratable + 1, "{last}");
    assert_eq!(last["counts"]["sealed"], 0);
    // Too many unreadable rows stop a run (a damaged or tampered table).
    let (code, stopped, err) = shop.migrate_json(&["--max-unreadable", "10"]);
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(stopped["stopped"], true);
    assert!(err.contains("more than 10 rows could not be read"), "{err}");
    let reported: BTreeMap<String, String> = last["unreadable_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().into(), r["reason"].as_str().unwrap().into()))
        .collect();
    assert_eq!(reported, damaged, "damaged rows reported by id and reason");
    // The reports never hold a card number or a CVV.
    for v in expected.as_object().unwrap().values() {
        if let Some(n) = v["number"].as_str() {
            assert!(!stdout.contains(n) && !stderr.contains(n), "a card number in the output");
        }
    }

    // 7. Every row once; the damaged ones byte for byte as they were; the others sealed,
    //    fitting VbzCart's VARCHAR(127), with CardSafe in VbzCart's format and no CVV.
    let after = rows(db);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    let mut items = Vec::new();
    let mut numbers = Vec::new();
    let mut letters = BTreeSet::new();
    for (id, r) in &after {
        assert_eq!(r[2], "NULL", "row {id}: CardCVV");
        match kind(id).as_str() {
            "damaged" => {
                // Left as it was, but for a clear CVV beside it: dropped (PCI DSS), never kept.
                let mut was = before[id].clone();
                was[2] = "NULL".into();
                assert_eq!(r, &was, "damaged row {id} left as it was, CVV dropped");
            }
            "no_card" => assert_eq!(r, &before[id], "row {id} had nothing to move"),
            _ => {
                let (number, safe, exp) = if id == CHANGED {
                    (CHANGED_NUMBER, "V-1881x12/30", "2030-12-31")
                } else {
                    let e = &expected[id.as_str()];
                    (
                        e["number"].as_str().unwrap(),
                        e["card_safe"].as_str().unwrap(),
                        e["card_exp"].as_str().unwrap(),
                    )
                };
                assert_eq!(r[0], "NULL", "row {id}: CardNum");
                assert_eq!(r[1], exp, "row {id}: CardExp kept clear");
                assert_eq!(r[3], safe, "row {id}: CardSafe");
                assert!(r[4].starts_with("vk1.") && r[4].len() <= 127, "row {id}: {}", r[4]);
                assert_ne!(r[5], "NULL", "row {id}: WhenEnc");
                letters.insert(safe.split('-').next().unwrap().to_string());
                items.push((CONTEXT.to_string(), r[4].clone()));
                numbers.push(number.to_string());
            }
        }
    }
    assert_eq!(items.len(), migratable + 1);
    assert_eq!(
        letters.into_iter().collect::<Vec<_>>(),
        ["?2", "A", "D", "M", "V"],
        "every VbzCart type letter"
    );

    // 8. Every record opens through the bridge and the dongle, under the VbzCart context, to
    //    the card number alone: no CVV sealed.
    let bridge = Bridge::start(
        &dir,
        &format!(
            "allowed_origins = [\"{ORIGIN}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\n\
             trust_on_first_use = \"{}\"\n",
            dongle.fw.socket.display(),
            dir.path("known-dongle.pub").display()
        ),
    );
    assert_eq!(bridge.post("/v1/unlock", ORIGIN, &json!({ "pin": PIN }).to_string()).status, 200);
    let opened = open_all(&bridge, &items);
    assert_eq!(opened, numbers, "every card opens to its number");
    assert!(opened.iter().all(|v| v.bytes().all(|b| b.is_ascii_digit())), "digits, no CVV");

    // 9. The drop-in cipher at checkout: VbzCart-packed strings with CVVs seal to records that
    //    open through the bridge to the number; the CVV is logged as dropped, never its value.
    let packed = [
        "\t4111 1111 1111 1111\t737\t12/27",
        "\t378282246310005\t4321\t0828",
        "\t6011000990139424\t\t2029-03-31",
        "\t4000000000000000006\t909\t1/30",
        "\t2223003122003222\t314\t5/31",
    ];
    let out = php(
        &[path_str(&php_file("vbzcart/vbzcart.php")), "cipher", path_str(&shop.public_key)],
        &json!(packed).to_string(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sealed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let records: Vec<(String, String)> = sealed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (CONTEXT.to_string(), r.as_str().unwrap().to_string()))
        .collect();
    assert!(records.iter().all(|(_, r)| r.len() <= 127));
    let opened = open_all(&bridge, &records);
    assert_eq!(
        opened,
        [
            "4111111111111111",
            "378282246310005",
            "6011000990139424",
            "4000000000000000006",
            "2223003122003222"
        ]
    );
    let log = sealed["log"].to_string();
    assert_eq!(sealed["log"].as_array().unwrap().len(), 4, "one line per CVV dropped: {log}");
    for cvv in ["737", "4321", "909", "314"] {
        assert!(!log.contains(cvv), "the log holds a CVV: {log}");
    }
    // A record does not open under another row's or table's context.
    let wrong: Vec<(String, String)> =
        vec![("cust_cards/5001/card_number".into(), records[0].1.clone())];
    let body = json!({"items": wrong.iter().map(|(c, r)| json!({"record": r, "context": c})).collect::<Vec<_>>()});
    let answer = bridge.post("/v1/unseal", ORIGIN, &body.to_string());
    assert!(answer.json()["results"][0]["value"].is_null(), "{}", answer.text());

    // 10. Without the RSA key (the sweep for clear cards VbzCart's save path keeps writing),
    //     in a column too narrow for one record: clear cards are sealed, a blob is reported
    //     `needs_rsa_key`, the record too long is reported and left, never truncated.
    db.create_database("narrow");
    db.load("narrow", &php_file("vbzcart/schema.sql"));
    // A record sealed to another vbzkey key (an earlier run given the wrong --public-key)
    // and junk that merely starts with `vk1.`: neither may pass for "already sealed".
    let out = php(
        &[
            "-r",
            &format!(
                "require '{}'; echo VbzKey\\Sealer::seal('vkpub1.' . VbzKey\\Record::b64(sodium_crypto_scalarmult_base(str_repeat(\"\\x07\", 32))), '{CONTEXT}', '4111111111111111');",
                path_str(&php_file("../clients/php/autoload.php"))
            ),
        ],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let other_key_record = String::from_utf8(out.stdout).unwrap();
    assert!(other_key_record.starts_with("vk1."), "{other_key_record}");
    db.sql(
        "narrow",
        "ALTER TABLE cust_cards ENGINE=InnoDB, MODIFY Encrypted VARCHAR(108); \
         INSERT INTO cust_cards (ID, WhenEnt, CardNum, CardExp, CardSafe) \
         VALUES (1, NOW(), '4000000000000000006', '2030-01-31', 'V-0006x1/30'), \
                (2, NOW(), '4111111111111111', '2030-01-31', 'V-1111x1/30'); \
         INSERT INTO cust_cards (ID, WhenEnt, CardSafe, Encrypted) \
         VALUES (3, NOW(), 'V-1111x1/30', REPEAT('QUJD', 25)); \
         INSERT INTO cust_cards (ID, WhenEnt, CardSafe, Encrypted) \
         VALUES (4, NOW(), 'V-1111x1/30', 'vk1.not-a-record'); \
         GRANT SELECT, UPDATE ON narrow.cust_cards TO 'migrate'@'localhost'",
    );
    db.sql(
        "narrow",
        &format!(
            "INSERT INTO cust_cards (ID, WhenEnt, CardSafe, Encrypted) \
             VALUES (5, NOW(), 'V-1111x1/30', '{other_key_record}')"
        ),
    );
    let narrow = Shop { dsn: db.pdo_dsn("narrow"), rsa_key: None, ..shop };
    let (code, summary, err) = narrow.migrate_json(&[]);
    assert_eq!(code, Some(3), "{summary}");
    // Row 3 needs the RSA key: the run must not tell the admin to destroy it.
    assert!(!err.contains("DESTROY") && err.contains("keep the old RSA private key"), "{err}");
    assert_eq!(
        summary["unreadable_rows"],
        json!([
            {"id": "1", "reason": "record_too_long_for_column", "cvv_dropped": false},
            {"id": "3", "reason": "needs_rsa_key", "cvv_dropped": false},
            {"id": "4", "reason": "bad_vk1_record", "cvv_dropped": false}
        ])
    );
    assert_eq!(summary["counts"]["sealed_to_another_key"], 1, "{summary}");
    assert!(err.contains("1 rows are sealed to another vbzkey key"), "{err}");
    assert_eq!(summary["counts"]["sealed"], 1, "the 16-digit card's 106 characters fit");
    assert_eq!(
        narrow.db.sql("narrow", "SELECT CardNum FROM cust_cards WHERE ID = 1").trim(),
        "4000000000000000006"
    );

    // 11. A blob whose expiry was typed in a form that cannot be read ("127": January 2027 or
    //     December 2007?) and no clear CardExp: sealing the number alone would throw the
    //     expiry away with the blob, so the row is reported and left, never given a guess.
    let out = php(
        &[
            "-r",
            &format!(
                "$k = openssl_pkey_get_details(openssl_pkey_get_private(file_get_contents('{}')))['key']; \
                 openssl_public_encrypt(\"\\t4111111111111111\\t\\t127\", $b, $k); echo bin2hex($b);",
                path_str(&dir.path("rsa-private.pem"))
            ),
        ],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let blob = String::from_utf8(out.stdout).unwrap();
    let main = Shop {
        dsn: narrow.db.pdo_dsn("vbzcart"),
        rsa_key: Some(dir.path("rsa-private.pem")),
        ..narrow
    };
    main.db.sql(
        "vbzcart",
        &format!(
            "INSERT INTO cust_cards (ID, WhenEnt, CardSafe, Encrypted) VALUES (9999, NOW(), 'V-1111x?/?', UNHEX('{blob}'))"
        ),
    );
    let was = rows(&main.db)["9999"].clone();
    let (code, summary, _) = main.migrate_json(&[]);
    assert_eq!(code, Some(3), "{summary}");
    assert!(
        summary["unreadable_rows"]
            .as_array()
            .unwrap()
            .contains(&json!({"id": "9999", "reason": "unreadable_expiry", "cvv_dropped": false})),
        "{summary}"
    );
    assert_eq!(rows(&main.db)["9999"], was, "left as it was");
}
