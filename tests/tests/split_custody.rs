//! Split custody across processes: the dongle opens records only for a paired workstation that
//! gives its share (the unlock secret in its host key) with the PIN. Bridge A and the admin
//! tool are paired; the dongle unlocks from A; at an unpaired workstation B, the right PIN
//! opens nothing; once the admin pairs B (admin PIN and the button) it does; once the admin
//! unpairs A, A's host key no longer opens it.

use std::path::Path;

use serde_json::json;
use vbzkey_e2e::{ADMIN_PIN, Bridge, Firmware, TempDir, admin_pressing, cli, ok};

const STORE: &str = "http://127.0.0.1:8080";
const PIN: &str = "13579246";

/// A workstation's bridge with host key `key`, pinning the dongle's `device` key.
fn bridge(dir: &TempDir, fw: &Firmware, key: &Path, device: &str) -> Bridge {
    Bridge::start(
        dir,
        &format!(
            "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\n\
             host_key = \"{}\"\ndevice_key = \"{device}\"\n",
            fw.socket.display(),
            key.display()
        ),
    )
}

fn unlock(b: &Bridge) -> (u16, String) {
    let r = b.post("/v1/unlock", STORE, &json!({ "pin": PIN }).to_string());
    (r.status, r.text())
}

fn opens(b: &Bridge, rec: &str) -> bool {
    let body = json!({ "items": [{ "record": rec, "context": "cust_cards/5/card_number" }] });
    let r = b.post("/v1/unseal", STORE, &body.to_string());
    r.status == 200 && r.json()["results"][0]["value"] == "4111111111111111"
}

#[test]
fn a_workstation_without_a_share_cannot_unlock_even_with_the_pin() {
    let dir = TempDir::new("split");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let (pin, admin_pin) = (dir.path("pin"), dir.path("admin-pin"));
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    std::fs::write(&admin_pin, [ADMIN_PIN, b"\n"].concat()).unwrap();
    let (target, admin_pin) = (fw.target(), admin_pin.to_str().unwrap().to_string());
    let (admin_key, key_a, key_b) = (dir.path("admin.key"), dir.path("a.key"), dir.path("b.key"));
    let admin = |host: Option<&Path>, args: &[&str]| {
        let mut all = vec!["--dongle", target.as_str(), "--admin-pin-file", admin_pin.as_str()];
        if let Some(h) = host {
            all.extend(["--host-key", h.to_str().unwrap()]);
        }
        all.extend(args);
        admin_pressing(&all, Some(&fw.button))
    };
    let init = ["init", "--pin-file", pin.to_str().unwrap(), "--new-admin-pin-file", &admin_pin];
    let pk = ok(admin(None, &init)).trim().to_string();
    let rec =
        cli(&["seal", "--to", &pk, "--context", "cust_cards/5/card_number"], b"4111111111111111")
            .trim()
            .to_string();
    // The admin tool pairs its own host first, then workstation A (from its own session).
    ok(admin(None, &["pair", "--new-host-key", admin_key.to_str().unwrap(), "--label", "admin"]));
    let lines = ok(admin(
        Some(&admin_key),
        &["pair", "--new-host-key", key_a.to_str().unwrap(), "--label", "A"],
    ));
    let bridge_lines: toml::Table = toml::from_str(&lines).unwrap();
    let device = bridge_lines["device_key"].as_str().unwrap().to_string();
    let info = ok(admin(Some(&admin_key), &["info"]));
    assert!(info.contains("custody:    split"), "{info}");
    cli(&["keygen", "-o", key_b.to_str().unwrap()], b"");

    // A unlocks and opens; its bridge says the dongle is in split custody.
    let a = bridge(&TempDir::new("split-a"), &fw, &key_a, &device);
    assert_eq!(a.status()["custody"], "split");
    assert_eq!(unlock(&a).0, 200);
    assert!(opens(&a, &rec));
    assert_eq!(a.post("/v1/lock", STORE, "{}").status, 200);
    drop(a);

    // The dongle carried to workstation B, with the right PIN: nothing opens, no try is spent.
    let b = bridge(&TempDir::new("split-b"), &fw, &key_b, &device);
    let (status, text) = unlock(&b);
    assert_ne!(status, 200, "{text}");
    assert!(!opens(&b, &rec));
    let tries = ok(admin(Some(&admin_key), &["info", "--json"]));
    let tries: serde_json::Value = serde_json::from_str(&tries).unwrap();
    assert_eq!(tries["pin_tries_left"], 8, "B's attempts cost no PIN try");
    drop(b);

    // The admin pairs B (admin PIN and a press): B unlocks now.
    ok(admin(
        Some(&admin_key),
        &["pair", "--new-host-key", key_b.to_str().unwrap(), "--label", "B"],
    ));
    let b = bridge(&TempDir::new("split-b2"), &fw, &key_b, &device);
    assert_eq!(unlock(&b).0, 200);
    assert!(opens(&b, &rec));
    assert_eq!(b.post("/v1/lock", STORE, "{}").status, 200);

    // The admin unpairs A: A's host key (its secret) no longer opens the dongle.
    let key_a_public = vbzkey_client::read_host_key(&key_a).unwrap().public_key().to_text();
    ok(admin(Some(&admin_key), &["unpair", &key_a_public]));
    let a = bridge(&TempDir::new("split-a2"), &fw, &key_a, &device);
    assert_ne!(unlock(&a).0, 200);
    assert!(!opens(&a, &rec));
    // B still does.
    assert_eq!(unlock(&b).0, 200);
    assert!(opens(&b, &rec));
    let log = ok(admin(Some(&admin_key), &["audit", "export"]));
    assert!(log.contains(" pair ") && log.contains(" unpair "), "{log}");
}

#[test]
fn init_with_a_host_key_pairs_this_computer_at_once() {
    let dir = TempDir::new("split-init");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let (pin, admin_pin) = (dir.path("pin"), dir.path("admin-pin"));
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    std::fs::write(&admin_pin, [ADMIN_PIN, b"\n"].concat()).unwrap();
    let (target, admin_pin) = (fw.target(), admin_pin.to_str().unwrap().to_string());
    let admin_key = dir.path("new-dir/admin.key");
    std::fs::create_dir_all(admin_key.parent().unwrap()).unwrap();
    let host = admin_key.to_str().unwrap();
    let base = ["--dongle", target.as_str(), "--admin-pin-file", admin_pin.as_str()];
    let init = [
        &base[..],
        &["--host-key", host, "init", "--pin-file", pin.to_str().unwrap()],
        &["--new-admin-pin-file", admin_pin.as_str()],
    ]
    .concat();
    let out = admin_pressing(&init, Some(&fw.button));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("split custody"), "{note}");
    assert!(admin_key.exists(), "the host key was made");
    let info = ok(admin_pressing(&[&base[..], &["--host-key", host, "info"]].concat(), None));
    assert!(info.contains("custody:    split"), "{info}");
    let log =
        ok(admin_pressing(&[&base[..], &["--host-key", host, "audit", "export"]].concat(), None));
    assert!(log.contains(" pair "), "{log}");
}
