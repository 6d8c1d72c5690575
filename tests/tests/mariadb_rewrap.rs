//! `vbzkey-admin rewrap` directly on a MariaDB table (a private server started by the test:
//! Debian's mariadbd, own data directory and socket, no TCP): 10,000 rows of `cust_cards`
//! re-wrapped to a new key, with a checkout landing in the middle of a batch, the run killed
//! from outside and then at every step of a batch (after reading, after the dongle answered,
//! half-way through the batch's transaction, after its commit), and finished by a last run.
//! Every row then opens under the new key to its value; none is lost or doubled; the
//! checkout's card is not overwritten by the re-wrap.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mysql::TxOpts;
use mysql::prelude::Queryable;
use serde_json::json;
use vbzkey_e2e::mariadb::MariaDb;
use vbzkey_e2e::store::DemoStore;
use vbzkey_e2e::{AdminDongle, TempDir, bin, ok};
use vbzkey_protocol::record::{self, Record};
use vbzkey_protocol::{KeyId, PublicKey};

const N: usize = 10_000;
const BATCH: usize = 64;
const PASSWORD: &str = "rewrap-Pw-7";
const FAST: &[&str] = &["--records-per-minute", "1000000000"];
/// The row whose lock stalls the re-wrap mid-batch, and the row a checkout changes meanwhile
/// (later in the same batch of 64).
const LOCKED: &str = "100200";
const CHECKED_OUT: &str = "100230";

fn key_id_of(text: &str) -> KeyId {
    Record::parse(&record::from_text(text).unwrap()).unwrap().key_id()
}

