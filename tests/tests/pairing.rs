//! Pairing end to end: once a host is paired, the dongle serves paired hosts only, in an
//! encrypted session (Noise IK); an unpaired host is refused on the local socket and on the
//! LAN key server (TCP), and the bridge works through either as a paired host.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use vbzkey_client::{Client, ClientError, ConnectOptions};
use vbzkey_e2e::{Bridge, Firmware, TempDir, admin_pressing, bin, cli, make_fifo, ok, refused};
use vbzkey_protocol::wire::DongleError;

const STORE: &str = "http://127.0.0.1:8080";

/// `vbzkey-admin --dongle TARGET [--host-key H] ARGS`, pressing `button` when asked.
fn admin_at(target: &str, host_key: Option<&Path>, button: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--dongle", target];
    if let Some(h) = host_key {
        all.extend(["--host-key", h.to_str().unwrap()]);
    }
    all.extend(args);
    admin_pressing(&all, Some(button))
}

fn unseal_status(bridge: &Bridge, rec: &str) -> (u16, String) {
    let body =
        json!({ "items": [{ "record": rec, "context": "cust_cards/1/card_number" }] }).to_string();
    let r = bridge.post("/v1/unseal", STORE, &body);
    (r.status, r.json()["results"][0]["value"].as_str().unwrap_or_default().to_string())
}

#[test]
fn only_paired_hosts_are_served_locally_and_over_the_lan() {
    let dir = TempDir::new("pairing");
    let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
    std::fs::write(&pin, "975310\n").unwrap();
    std::fs::write(&admin_pin, "admin-975310\n").unwrap();
    let (pin, admin_pin) = (pin.to_str().unwrap(), admin_pin.to_str().unwrap());
    let mut fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let unix = fw.target();
    let button = fw.button.clone();
    let admin = |target: &str, host_key: Option<&Path>, args: &[&str]| {
        let mut all = vec!["--admin-pin-file", admin_pin];
        all.extend(args);
        admin_at(target, host_key, &button, &all)
    };
    let pk =
        ok(admin(&unix, None, &["init", "--pin-file", pin, "--new-admin-pin-file", admin_pin]))
            .trim()
            .to_string();
    let rec =
        cli(&["seal", "--to", &pk, "--context", "cust_cards/1/card_number"], b"4111111111111111")
            .trim()
            .to_string();

    // Before any pairing, the local socket serves any host (as a USB port serves its computer).
    ok(admin(&unix, None, &["pubkey"]));
    let h1 = dir.path("h1.key");
    let device_key = ok(admin(
        &unix,
        None,
        &["pair", "--new-host-key", h1.to_str().unwrap(), "--label", "till-1"],
    ));
    // `pair` prints the bridge's configuration lines: host_key, device_key and serial.
    let lines: toml::Table = toml::from_str(&device_key).unwrap();
    assert!(!lines.contains_key("serial"), "a socket names its dongle already");
    assert!(Path::new(lines["host_key"].as_str().unwrap()).is_absolute());
    let device_key = lines["device_key"].as_str().unwrap().to_string();
    assert!(device_key.starts_with("vkpub1."));
    let h2 = dir.path("h2.key");
    cli(&["keygen", "-o", h2.to_str().unwrap()], b"");

    // Now: Hello (info) still answers everyone; anything else needs a paired session.
    ok(admin(&unix, None, &["info"]));
    refused(admin(&unix, None, &["pubkey"]), "paired hosts only");
    assert_eq!(ok(admin(&unix, Some(&h1), &["pubkey"])).trim(), pk);
    refused(admin(&unix, Some(&h2), &["pubkey"]), "not paired");
    assert!(ok(admin(&unix, Some(&h1), &["pairings"])).contains("till-1"));

    // The bridge, as the paired host, unlocks and unseals; as an unpaired one it gets nothing.
    let bridge_cfg = |method: &str, h: &Path| {
        format!(
            "allowed_origins = [\"{STORE}\"]\n[method]\n{method}\nhost_key = \"{}\"\ndevice_key = \"{device_key}\"\n",
            h.display()
        )
    };
    let unix_method = format!("kind = \"dongle\"\ntransport = \"unix:{}\"", fw.socket.display());
    let paired = Bridge::start(&dir, &bridge_cfg(&unix_method, &h1));
    assert_eq!(paired.post("/v1/unlock", STORE, "{\"pin\":\"975310\"}").status, 200);
    assert_eq!(unseal_status(&paired, &rec), (200, "4111111111111111".into()));
    let stranger = Bridge::start(&TempDir::new("pairing-b2"), &bridge_cfg(&unix_method, &h2));
    let st = stranger.status();
    // The dongle is there; this workstation is what it refuses, and the setting is named.
    assert_eq!(st["state"], "not_paired");
    assert!(st["detail"].as_str().unwrap().contains("not paired"), "{st}");
    assert!(st["detail"].as_str().unwrap().contains("host_key"), "{st}");
    assert_eq!(unseal_status(&stranger, &rec).0, 503);
    drop((paired, stranger));

    // The LAN key server: the same state on TCP. Plain requests are refused there always.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fw.kill();
    make_fifo(&button);
    let mut lan = Command::new(bin("vbzkey-firmware"))
        .args([
            "serve",
            "--identity",
            "dangerous-fixed:E2E00001",
            "--dangerous-weak-kdf",
            "--state-dir",
        ])
        .arg(dir.path("state"))
        .arg("--transport")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg("--presence-fifo")
        .arg(&button)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the LAN key server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let plain = Client::for_addr(
        &format!("tcp:127.0.0.1:{port}").parse().unwrap(),
        ConnectOptions::default(),
    );
    match plain.public_keys() {
        Err(ClientError::Dongle(e)) => assert_eq!(e, DongleError::PairingRequired),
        other => panic!("{other:?}"),
    }
    let lan_method = format!("kind = \"lan\"\naddress = \"127.0.0.1:{port}\"");
    let paired = Bridge::start(&TempDir::new("pairing-b3"), &bridge_cfg(&lan_method, &h1));
    assert_eq!(paired.status()["method"], "lan");
    assert_eq!(paired.post("/v1/unlock", STORE, "{\"pin\":\"975310\"}").status, 200);
    assert_eq!(unseal_status(&paired, &rec), (200, "4111111111111111".into()));
    let stranger = Bridge::start(&TempDir::new("pairing-b4"), &bridge_cfg(&lan_method, &h2));
    assert_eq!(unseal_status(&stranger, &rec).0, 503);
    // A wrong pinned device key fails the handshake: no man in the middle.
    let wrong_device = bridge_cfg(&lan_method, &h1).replace(&device_key, &pk);
    let mitm = Bridge::start(&TempDir::new("pairing-b5"), &wrong_device);
    assert_eq!(unseal_status(&mitm, &rec).0, 503);

    // Unpairing takes effect: the host loses access.
    let tcp = format!("tcp:127.0.0.1:{port}");
    let h1_pub = vbzkey_protocol::SecretKey::from_text(
        std::fs::read_to_string(&h1).unwrap().lines().last().unwrap(),
    )
    .unwrap()
    .public_key()
    .to_text();
    ok(admin(
        &tcp,
        Some(&h1),
        &["pair", "--new-host-key", h2.to_str().unwrap(), "--label", "till-2"],
    ));
    assert_eq!(
        unseal_status(&stranger, &rec),
        (200, "4111111111111111".into()),
        "h2 is paired now"
    );
    ok(admin(&tcp, Some(&h2), &["unpair", &h1_pub]));
    assert_eq!(unseal_status(&paired, &rec).0, 503, "h1 was unpaired");
    assert!(ok(admin(&tcp, Some(&h2), &["audit", "export"])).contains(" unpair "));
    let _ = lan.kill();
    let _ = lan.wait();
}

