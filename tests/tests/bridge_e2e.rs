//! The bridge end to end: the real firmware and bridge binaries as processes, records sealed
//! by the real CLI, and raw HTTP as a browser would send it.

use serde_json::{Value, json};
use vbzkey_e2e::{Bridge, Firmware, TempDir, cli, http};

const PIN: &str = "135790";
const STORE: &str = "http://127.0.0.1:8080";

/// `n` records sealed with the CLI to `to`, as (context, record, value).
fn seal_with_cli(to: &str, n: usize) -> Vec<(String, String, String)> {
    (0..n)
        .map(|i| {
            let ctx = format!("cust_cards/{i}/card_number");
            let value = format!("4111 0000 {i:04}");
            let rec =
                cli(&["seal", "--to", to, "--context", &ctx], value.as_bytes()).trim().to_string();
            (ctx, rec, value)
        })
        .collect()
}

fn unseal_body(records: &[(String, String, String)]) -> String {
    let items: Vec<Value> =
        records.iter().map(|(c, r, _)| json!({ "record": r, "context": c })).collect();
    json!({ "items": items }).to_string()
}

fn assert_all_open(bridge: &Bridge, origin: &str, records: &[(String, String, String)]) {
    let r = bridge.post("/v1/unseal", origin, &unseal_body(records));
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), records.len());
    for (res, (_, _, value)) in results.iter().zip(records) {
        assert_eq!(res["value"], *value);
    }
}

/// The bridge on the emulated dongle at `socket`, knowing it by trust on first use (the file
/// beside the socket).
fn dongle_config(socket: &std::path::Path) -> String {
    format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\ntrust_on_first_use = \"{}\"\n",
        socket.display(),
        socket.with_file_name("known-dongle.pub").display()
    )
}

fn with_dongle(name: &str) -> (TempDir, Firmware, Bridge, String) {
    let dir = TempDir::new(name);
    let fw = Firmware::start(&dir.path("state"), &dir.path("dongle.sock"), &[]);
    let pk = fw.init(PIN.as_bytes()).to_text();
    let bridge = Bridge::start(&dir, &dongle_config(&fw.socket));
    (dir, fw, bridge, pk)
}

#[test]
fn dongle_method_unseals_100_cli_sealed_records_over_http() {
    let (_dir, fw, bridge, pk) = with_dongle("dongle100");
    let records = seal_with_cli(&pk, 100);
    // Init leaves the dongle locked, and so does a restart, as after plugging it in.
    let mut fw = fw;
    fw.restart();
    let st = bridge.status();
    assert_eq!(st["method"], "dongle");
    assert_eq!(st["state"], "locked");
    assert_eq!(st["serial"], "E2E00001");
    // No workstation paired: the status says so, loudly.
    assert_eq!(st["custody"], "pin_only");
    assert!(st["detail"].as_str().unwrap().contains("protected by its PIN only"), "{st}");
    assert_eq!(st["keys"][0]["public_key"], pk);
    let locked = bridge.post("/v1/unseal", STORE, &unseal_body(&records));
    assert_eq!(locked.status, 423);
    let r = bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(bridge.status()["state"], "unlocked");
    assert_all_open(&bridge, STORE, &records);
    // Per-item results: a tampered record and a moved one fail alone.
    let mut mixed = records[..3].to_vec();
    mixed[1].0 = "cust_cards/999/card_number".into();
    mixed[2].1 = "vk1.garbage".into();
    let r = bridge.post("/v1/unseal", STORE, &unseal_body(&mixed)).json();
    assert_eq!(r["results"][0]["value"], records[0].2);
    assert_eq!(r["results"][1]["error"], "tag_mismatch");
    assert_eq!(r["results"][2]["error"], "bad_base64");
    assert_eq!(bridge.post("/v1/lock", STORE, "{}").status, 200);
    assert_eq!(bridge.post("/v1/unseal", STORE, &unseal_body(&records[..1])).status, 423);
}

