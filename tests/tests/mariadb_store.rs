//! The demo store on a real MariaDB (a private server the test starts: Debian's mariadbd, own
//! data directory and socket, no TCP): `schema/mysql.sql` and the store's own tables load; the
//! PHP checkout (pdo_mysql on the socket) seals into the `cust_*` tables with the public key
//! only, all or nothing; the staff page served from the database is searched by its clear
//! columns, and the records it renders open through the real bridge and dongle.

use serde_json::{Value, json};
use vbzkey_e2e::mariadb::MariaDb;
use vbzkey_e2e::store::{DemoStore, listed_orders, sealed_fields};
use vbzkey_e2e::{AdminDongle, Bridge, TempDir, refused};

const PIN: &str = "314159";

fn order(number: &str, id: &str, name: &str, customer: Value) -> Value {
    let mut customer = customer;
    customer["id"] = Value::from(id);
    json!({
        "order": number, "name": name, "shipping": "standard",
        "items": [{"sku": "BK-1", "title": "A book", "quantity": 1}],
        "customer": customer,
    })
}

#[test]
fn the_store_on_mariadb_seals_at_checkout_and_the_staff_page_opens_what_it_reads() {
    let dir = TempDir::new("mariadb-store");
    let dongle = AdminDongle::init(&dir, PIN, &[]);
    let db = MariaDb::start(&dir.path("mariadb"));
    db.create_database("shop");
    let password = dir.path("shop-password");
    db.create_user("shop", "shop-Pw-9", &["ALL PRIVILEGES ON shop.*"], &password);
    let store = DemoStore::new(
        &dir.path("store"),
        &dongle.public_key,
        Some((&db.pdo_dsn("shop"), "shop", &password)),
    );

    // The schema loads (through the store's installer, as its own database user).
    assert_eq!(store.install().trim(), "tables created");
    let tables: Vec<String> = db.sql("shop", "SHOW TABLES").lines().map(str::to_string).collect();
    for t in [
        "cust_addrs",
        "cust_bank_accounts",
        "cust_cards",
        "cust_phones",
        "customers",
        "order_items",
        "orders",
    ] {
        assert!(tables.iter().any(|x| x == t), "{t} missing: {tables:?}");
    }
    let clear = db.try_sql(
        Some("shop"),
        "INSERT INTO cust_cards (id, customer_id, card_brand, card_last4, card_expiry, card_number, key_id) \
         VALUES ('x', 1, 'visa', '1111', '2027-12', '4111111111111111', '0123456789abcdef')",
    );
    assert!(
        clear.as_ref().is_err_and(|e| e.contains("chk_cards_sealed")),
        "a clear card number is refused: {clear:?}"
    );

    // Checkouts seal into it.
    let ada = json!({"card": {"number": "4111 1111 1111 1111", "expiry": "12/27"},
        "address": {"lines": ["12 St James's Square"], "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
        "phone": "+44 20 7946 0958", "email": "ada@example.com"});
    let grace = json!({"card": {"number": "5555 5555 5555 4444", "expiry": "03/29"},
        "address": {"lines": ["350 Fifth Avenue", "Suite 3300"], "city": "New York", "region": "NY", "postal_code": "10118", "country": "US"},
        "phone": "(212) 736-3100", "email": "grace@example.org"});
    let alan = json!({"card": {"number": "4012 8888 0002 1111", "expiry": "06/28"},
        "address": {"lines": ["Hollymeade", "Adlington Road"], "city": "Wilmslow", "postal_code": "SK9 4LZ", "country": "GB"},
        "phone": "+44 1625 500 000", "email": "alan@example.com"});
    for o in [
        order("#3101", "3001", "Ada Lovelace", ada),
        order("#3102", "3002", "Grace Hopper", grace.clone()),
        order("#3103", "3003", "Alan Turing", alan),
    ] {
        let out = store.checkout(&o);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("sealed for key {}", dongle.public_key.key_id())), "{said}");
    }
    // All or nothing: a CVV is refused before anything is written, and an order that fails in
    // the database (a duplicate order number) leaves none of its sealed rows behind.
    let mut with_cvv = order("#3104", "3004", "Mallory", grace.clone());
    with_cvv["customer"]["card"]["cvv"] = Value::from("123");
    let out = store.checkout(&with_cvv);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cvv_refused"));
    let out = store.checkout(&order("#3101", "3005", "Duplicate Order", grace));
    assert!(!out.status.success(), "a duplicate order number fails");
    assert_eq!(
        db.sql("shop", "SELECT COUNT(*) FROM cust_cards WHERE id IN ('3004', '3005')").trim(),
        "0",
        "no sealed row of a failed checkout stays"
    );
    assert_eq!(db.sql("shop", "SELECT COUNT(*) FROM orders").trim(), "3");
    // Only sealed text and clear search columns are stored.
    for (table, column) in
        [("cust_cards", "card_number"), ("cust_addrs", "address"), ("cust_phones", "phone")]
    {
        assert_eq!(
            db.sql(
                "shop",
                &format!("SELECT COUNT(*) FROM {table} WHERE {column} NOT LIKE 'vk1.%'")
            )
            .trim(),
            "0"
        );
    }
    let dump = db.sql(
        "shop",
        "SELECT * FROM cust_cards; SELECT * FROM cust_addrs; SELECT * FROM cust_phones",
    );
    for secret in
        ["4111111111111111", "5555555555554444", "St James", "Fifth Avenue", "+442079460958"]
    {
        assert!(!dump.contains(secret), "{secret} is in the database");
    }

    // The staff page reads them, searched by the clear columns.
    let server = store.serve("http://127.0.0.1:1");
    let bridge = Bridge::start(
        &dir,
        &format!(
            "allowed_origins = [\"{}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\n\
             trust_on_first_use = \"{}\"\n",
            server.origin(),
            dongle.fw.socket.display(),
            dir.path("known-dongle.pub").display()
        ),
    );
    store.set_bridge(&bridge.origin());
    for (query, want) in [
        ("visa%201111", vec!["#3101", "#3103"]),
        ("1111", vec!["#3101", "#3103"]),
        ("mastercard%201111", vec![]),
        ("10118", vec!["#3102"]),
        ("sk9%204lz", vec!["#3103"]),
        ("GRACE%40example.org", vec!["#3102"]),
    ] {
        let page = server.get(&format!("/?q={query}"));
        assert_eq!(page.status, 200, "{}", page.text());
        assert_eq!(listed_orders(&page.text()), want, "search {query}");
    }
    let page = server.get("/");
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains(&format!("connect-src {}", bridge.origin())), "{csp}");
    let fields = sealed_fields(&page.text());
    assert_eq!(fields.len(), 9, "three customers' card, address and phone");

    // … and they open through the bridge and the dongle.
    let origin = server.origin();
    let items: Vec<Value> = fields
        .iter()
        .map(|(record, context)| json!({"record": record, "context": context}))
        .collect();
    let body = json!({ "items": items }).to_string();
    // `init` leaves the dongle locked: nothing opens until the staff PIN.
    assert_eq!(bridge.post("/v1/unseal", &origin, &body).status, 423, "locked until the PIN");
    assert_eq!(bridge.post("/v1/unlock", &origin, &json!({ "pin": PIN }).to_string()).status, 200);
    let answer = bridge.post("/v1/unseal", &origin, &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let opened: Vec<(String, String)> = fields
        .iter()
        .zip(answer.json()["results"].as_array().unwrap())
        .map(|((_, context), r)| {
            (context.clone(), r["value"].as_str().unwrap_or("(not opened)").to_string())
        })
        .collect();
    for (context, value) in [
        ("cust_cards/3001/card_number", "4111111111111111"),
        ("cust_addrs/3002/address", "350 Fifth Avenue\nSuite 3300\nNew York, NY"),
        ("cust_phones/3002/phone", "+12127363100"),
        ("cust_cards/3003/card_number", "4012888800021111"),
        ("cust_addrs/3003/address", "Hollymeade\nAdlington Road\nWilmslow"),
    ] {
        assert!(
            opened.contains(&(context.to_string(), value.to_string())),
            "{context}: {opened:?}"
        );
    }

    // `vbzkey-admin rewrap` on this database refuses bad input clearly and changes nothing:
    // a wrong password, a table it may not see, a damaged record in a sealed column.
    let admin_password = dir.path("admin-password");
    db.create_user(
        "vbzkey",
        "admin-Pw-3",
        &["SELECT, UPDATE ON shop.cust_phones"],
        &admin_password,
    );
    let wrong_password = dir.path("wrong-password");
    std::fs::write(&wrong_password, "not-the-password\n").unwrap();
    db.sql(
        "shop",
        "INSERT INTO cust_phones (id, customer_id, phone_country_code, phone, key_id) \
         VALUES ('9999', 9999, '44', 'vk1.AAAA', '0123456789abcdef')",
    );
    let before = db.sql("shop", "SELECT id, phone FROM cust_phones ORDER BY id");
    let rewrap = |url: &str, table: &str| {
        dongle.admin(&["rewrap", "--db", url, "--table", table, "--column", "phone"])
    };
    refused(
        rewrap(&db.admin_url("vbzkey", "shop", &wrong_password), "cust_phones"),
        "Access denied",
    );
    refused(rewrap(&db.admin_url("vbzkey", "shop", &admin_password), "cust_cards"), "cust_cards");
    refused(
        rewrap(&db.admin_url("vbzkey", "shop", &admin_password), "cust_phones"),
        "cust_phones row 9999",
    );
    assert_eq!(
        db.sql("shop", "SELECT id, phone FROM cust_phones ORDER BY id"),
        before,
        "nothing changed"
    );
}