fn card_number(i: usize) -> String {
    // 16 digits, Luhn-valid, distinct per row.
    let body = format!("555555{i:09}");
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(k, c)| {
            let d = c.to_digit(10).unwrap();
            if k % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// id -> (record, key_id column), in id order.
fn rows(db: &MariaDb) -> BTreeMap<String, (String, String)> {
    db.sql("shop", "SELECT id, card_number, key_id FROM cust_cards ORDER BY id")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Per-batch transactions: every page of `BATCH` rows (in id order) is wholly on the old key
/// or wholly on the new one, but for the row the checkout changed. Returns rows on the new key.
fn assert_whole_batches(db: &MariaDb, new: KeyId) -> usize {
    let all = rows(db);
    let mut on_new = 0;
    for (p, page) in all.iter().collect::<Vec<_>>().chunks(BATCH).enumerate() {
        let states: Vec<bool> = page
            .iter()
            .filter(|(id, _)| id.as_str() != CHECKED_OUT)
            .map(|(id, (rec, key_col))| {
                let is_new = key_id_of(rec) == new;
                assert_eq!(
                    *key_col == new.to_string(),
                    is_new,
                    "row {id}: key_id column and record agree"
                );
                is_new
            })
            .collect();
        assert!(
            states.iter().all(|s| *s) || states.iter().all(|s| !*s),
            "page {p} is half re-wrapped: a batch was not one transaction"
        );
        on_new += states.iter().filter(|s| **s).count();
    }
    on_new
}

#[test]
fn rewrap_10000_rows_in_mariadb_survives_kills_and_never_overwrites_a_concurrent_checkout() {
    let dir = TempDir::new("mariadb-rewrap");
    let dongle = AdminDongle::init(&dir, "246813", FAST);
    let old_pk = dongle.public_key.clone();
    let db = MariaDb::start(&dir.path("mariadb"));
    // The store's application user owns its database; the re-wrap runs as a user that may
    // only read and update the sealed table.
    db.create_database("shop");
    let shop_password = dir.path("shop-password");
    db.create_user("shop", "shop-Pw-5", &["ALL PRIVILEGES ON shop.*"], &shop_password);
    let store = DemoStore::new(
        &dir.path("store"),
        &old_pk,
        Some((&db.pdo_dsn("shop"), "shop", &shop_password)),
    );
    store.install();
    let password_file = dir.path("db-password");
    db.create_user("vbzkey", PASSWORD, &["SELECT, UPDATE ON shop.cust_cards"], &password_file);
    let url = db.admin_url("vbzkey", "shop", &password_file);

    // 10,000 cards sealed to the first key, as checkouts would have stored them.
    let mut values = BTreeMap::new();
    let mut insert = String::new();
    for i in 0..N {
        let id = format!("{}", 100_000 + i);
        let value = card_number(i);
        let rec = record::to_text(
            &record::seal(
                &old_pk,
                format!("cust_cards/{id}/card_number").as_bytes(),
                value.as_bytes(),
            )
            .unwrap(),
        );
        if i % 1000 == 0 {
            insert.push_str(
                "INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) VALUES\n",
            );
        }
        insert.push_str(&format!(
            "('{id}', {id}, 'mastercard', '{}', '2030-01', '{rec}', '{}'){}\n",
            &value[12..],
            old_pk.key_id(),
            if i % 1000 == 999 { ";" } else { "," }
        ));
        values.insert(id, value);
    }
    db.sql("shop", &insert);
    assert_eq!(rows(&db).len(), N);

    let new_pk = PublicKey::from_text(ok(dongle.admin(&["rotate"])).trim()).unwrap();
    let new = new_pk.key_id();
    let rewrap = |crash_at: Option<&str>| {
        let mut cmd = Command::new(bin("vbzkey-admin"));
        cmd.args(dongle.admin_options())
            .args(["rewrap", "--db", &url])
            .args([
                "--table",
                "cust_cards",
                "--column",
                "card_number",
                "--batch",
                &BATCH.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(point) = crash_at {
            cmd.env("VBZKEY_DANGEROUS_CRASH_AT", point);
        }
        cmd.spawn().expect("vbzkey-admin rewrap")
    };

    // 1. A store transaction holds row LOCKED; the re-wrap stalls on it inside its batch.
    let mut store_db = db.connect("shop", "shop-Pw-5", "shop");
    let mut store_tx = store_db.start_transaction(TxOpts::default()).unwrap();
    store_tx.exec_drop("SELECT id FROM cust_cards WHERE id = ? FOR UPDATE", (LOCKED,)).unwrap();
    let mut first = rewrap(None);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (tx, progress) = mpsc::channel();
    let stderr = first.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    while db.lock_waits() == 0 {
        assert!(
            Instant::now() < deadline,
            "the re-wrap never reached the locked row: {:?}",
            progress.try_iter().collect::<Vec<_>>()
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the re-wrap ended early: {:?}",
            progress.try_iter().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // 2. Meanwhile the store's PHP checkout gives customer CHECKED_OUT (same batch, not
    //    locked) a new card, sealed to the key the store still has: the old one.
    let checkout_value = "4111111111111111";
    let out = store.checkout(&json!({
        "order": "#9001", "name": "Checkout During Rewrap", "shipping": "standard",
        "items": [{"sku": "X-1", "title": "Anything", "quantity": 1}],
        "customer": {"id": CHECKED_OUT, "card": {"number": "4111 1111 1111 1111", "expiry": "12/30"}},
    }));
    assert!(out.status.success(), "checkout: {}", String::from_utf8_lossy(&out.stderr));
    let checkout_rec = rows(&db)[CHECKED_OUT].0.clone();
    assert_eq!(key_id_of(&checkout_rec), old_pk.key_id());
    values.insert(CHECKED_OUT.into(), checkout_value.into());
    store_tx.commit().unwrap();

    // 3. Killed from outside once it is a third of the way.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = progress.recv_timeout(deadline - Instant::now()).expect("progress lines");
        let done: usize = line
            .strip_prefix("rewrap: ")
            .and_then(|l| l.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if done >= N / 3 {
            break;
        }
    }
    first.kill().unwrap();
    assert_eq!(first.wait().unwrap().signal(), Some(9), "killed in the middle");
    let log = reader.join().unwrap();
    assert!(log.contains("rows ("), "plain progress lines on a pipe: {log}");
    let after_kill = assert_whole_batches(&db, new);
    assert!(after_kill > 0 && after_kill < N, "the kill landed in the middle ({after_kill} done)");
    let (rec, _) = &rows(&db)[CHECKED_OUT];
    assert_eq!(rec, &checkout_rec, "the re-wrap did not overwrite the concurrent checkout");

    // 4. Killed at every step of a batch; each time only whole batches are on the new key.
    let mut done = after_kill;
    for step in ["read", "rewrapped", "half-written", "committed"] {
        let out = rewrap(Some(&format!("rewrap-db:{step}:2"))).wait_with_output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "crash at {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let now = assert_whole_batches(&db, new);
        assert!(now >= done, "crash at {step} lost re-wrapped rows ({done} -> {now})");
        done = now;
    }

    // 5. The last run finishes; one more re-wraps nothing.
    let out = rewrap(None).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("cust_cards.card_number: {N} rows, ")), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("rewrap: 10000/10000 rows (100%), ") && l.ends_with(", done")),
        "{err}"
    );
    let out = rewrap(None).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{N} rows, 0 re-wrapped")), "{err}");

    // 6. Every row once, on the new key, opening to its value (the checkout's for its row).
    let all = rows(&db);
    assert_eq!(all.len(), N, "no row lost or doubled");
    assert_eq!(all.keys().collect::<Vec<_>>(), values.keys().collect::<Vec<_>>());
    let items: Vec<(String, String)> = all
        .iter()
        .map(|(id, (rec, key_col))| {
            assert_eq!(key_id_of(rec), new, "row {id} is on the new key");
            assert_eq!(key_col, &new.to_string());
            (format!("cust_cards/{id}/card_number"), rec.clone())
        })
        .collect();
    dongle.unlock();
    let opened = dongle.fw.unseal_all(&items);
    for ((id, value), got) in values.iter().zip(opened) {
        assert_eq!(got.as_deref(), Ok(value.as_str()), "row {id}");
    }
    // The retire check reads the same table: nothing is left on the old key.
    ok(dongle.admin(&[
        "retire",
        &old_pk.key_id().to_string(),
        "--db",
        &url,
        "--column",
        "cust_cards.card_number",
    ]));
}