#[test]
fn passphrase_method_unlocks_only_on_the_bridge_page() {
    let dir = TempDir::new("passphrase");
    let desc = dir.path("passphrase-key.json");
    let pass = "staple battery horse correct";
    cli(
        &["passphrase-key", "--passphrase-file", "-", "-o", desc.to_str().unwrap()],
        pass.as_bytes(),
    );
    let records = seal_with_cli(desc.to_str().unwrap(), 100);
    let config = format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"passphrase\"\ndescriptor = \"{}\"\n",
        desc.display()
    );
    let bridge = Bridge::start(&dir, &config);
    let st = bridge.status();
    assert_eq!((st["method"].as_str(), st["state"].as_str()), (Some("passphrase"), Some("locked")));
    assert_eq!(st["unlock_on_bridge_page"], true);
    // A store page may not collect the passphrase.
    let r = bridge.post("/v1/unlock", STORE, &json!({ "pin": pass }).to_string());
    assert_eq!((r.status, r.json()["error"].as_str()), (403, Some("unlock_on_bridge_page")));
    let own = bridge.origin();
    let wrong = bridge.post(
        "/v1/unlock",
        &own,
        &json!({ "passphrase": "a wrong passphrase of length" }).to_string(),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(
        bridge.post("/v1/unlock", &own, &json!({ "passphrase": pass }).to_string()).status,
        200
    );
    assert_all_open(&bridge, STORE, &records);
    assert_eq!(bridge.post("/v1/lock", STORE, "{}").status, 200);
    assert_eq!(bridge.post("/v1/unseal", STORE, &unseal_body(&records[..1])).status, 423);
    // The unlock page and the client script are served.
    let host = format!("127.0.0.1:{}", bridge.port);
    let page = http(bridge.port, "GET", "/unlock", &[("Host", &host)], b"");
    assert!(page.status == 200 && page.text().contains("Unlock vbzkey"));
    let js = http(bridge.port, "GET", "/vbzkey.js", &[("Host", &host)], b"");
    assert!(js.status == 200 && js.text().contains("data-vbzkey-record"));
}