#[test]
fn clone_from_a_paired_source_works_to_a_new_and_to_a_reset_target() {
    let dir = TempDir::new("pairing-clone");
    let (pin, admin_pin) = (dir.path("pin.txt"), dir.path("admin.txt"));
    std::fs::write(&pin, "975310\n").unwrap();
    std::fs::write(&admin_pin, "admin-975310\n").unwrap();
    let (pin, admin_pin) = (pin.to_str().unwrap(), admin_pin.to_str().unwrap());
    let a = Firmware::start(&dir.path("a-state"), &dir.path("a.sock"), &[]);
    let b = Firmware::start(&dir.path("b-state"), &dir.path("b.sock"), &[]);
    let (a_addr, b_addr) = (a.target(), b.target());
    let admin = |fw: &Firmware, host_key: Option<&Path>, args: &[&str]| {
        let mut all = vec!["--admin-pin-file", admin_pin];
        all.extend(args);
        admin_at(&fw.target(), host_key, &fw.button, &all)
    };
    let init = ["init", "--pin-file", pin, "--new-admin-pin-file", admin_pin];
    let pk = ok(admin(&a, None, &init)).trim().to_string();
    let h1 = dir.path("h1.key");
    ok(admin(&a, None, &["pair", "--new-host-key", h1.to_str().unwrap()]));
    let rec =
        cli(&["seal", "--to", &pk, "--context", "cust_cards/1/card_number"], b"4111111111111111")
            .trim()
            .to_string();
    // The source's button is pressed (clone export); the target needs none.
    let clone = || {
        let args = [
            "--admin-pin-file",
            admin_pin,
            "--host-key",
            h1.to_str().unwrap(),
            "clone",
            "--from",
            &a_addr,
            "--to",
            &b_addr,
            "--new-pin-file",
            pin,
            "--new-admin-pin-file",
            admin_pin,
        ];
        admin_pressing(&args, Some(&a.button))
    };
    // To a new dongle: the host key goes to the paired source, the target is asked plainly.
    ok(clone());
    assert_eq!(ok(admin(&b, None, &["pubkey"])).trim(), pk);
    // A clone carries the keys, not the pairings: B serves any local host until paired, and
    // its records open with the PIN alone.
    assert!(ok(admin(&b, None, &["info"])).contains("protected by its PIN only"));
    // To a reset dongle: pair B, reset it (pairings go too), clone again.
    ok(admin(&b, None, &["pair", "--new-host-key", h1.to_str().unwrap()]));
    ok(admin(&b, Some(&h1), &["reset", "--force"]));
    assert!(ok(admin(&b, None, &["info"])).contains("Uninitialised"));
    ok(clone());
    ok(admin(&b, None, &["pair", "--new-host-key", h1.to_str().unwrap()]));
    let bridge_cfg = format!(
        "allowed_origins = [\"{STORE}\"]\n[method]\nkind = \"dongle\"\ntransport = \"unix:{}\"\nhost_key = \"{}\"\ntrust_on_first_use = \"{}\"\n",
        b.socket.display(),
        h1.display(),
        dir.path("known-b.pub").display()
    );
    let bridge = Bridge::start(&dir, &bridge_cfg);
    assert_eq!(bridge.post("/v1/unlock", STORE, "{\"pin\":\"975310\"}").status, 200);
    assert_eq!(unseal_status(&bridge, &rec), (200, "4111111111111111".into()));
}
