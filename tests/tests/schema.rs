//! The SQLite SCD schema holds what `vbzkey seal-customer` produces: load `schema/sqlite.sql`
//! (with Python's built-in sqlite3), store a sealed customer, find it by its clear columns and
//! by key id, and open what comes back out. The schema's CHECKs refuse a clear value in a
//! sealed column.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use vbzkey_e2e::{TempDir, cli};
use vbzkey_protocol::{SecretKey, record};

const SCRIPT: &str = r#"
import json, sqlite3, sys
schema, sealed = sys.argv[1], json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.executescript(open(schema).read())
c, s, k = sealed["clear"], sealed["sealed"], sealed["key_id"]
db.execute("INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) VALUES (?,?,?,?,?,?,?)",
           (sealed["id"], 1, c["card_brand"], c["card_last4"], c["card_expiry"], s["card_number"]["record"], k))
db.execute("INSERT INTO cust_addrs (id, customer_id, street_number, postal_code, country, address, key_id) VALUES (?,?,?,?,?,?,?)",
           (sealed["id"], 1, c["street_number"], c["postal_code"], c["country"], s["address"]["record"], k))
db.execute("INSERT INTO cust_phones (id, customer_id, phone_country_code, phone_area_code, phone, key_id) VALUES (?,?,?,?,?,?)",
           (sealed["id"], 1, c["phone_country_code"], c["phone_area_code"], s["phone"]["record"], k))
try:
    db.execute("INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) VALUES ('x',1,'visa','1111','2027-12','4111111111111111',?)", (k,))
    refused = False
except sqlite3.IntegrityError:
    refused = True
out = {
    "by_last4": db.execute("SELECT id, card_number FROM cust_cards WHERE card_last4 = '1111' AND card_brand = 'visa'").fetchall(),
    "by_postal": db.execute("SELECT id, address FROM cust_addrs WHERE country = 'US' AND postal_code = '10118'").fetchall(),
    "by_area": db.execute("SELECT id FROM cust_phones WHERE phone_country_code = '1' AND phone_area_code = '212'").fetchall(),
    "old_key_rows": db.execute("SELECT count(*) FROM cust_cards WHERE key_id = ?", (k,)).fetchone()[0],
    "clear_value_refused": refused,
}
print(json.dumps(out))
"#;

#[test]
fn sqlite_schema_stores_and_finds_sealed_customers() {
    let dir = TempDir::new("schema");
    let key = SecretKey::generate().unwrap();
    let key_file = dir.path("key.txt");
    std::fs::write(&key_file, format!("{}\n", key.to_text().as_str())).unwrap();
    let customer = r#"{"id":"1002","card":{"number":"4111 1111 1111 1111","expiry":"03/29"},
        "address":{"lines":["350 Fifth Avenue"],"city":"New York","region":"NY","postal_code":"10118","country":"US"},
        "phone":"(212) 736-3100"}"#;
    let sealed = cli(&["seal-customer", "--to", key_file.to_str().unwrap()], customer.as_bytes());
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/sqlite.sql");
    let mut py = Command::new("python3")
        .args(["-c", SCRIPT, schema])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    py.stdin.take().unwrap().write_all(sealed.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["old_key_rows"], 1);
    assert_eq!(v["clear_value_refused"], true, "a card number in clear is refused by the CHECK");
    assert_eq!(v["by_area"][0][0], "1002");
    let open = |ctx: &str, text: &Value| {
        let pt =
            record::open(&key, ctx.as_bytes(), &record::from_text(text.as_str().unwrap()).unwrap())
                .unwrap();
        String::from_utf8(pt.to_vec()).unwrap()
    };
    assert_eq!(open("cust_cards/1002/card_number", &v["by_last4"][0][1]), "4111111111111111");
    assert_eq!(
        open("cust_addrs/1002/address", &v["by_postal"][0][1]),
        "350 Fifth Avenue\nNew York, NY"
    );
}
