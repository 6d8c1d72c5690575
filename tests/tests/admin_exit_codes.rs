//! `vbzkey-admin` against the real firmware, across processes: each class of failure exits
//! with its own documented code (`vbzkey-admin --help`, docs/OPERATIONS.md), and the message
//! says what is missing and what to do.

use std::path::Path;
use std::process::{Command, Output};

use vbzkey_e2e::{Firmware, TempDir, admin, bin};

/// The exit code, after checking the message says `says`.
fn exits(out: Output, says: &str) -> i32 {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "expected {says:?} in: {err}");
    assert!(err.starts_with("vbzkey-admin: ") || err.starts_with("error: "), "{err}");
    out.status.code().expect("an exit code, not a signal")
}

#[test]
fn each_class_of_failure_exits_with_its_documented_code() {
    let dir = TempDir::new("exit-codes");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let (pin, admin_pin, wrong) =
        (dir.path("pin.txt"), dir.path("admin.txt"), dir.path("wrong.txt"));
    std::fs::write(&pin, "5678\n").unwrap();
    std::fs::write(&admin_pin, "admin-13579\n").unwrap();
    std::fs::write(&wrong, "0000\n").unwrap();
    let (pin, admin_pin, wrong) =
        (pin.to_str().unwrap(), admin_pin.to_str().unwrap(), wrong.to_str().unwrap());
    let out = admin(&fw.socket, &["init", "--pin-file", pin, "--new-admin-pin-file", admin_pin]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // 1 I/O: a PIN file that is not there is named.
    assert_eq!(
        exits(
            admin(&fw.socket, &["rotate", "--pin-file", "/nonexistent/pin"]),
            "cannot read /nonexistent/pin"
        ),
        1
    );
    // 2 usage: a malformed address; a PIN the dongle needs and the command line lacks (and,
    // below, a reset that cannot be confirmed).
    let bad_addr =
        Command::new(bin("vbzkey-admin")).args(["--dongle", "serial:1", "info"]).output().unwrap();
    assert_eq!(exits(bad_addr, "usb, usb:SERIAL, unix:PATH or tcp:HOST:PORT"), 2);
    assert_eq!(exits(admin(&fw.socket, &["rotate"]), "give it with --pin-file"), 2);
    // 3 bad input: a host key file that is not one.
    let junk = dir.path("junk.key");
    std::fs::write(&junk, "not a key\n").unwrap();
    assert_eq!(
        exits(admin(&fw.socket, &["--host-key", junk.to_str().unwrap(), "info"]), "vksec1."),
        3
    );
    // 4 not found: no dongle there.
    assert_eq!(exits(admin(Path::new("/nonexistent/d.sock"), &["info"]), "no dongle found"), 4);
    // 5 refused: the admin PIN is missing, and the message says how to give it.
    assert_eq!(exits(admin(&fw.socket, &["rotate", "--pin-file", pin]), "--admin-pin-file"), 5);
    // 6 wrong credential, naming which one.
    let out = admin(&fw.socket, &["--admin-pin-file", wrong, "rotate", "--pin-file", pin]);
    assert_eq!(exits(out, "wrong admin PIN"), 6);
    assert_eq!(
        exits(admin(&fw.socket, &["rotate", "--pin-file", wrong]), "wrong PIN (--pin-file)"),
        6
    );
    // (Proving the admin PIN opens the admin window: the refusals above come first.)
    assert_eq!(
        exits(
            admin(&fw.socket, &["reset", "--pin-file", pin, "--admin-pin-file", admin_pin]),
            "--force"
        ),
        2
    );
    // With the right ones, it works.
    let out = admin(&fw.socket, &["--admin-pin-file", admin_pin, "rotate", "--pin-file", pin]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_locked_out_dongle_exits_7_and_says_how_to_recover() {
    let dir = TempDir::new("exit-locked-out");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &["--max-pin-tries", "2"]);
    let (pin, wrong) = (dir.path("pin.txt"), dir.path("wrong.txt"));
    std::fs::write(&pin, "5678\n").unwrap();
    std::fs::write(&wrong, "0000\n").unwrap();
    let (pin, wrong) = (pin.to_str().unwrap(), wrong.to_str().unwrap());
    assert!(admin(&fw.socket, &["init", "--pin-file", pin]).status.success());
    assert_eq!(exits(admin(&fw.socket, &["rotate", "--pin-file", wrong]), "1 tries left"), 6);
    let _ = admin(&fw.socket, &["rotate", "--pin-file", wrong]);
    let out = admin(&fw.socket, &["rotate", "--pin-file", pin]);
    assert_eq!(exits(out, "locked out"), 7);
    let out = admin(&fw.socket, &["rotate", "--pin-file", pin]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("reset --force") && err.contains("restore"), "{err}");
    // `info --json` names the state from the typed state, not from Debug.
    let info = admin(&fw.socket, &["info", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["state"], "locked_out");
}

#[test]
fn a_reader_that_goes_away_is_not_a_failure() {
    let dir = TempDir::new("exit-pipe");
    let fw = Firmware::start(&dir.path("state"), &dir.path("d.sock"), &[]);
    let mut child = Command::new(bin("vbzkey-admin"))
        .arg("--dongle")
        .arg(format!("unix:{}", fw.socket.display()))
        .arg("info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `vbzkey-admin … | head -0`: the reader is gone before the answer is printed.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
