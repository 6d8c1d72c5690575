//! Key custody across processes: the firmware, `vbzkey-admin` and the bridge as a new user
//! runs them. The staff PIN opens records and nothing else; key export needs the admin PIN and
//! a press of the dongle's button (here its FIFO, pressed after the tool asks).

use std::path::Path;
use std::process::Output;

use vbzkey_e2e::{ADMIN_PIN, Firmware, PRESS_PROMPT, TempDir, admin_pressing, cli, ok};

fn refused(out: &Output, says: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal, it succeeded: {err}");
    for s in says {
        assert!(err.contains(s), "expected the refusal to say {s:?}, got: {err}");
    }
}

struct Setup {
    dir: TempDir,
    fw: Firmware,
    pin: String,
    admin_pin: String,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let fw = Firmware::start(&dir.path("state"), &dir.path("s.sock"), &[]);
        let (pin, admin_pin) = (dir.path("pin"), dir.path("admin-pin"));
        std::fs::write(&pin, "12345678\n").unwrap();
        std::fs::write(&admin_pin, [ADMIN_PIN, b"\n"].concat()).unwrap();
        let (pin, admin_pin) = (path(&pin), path(&admin_pin));
        Setup { dir, fw, pin, admin_pin }
    }

    /// `vbzkey-admin --dongle <this> ARGS`, pressing the button when asked if `press`.
    fn admin(&self, args: &[&str], press: bool) -> Output {
        let target = self.fw.target();
        let mut all = vec!["--dongle", target.as_str()];
        all.extend(args);
        admin_pressing(&all, press.then_some(self.fw.button.as_path()))
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The reproduction from the key-custody issue: `init` with the staff PIN alone, then a
/// backup with it. Both are refused now, naming what is missing; with the admin PIN and a
/// press, the backup works.
#[test]
fn the_staff_pin_alone_cannot_export_the_keys() {
    let s = Setup::new("custody-backup");
    let out = s.admin(&["init", "--pin-file", &s.pin], false);
    refused(&out, &["--new-admin-pin-file"]);
    let pk =
        ok(s.admin(&["init", "--pin-file", &s.pin, "--new-admin-pin-file", &s.admin_pin], false));
    let shares = s.dir.path("shares");
    let backup = ["backup", "--threshold", "2", "--shares", "2", "-o", &path(&shares)];

    // The command, verbatim: the staff PIN does not authorise it.
    let mut with_staff_pin = backup.to_vec();
    with_staff_pin.extend(["--pin-file", &s.pin]);
    refused(
        &s.admin(&with_staff_pin, true),
        &["staff PIN does not authorise", "--admin-pin-file", "button"],
    );
    // Nor does nothing at all.
    refused(&s.admin(&backup, true), &["admin PIN", "--admin-pin-file", "button"]);
    assert!(!shares.exists(), "no share was written");
    // The admin PIN without a press: the dongle asks, nobody presses, nothing leaves.
    let mut as_admin = vec!["--admin-pin-file", s.admin_pin.as_str()];
    as_admin.extend(backup);
    let out = s.admin(&as_admin, false);
    refused(&out, &[PRESS_PROMPT, "press of the dongle's button"]);
    assert!(!shares.exists() || std::fs::read_dir(&shares).unwrap().next().is_none());
    // The staff PIN cannot stand in for the admin PIN either (and is counted as a wrong one).
    let out =
        s.admin(&["--admin-pin-file", &s.pin, "backup", "--threshold", "2", "--shares", "2"], true);
    refused(&out, &["wrong admin PIN", "7 tries left"]);

    // Admin PIN and a press: two shares.
    let out = s.admin(&as_admin, true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(PRESS_PROMPT), "the tool said to press");
    let n = std::fs::read_dir(&shares).unwrap().count();
    assert_eq!(n, 2);
    // Every step is in the audit log: the failed attempts and the backup.
    let log = ok(s.admin(&["audit", "export"], false));
    for event in [
        " presence-missing ",
        " admin-auth-failed ",
        " admin-auth ",
        " backup - 2 2 ",
        " admin-end ",
    ] {
        assert!(log.contains(event), "{event} missing from the log:\n{log}");
    }
    let _ = pk;
}

/// Every other command that moves keys or changes custody, with the staff PIN alone: each is
/// refused and names the admin PIN.
#[test]
fn custody_commands_with_the_staff_pin_alone_are_refused() {
    let s = Setup::new("custody-refused");
    ok(s.admin(&["init", "--pin-file", &s.pin, "--new-admin-pin-file", &s.admin_pin], false));
    let key = s.dir.path("h.key");
    let key = path(&key);
    let target = s.fw.target();
    for args in [
        vec![
            "clone",
            "--from",
            &target,
            "--to",
            &target,
            "--new-pin-file",
            &s.pin,
            "--new-admin-pin-file",
            &s.admin_pin,
        ],
        vec!["pair", "--new-host-key", &key],
        vec!["reset", "--force"],
        vec!["set-pin", "--dangerous-remove-pin"],
        vec!["rotate"],
        vec!["retire", "0011223344556677", "--records", &s.pin],
        vec!["rewrap", "--in", &s.pin, "-o", &key],
    ] {
        let mut with_pin = args.clone();
        with_pin.extend(["--pin-file", &s.pin]);
        refused(&s.admin(&with_pin, true), &["staff PIN does not authorise", "--admin-pin-file"]);
    }
    // And the dongle itself, asked directly with the staff PIN unlocked, refuses the same.
    let unlocked = s.fw.request(&vbzkey_protocol::wire::Request::Unlock {
        pin: vbzkey_protocol::wire::Pin::new(b"12345678"),
        unlock_secret: None,
    });
    assert_eq!(unlocked, vbzkey_protocol::wire::Response::Ok);
    assert!(ok(s.admin(&["info"], false)).contains("Unlocked"));
    refused(&s.admin(&["reset", "--force"], true), &["admin PIN"]);
    let info = ok(s.admin(&["info"], false));
    assert!(!info.contains("Uninitialised"), "{info}");
}

/// Clone from a dongle that serves paired hosts only, to a new dongle: the admin's host key
/// goes to the paired source, the blank target is reached plainly, and both then open the
/// same records.
#[test]
fn clone_from_a_paired_source_to_a_new_dongle() {
    let a = Setup::new("custody-clone");
    let b = Firmware::start(&a.dir.path("b-state"), &a.dir.path("b.sock"), &[]);
    let pk =
        ok(a.admin(&["init", "--pin-file", &a.pin, "--new-admin-pin-file", &a.admin_pin], false));
    let host = a.dir.path("admin-host.key");
    let host = path(&host);
    ok(a.admin(
        &["--admin-pin-file", &a.admin_pin, "pair", "--new-host-key", &host, "--label", "admin"],
        true,
    ));
    // Source A is paired now: without the host key it refuses.
    let (from, to) = (a.fw.target(), b.target());
    let clone = [
        "--admin-pin-file",
        &a.admin_pin,
        "--host-key",
        &host,
        "clone",
        "--from",
        &from,
        "--to",
        &to,
        "--new-pin-file",
        &a.pin,
        "--new-admin-pin-file",
        &a.admin_pin,
    ];
    let out = admin_pressing(&clone, Some(&a.fw.button));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = cli(
        &["seal", "--to", pk.trim(), "--context", "cust_cards/7/card_number"],
        b"4111111111111111",
    );
    // B opens A's records (plain: it has no pairings), with its own staff PIN.
    use vbzkey_protocol::wire::{Pin, Request, Response, SealedItem};
    assert_eq!(
        b.request(&Request::Unlock { pin: Pin::new(b"12345678"), unlock_secret: None }),
        Response::Ok
    );
    let item = SealedItem {
        record: vbzkey_protocol::record::from_text(rec.trim()).unwrap(),
        context: b"cust_cards/7/card_number".to_vec(),
    };
    match b.request(&Request::UnsealBatch { items: vec![item] }) {
        Response::Unsealed(r) => assert_eq!(&r[0].as_ref().unwrap().0[..], b"4111111111111111"),
        other => panic!("{other:?}"),
    }
    let log = ok(a.admin(&["--host-key", &host, "audit", "export"], false));
    assert!(log.contains(" clone-export "), "{log}");
}
