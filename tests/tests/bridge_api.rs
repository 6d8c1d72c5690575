//! The bridge's HTTP API as a client sees it, through the real binary and an emulated dongle:
//! what a paired dongle says to a bridge configured without its `host_key`, and what a body of
//! the wrong shape is told (docs/API.md, docs/bridge-openapi.json).

use serde_json::{Value, json};
use vbzkey_e2e::{ADMIN_PIN, AdminDongle, Bridge, Firmware, TempDir, admin_pressing, ok};

const STORE: &str = "http://127.0.0.1:8080";
const PIN: &str = "13579246";

#[test]
fn a_paired_dongle_without_host_key_in_the_config_names_the_setting_in_status_and_unlock() {
    let dir = TempDir::new("api-no-host-key");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let (pin, admin_pin) = (dir.path("pin"), dir.path("admin-pin"));
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    std::fs::write(&admin_pin, [ADMIN_PIN, b"\n"].concat()).unwrap();
    let target = fw.target();
    let admin_pin = admin_pin.to_str().unwrap().to_string();
    let admin = |args: &[&str]| {
        let mut all = vec!["--dongle", target.as_str(), "--admin-pin-file", admin_pin.as_str()];
        all.extend(args);
        admin_pressing(&all, Some(&fw.button))
    };
    ok(admin(&["init", "--pin-file", pin.to_str().unwrap(), "--new-admin-pin-file", &admin_pin]));
    let key = dir.path("bridge.key");
    let lines = ok(admin(&["pair", "--new-host-key", key.to_str().unwrap(), "--label", "staff"]));
    let lines: toml::Table = toml::from_str(&lines).unwrap();
    let device = lines["device_key"].as_str().unwrap();

    // The pair lines pasted, except host_key: an easy line to miss.
    let b = Bridge::start(
        &TempDir::new("api-no-host-key-bridge"),
        &format!(
            "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\n\
             transport = \"unix:{}\"\ndevice_key = \"{device}\"\n",
            fw.socket.display()
        ),
    );
    let status = b.status();
    assert_ne!(status["state"], "unlocked", "{status}");
    assert_eq!(status["state"], "not_paired", "{status}");
    let detail = status["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("host_key") && detail.contains("[method]"), "{status}");

    let r = b.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string());
    assert_ne!(r.status, 502, "{}", r.text());
    let body: Value = r.json();
    assert_eq!((r.status, body["error"].as_str()), (503, Some("not_paired")), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("host_key") && message.contains("[method]"), "{message}");
}

/// An unpaired emulated dongle with its staff PIN, and the real bridge in front of it.
fn dongle_and_bridge(name: &str) -> (TempDir, AdminDongle, Bridge) {
    let dir = TempDir::new(name);
    let dongle = AdminDongle::init(&dir, PIN, &[]);
    let bridge = Bridge::start(
        &dir,
        &format!(
            "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\n\
             transport = \"unix:{}\"\ntrust_on_first_use = \"{}\"\n",
            dongle.fw.socket.display(),
            dir.path("dongle.pub").display()
        ),
    );
    (dir, dongle, bridge)
}