#[test]
fn keyfile_method_unseals_100_records() {
    let dir = TempDir::new("keyfile");
    let key = dir.path("key.json");
    let pass = "workstation key file pass";
    cli(
        &["keygen", "--encrypt", "--passphrase-file", "-", "-o", key.to_str().unwrap()],
        pass.as_bytes(),
    );
    let records = seal_with_cli(key.to_str().unwrap(), 100);
    let config = format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"keyfile\"\npath = \"{}\"\n",
        key.display()
    );
    let bridge = Bridge::start(&dir, &config);
    assert_eq!(bridge.status()["method"], "keyfile");
    assert_eq!(
        bridge
            .post("/v1/unlock", &bridge.origin(), &json!({ "passphrase": pass }).to_string())
            .status,
        200
    );
    assert_all_open(&bridge, STORE, &records);
    // The key-file method has the dongle's rate limit: pages of 100 records fit the default
    // burst of 300 three times; the fourth is refused (10 records a second come back).
    assert_all_open(&bridge, STORE, &records);
    assert_all_open(&bridge, STORE, &records);
    let r = bridge.post("/v1/unseal", STORE, &unseal_body(&records));
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"], "rate_limited");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn hostile_requests_get_the_right_status_and_no_plaintext() {
    let (_dir, _fw, bridge, pk) = with_dongle("security");
    let records = seal_with_cli(&pk, 3);
    let body = unseal_body(&records);
    let port = bridge.port;
    let host = format!("127.0.0.1:{port}");
    let no_plaintext = |name: &str, r: &vbzkey_e2e::HttpResponse| {
        let text = r.text();
        assert!(!text.contains("4111"), "{name}: plaintext leaked: {text}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{name}");
    };
    // (name, headers, body, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "disallowed origin",
            vec![
                ("Host", &host),
                ("Origin", "https://evil.example"),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            403,
            "origin_not_allowed",
        ),
        (
            "null origin",
            vec![("Host", &host), ("Origin", "null"), ("Content-Type", "application/json")],
            body.clone(),
            403,
            "origin_not_allowed",
        ),
        (
            "missing origin",
            vec![("Host", &host), ("Content-Type", "application/json")],
            body.clone(),
            403,
            "origin_required",
        ),
        (
            "rebinding host",
            vec![
                ("Host", "evil.example:7878"),
                ("Origin", STORE),
                ("Content-Type", "application/json"),
            ],
            body.clone(),
            403,
            "bad_host",
        ),
        (
            "missing host",
            vec![("Origin", STORE), ("Content-Type", "application/json")],
            body.clone(),
            403,
            "bad_host",
        ),
        (
            "form post",
            vec![
                ("Host", &host),
                ("Origin", STORE),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.clone(),
            415,
            "json_required",
        ),
        (
            "text/plain",
            vec![("Host", &host), ("Origin", STORE), ("Content-Type", "text/plain")],
            body.clone(),
            415,
            "json_required",
        ),
        (
            "malformed JSON",
            vec![("Host", &host), ("Origin", STORE), ("Content-Type", "application/json")],
            "{\"items\": [".into(),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            vec![("Host", &host), ("Origin", STORE), ("Content-Type", "application/json")],
            "{\"items\": [], \"x\": 1}".into(),
            400,
            "malformed_json",
        ),
        (
            "empty batch",
            vec![("Host", &host), ("Origin", STORE), ("Content-Type", "application/json")],
            "{\"items\": []}".into(),
            400,
            "bad_batch_size",
        ),
        (
            "oversized body",
            vec![("Host", &host), ("Origin", STORE), ("Content-Type", "application/json")],
            format!("{{\"items\": [{}]}}", "\"x\",".repeat(400_000)),
            413,
            "body_too_large",
        ),
    ];
    for (name, headers, body, status, code) in cases {
        let r = http(port, "POST", "/v1/unseal", &headers, body.as_bytes());
        assert_eq!(r.status, status, "{name}: {}", r.text());
        assert_eq!(r.json()["error"], code, "{name}");
        no_plaintext(name, &r);
        if status == 403 && name != "rebinding host" && name != "missing host" {
            assert_eq!(
                r.header("access-control-allow-origin"),
                None,
                "{name}: no CORS for strangers"
            );
        }
    }
    let too_many: Vec<_> = std::iter::repeat_n(records[0].clone(), 257).collect();
    let r = bridge.post("/v1/unseal", STORE, &unseal_body(&too_many));
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("bad_batch_size")));

    // Locked dongle, then a wrong PIN, then the right one.
    assert_eq!(bridge.post("/v1/lock", STORE, "{}").status, 200);
    let r = bridge.post("/v1/unseal", STORE, &body);
    assert_eq!((r.status, r.json()["error"].as_str()), (423, Some("locked")));
    no_plaintext("locked", &r);
    let r = bridge.post("/v1/unlock", STORE, &json!({ "pin": "000000" }).to_string());
    assert_eq!(
        (r.status, r.json()["error"].as_str(), r.json()["tries_left"].as_u64()),
        (401, Some("wrong_pin"), Some(7))
    );
    no_plaintext("wrong pin", &r);
    assert_eq!(bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string()).status, 200);
    let ok = bridge.post("/v1/unseal", STORE, &body);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some(STORE));
    assert_eq!(ok.header("cache-control"), Some("no-store"));

    // Preflights: answered for the allowed origin only, Private Network Access included.
    let pre = |origin: &str| {
        http(
            port,
            "OPTIONS",
            "/v1/unseal",
            &[
                ("Host", &host),
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
                ("Access-Control-Request-Private-Network", "true"),
            ],
            b"",
        )
    };
    let good = pre(STORE);
    assert_eq!(good.status, 204);
    assert_eq!(good.header("access-control-allow-origin"), Some(STORE));
    assert_eq!(good.header("access-control-allow-private-network"), Some("true"));
    assert!(
        good.header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase()
            .contains("content-type")
    );
    let bad = pre("https://evil.example");
    assert_eq!(bad.status, 403);
    assert_eq!(bad.header("access-control-allow-origin"), None);
    assert_eq!(bad.header("access-control-allow-private-network"), None);
    // Status from a stranger's page is refused too, with or without an Origin: an `<img>` or
    // a no-cors fetch sends no Origin but says `Sec-Fetch-Site: cross-site`.
    let r = http(
        port,
        "GET",
        "/v1/status",
        &[("Host", &host), ("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(r.status, 403);
    for site in [Some("cross-site"), Some("same-site"), None] {
        let mut h = vec![("Host", host.as_str())];
        h.extend(site.map(|s| ("Sec-Fetch-Site", s)));
        let r = http(port, "GET", "/v1/status", &h, b"");
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (403, Some("origin_required")),
            "{site:?}"
        );
    }
    // The bridge's own page and a typed address are answered; nothing may frame the bridge.
    for site in ["same-origin", "none"] {
        let r = http(port, "GET", "/v1/status", &[("Host", &host), ("Sec-Fetch-Site", site)], b"");
        assert_eq!(r.status, 200, "{site}");
    }
    let page = http(port, "GET", "/unlock", &[("Host", &host)], b"");
    assert_eq!(page.header("content-security-policy"), Some("frame-ancestors 'none'"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
}

/// A page polling the status (allowed or not) is not key use: the dongle still locks itself
/// after its idle time, and a foreign page's requests never reach it.
#[test]
fn polling_the_status_does_not_keep_the_dongle_unlocked() {
    let dir = TempDir::new("idle-poll");
    let fw =
        Firmware::start(&dir.path("state"), &dir.path("dongle.sock"), &["--idle-lock-secs", "3"]);
    let pk = fw.init(PIN.as_bytes()).to_text();
    let bridge = Bridge::start(&dir, &dongle_config(&fw.socket));
    let records = seal_with_cli(&pk, 2);
    assert_eq!(bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string()).status, 200);
    assert_all_open(&bridge, STORE, &records);
    let host = format!("127.0.0.1:{}", bridge.port);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut polls = 0;
    while std::time::Instant::now() < until {
        // A foreign page's `<img src=…/v1/status>`: refused by the bridge.
        let r = http(
            bridge.port,
            "GET",
            "/v1/status",
            &[("Host", &host), ("Sec-Fetch-Site", "cross-site")],
            b"",
        );
        assert_eq!(r.status, 403);
        // The store page's own polling: answered, and still not key use.
        let r = http(bridge.port, "GET", "/v1/status", &[("Host", &host), ("Origin", STORE)], b"");
        assert_eq!(r.status, 200);
        polls += 1;
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(polls > 10);
    assert_eq!(bridge.status()["state"], "locked", "the idle lock ran despite the polling");
    assert_eq!(bridge.post("/v1/unseal", STORE, &unseal_body(&records)).status, 423);
}

#[test]
fn unplugging_the_dongle_reports_absent_then_recovers_without_restarting_the_bridge() {
    let (_dir, mut fw, bridge, pk) = with_dongle("unplug");
    let records = seal_with_cli(&pk, 5);
    assert_eq!(bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string()).status, 200);
    assert_all_open(&bridge, STORE, &records);

    fw.kill();
    let st = bridge.status();
    assert_eq!(st["state"], "absent");
    assert!(st["detail"].as_str().unwrap().contains("no dongle"), "{st}");
    let r = bridge.post("/v1/unseal", STORE, &unseal_body(&records));
    assert_eq!((r.status, r.json()["error"].as_str()), (503, Some("dongle_absent")));
    assert!(!r.text().contains("4111"));

    fw.restart();
    assert_eq!(bridge.status()["state"], "locked", "a replugged dongle starts locked");
    assert_eq!(bridge.post("/v1/unseal", STORE, &unseal_body(&records)).status, 423);
    assert_eq!(bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string()).status, 200);
    assert_all_open(&bridge, STORE, &records);
}

/// A dongle that is not the one the bridge knows (a rogue device on the same USB id, or a
/// swapped emulator) gets nothing: not the PIN, not a record. Pinned, or learnt on first use.
#[test]
fn a_dongle_with_another_device_key_is_never_sent_the_pin() {
    let dir = TempDir::new("rogue");
    let real = Firmware::start(&dir.path("real"), &dir.path("real.sock"), &[]);
    let pk = real.init(PIN.as_bytes()).to_text();
    let records = seal_with_cli(&pk, 3);
    let rogue_dir = TempDir::new("rogue-b");
    let mut rogue = Firmware::start(&rogue_dir.path("state"), &dir.path("rogue.sock"), &[]);
    rogue.init(PIN.as_bytes());
    let key_of = |fw: &Firmware| match fw.request(&vbzkey_protocol::wire::Request::DeviceKey) {
        vbzkey_protocol::wire::Response::DeviceKey(k) => vbzkey_protocol::PublicKey::from_bytes(k),
        other => panic!("{other:?}"),
    };
    let real_key = key_of(&real);
    // Pinned to the real dongle's key, pointed at the rogue one.
    let config = format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\ndevice_key = \"{real_key}\"\n",
        rogue.socket.display()
    );
    let bridge = Bridge::start(&dir, &config);
    let st = bridge.status();
    assert_eq!(st["state"], "absent");
    assert!(st["detail"].as_str().unwrap().contains("not the one this computer knows"), "{st}");
    let r = bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string());
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("not the one this computer knows"), "{}", r.text());
    // The rogue dongle never saw a PIN: no unlock line of either kind in its log.
    let log = match rogue.request(&vbzkey_protocol::wire::Request::AuditTail { max: 100 }) {
        vbzkey_protocol::wire::Response::AuditTail { entries, .. } => {
            entries.into_iter().map(|e| e.line).collect::<Vec<_>>().join("\n")
        }
        other => panic!("{other:?}"),
    };
    assert!(!log.contains(" unlock"), "the PIN reached the rogue dongle:\n{log}");
    drop(bridge);

    // Trust on first use: the first dongle's key is recorded, then a swapped one is refused.
    let known = dir.path("known.pub");
    let tofu = format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\ntrust_on_first_use = \"{}\"\n",
        dir.path("real.sock").display(),
        known.display()
    );
    let bridge = Bridge::start(&TempDir::new("rogue-c"), &tofu);
    assert_eq!(bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string()).status, 200);
    assert_all_open(&bridge, STORE, &records);
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(recorded.contains(&real_key.to_text()), "{recorded}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&known).unwrap().permissions().mode() & 0o777, 0o600);
    // Swap: the rogue firmware now answers on the real dongle's socket.
    drop(real);
    rogue.kill();
    let _swapped = Firmware::start(&rogue_dir.path("state"), &dir.path("real.sock"), &[]);
    let r = bridge.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string());
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("not the one this computer knows"), "{}", r.text());
}

/// Without a device key or a trust-on-first-use file, the bridge does not start.
#[test]
fn a_dongle_bridge_without_a_device_key_does_not_start() {
    let dir = TempDir::new("no-device-key");
    let path = dir.path("bridge.toml");
    std::fs::write(
        &path,
        format!("allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:/nowhere\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(vbzkey_e2e::bin("vbzkey-bridge"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("device_key") && err.contains("trust_on_first_use"), "{err}");
}
