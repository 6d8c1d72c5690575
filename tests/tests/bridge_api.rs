//! The bridge's HTTP API as a client sees it, through the real binary and an emulated dongle:
//! what a paired dongle says to a bridge configured without its `host_key`, and what a body of
//! the wrong shape is told (docs/API.md, docs/bridge-openapi.json).

use serde_json::{Value, json};
use vbzkey_e2e::{ADMIN_PIN, Bridge, Firmware, TempDir, admin_pressing, ok};

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