#[test]
fn a_body_of_the_wrong_shape_is_told_the_field_and_the_shape_expected() {
    let (_dir, _dongle, b) = dongle_and_bridge("api-shapes");
    let long = "x".repeat(200_000);
    let cases: Vec<(&str, &str, String, &str)> = vec![
        // (endpoint, what, body, the message says)
        (
            "/v1/unseal",
            "empty",
            String::new(),
            "the body is not JSON (line 1, column 0): send {\"items\": [{\"record\": \"vk1.…\", \"context\": \"…\"}, …]}",
        ),
        ("/v1/unseal", "cut short", r#"{"items": [{"record""#.into(), "the body is not JSON"),
        (
            "/v1/unseal",
            "an array",
            "[]".into(),
            "the body must be an object {\"items\": [{\"record\"",
        ),
        ("/v1/unseal", "items missing", "{}".into(), "items is missing"),
        (
            "/v1/unseal",
            "items a string",
            r#"{"items": "vk1.abc"}"#.into(),
            "items must be an array of {record, context} strings, not a string",
        ),
        (
            "/v1/unseal",
            "an item a string",
            r#"{"items": ["vk1.abc"]}"#.into(),
            "items[0] must be an object {\"record\": \"vk1.…\", \"context\": \"…\"}, not a string",
        ),
        (
            "/v1/unseal",
            "record missing",
            r#"{"items": [{"record": "a", "context": "c"}, {"context": "c"}]}"#.into(),
            "items[1].record is missing",
        ),
        (
            "/v1/unseal",
            "record a number",
            r#"{"items": [{"record": 12, "context": "c"}]}"#.into(),
            "items[0].record must be a string (a vk1. record), not a number",
        ),
        (
            "/v1/unseal",
            "context an object",
            r#"{"items": [{"record": "a", "context": {}}]}"#.into(),
            "items[0].context must be a string",
        ),
        (
            "/v1/unseal",
            "extra item field",
            r#"{"items": [{"record": "a", "context": "c", "ctx": "c"}]}"#.into(),
            "items[0] has a field other than record and context",
        ),
        (
            "/v1/unseal",
            "extra top field",
            r#"{"items": [], "x": 1}"#.into(),
            "the body has a field other than items",
        ),
        (
            "/v1/unseal",
            "non-ASCII field",
            r#"{"ïtems": []}"#.into(),
            "the body has a field other than items",
        ),
        (
            "/v1/unseal",
            "long string field",
            format!(r#"{{"items": [{{"record": "a", "context": "c", "{long}": 1}}]}}"#),
            "items[0] has a field other than record and context",
        ),
        ("/v1/unseal", "empty batch", r#"{"items": []}"#.into(), "send 1 to 256 items"),
        (
            "/v1/unlock",
            "not JSON",
            "pin=13579246".into(),
            "the body is not JSON (line 1, column 1): send {\"pin\": \"…\"} (or {\"passphrase\": \"…\"})",
        ),
        (
            "/v1/unlock",
            "PIN a number",
            r#"{"pin": 13579246}"#.into(),
            "pin must be a string (the PIN or passphrase as typed), not a number",
        ),
        (
            "/v1/unlock",
            "PIN missing",
            r#"{"code": "13579246"}"#.into(),
            "the body has a field other than pin and passphrase",
        ),
        (
            "/v1/unlock",
            "PIN twice",
            r#"{"pin": "1", "passphrase": "13579246"}"#.into(),
            "pin (or passphrase) is given more than once",
        ),
        ("/v1/unlock", "empty object", "{}".into(), "pin is missing: send {\"pin\": \"…\"}"),
        (
            "/v1/unlock",
            "PIN alone",
            r#""13579246""#.into(),
            "the body must be an object {\"pin\": \"…\"}",
        ),
        (
            "/v1/lock",
            "a field",
            r#"{"all": true}"#.into(),
            "the body must be {}: lock takes no fields",
        ),
        ("/v1/lock", "null", "null".into(), "the body must be an object {}, not null"),
    ];
    for (path, what, body, says) in cases {
        let r = b.post(path, STORE, &body);
        let json = r.json();
        let code = if what == "empty batch" { "bad_batch_size" } else { "malformed_json" };
        assert_eq!((r.status, json["error"].as_str()), (400, Some(code)), "{path} {what}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(says), "{path} {what}: {message}");
        assert!(!message.contains("13579246"), "{path} {what} quotes the PIN: {message}");
    }
    // The dongle counted none of these as a PIN try, and the right shapes still work.
    assert_eq!(b.status()["pin_tries_left"], 8);
    let r = b.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let body = json!({ "items": [{ "record": "vk1.ïñvalid", "context": "ç" }] });
    let r = b.post("/v1/unseal", STORE, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["results"][0]["error"].is_string(), "{}", r.text());
    assert_eq!(b.post("/v1/lock", STORE, "{}").status, 200);
}
