//! Secrets on `-` typed at a terminal: a prompt, echo off, asked twice when set — the admin
//! tool's PINs and `vbzkey`'s passphrases. The transcript is everything the terminal showed.

use vbzkey_e2e::terminal::{interrupted_at_prompt, typed_session};
use vbzkey_e2e::{TempDir, bin};

#[test]
fn a_new_pin_typed_at_a_terminal_is_not_echoed_and_is_asked_twice() {
    // Two different entries: refused before anything reaches a dongle.
    let (seen, code) = typed_session(
        &bin("vbzkey-admin"),
        "--dongle unix:/nonexistent/dongle.sock set-pin --new-pin-file -",
        &[("new staff PIN: ", "first-typed-pin"), ("new staff PIN, again: ", "other-typed-pin")],
    );
    assert_eq!(code, Some(2), "{seen}");
    assert!(seen.contains("the two new staff PINs typed differ"), "{seen}");
    assert!(!seen.contains("first-typed-pin") && !seen.contains("other-typed-pin"), "{seen}");

    // The same twice: taken, and the command goes on (to ask for the admin PIN it lacks).
    let (seen, code) = typed_session(
        &bin("vbzkey-admin"),
        "--dongle unix:/nonexistent/dongle.sock set-pin --new-pin-file -",
        &[("new staff PIN: ", "same-typed-pin"), ("new staff PIN, again: ", "same-typed-pin")],
    );
    assert_eq!(code, Some(2), "{seen}");
    assert!(seen.contains("--admin-pin-file"), "{seen}");
    assert!(!seen.contains("differ") && !seen.contains("same-typed-pin"), "{seen}");
}

/// `vbzkey keygen --encrypt --passphrase-file -` on a terminal used to echo the passphrase
/// and take it once; `passphrase-key` likewise; `open` asks once.
#[test]
fn a_passphrase_typed_at_a_terminal_is_not_echoed_and_is_asked_twice_when_set() {
    let dir = TempDir::new("terminal-passphrase");
    let vbzkey = bin("vbzkey");
    let key = dir.path("key.json");
    let (seen, code) = typed_session(
        &vbzkey,
        &format!("keygen --encrypt --passphrase-file - -o {}", key.display()),
        &[
            ("passphrase: ", "first-typed-passphrase"),
            ("passphrase, again: ", "other-typed-passphrase"),
        ],
    );
    assert_eq!(code, Some(2), "{seen}");
    assert!(seen.contains("vbzkey: error: the two passphrases typed differ"), "{seen}");
    assert!(!seen.contains("first-typed") && !seen.contains("other-typed"), "{seen}");
    assert!(!key.exists(), "nothing is written when the two differ");

    let typed = "same-typed-passphrase-2468";
    let (seen, code) = typed_session(
        &vbzkey,
        &format!("keygen --encrypt --passphrase-file - -o {}", key.display()),
        &[("passphrase: ", typed), ("passphrase, again: ", typed)],
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains("Public key: vkpub1."), "{seen}");
    assert!(!seen.contains(typed), "{seen}");

    // The key opens with the passphrase typed once (the record comes as a file argument).
    let public = String::from_utf8(
        std::process::Command::new(&vbzkey)
            .args(["pubkey", "-k"])
            .arg(&key)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let rec = dir.path("rec.txt");
    let sealed = std::process::Command::new(&vbzkey)
        .args(["seal", "--to", public.trim(), "--context", "t/1/f"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"4111111111111111")?;
            c.wait_with_output()
        })
        .unwrap();
    std::fs::write(&rec, sealed.stdout).unwrap();
    let (seen, code) = typed_session(
        &vbzkey,
        &format!("open -k {} --passphrase-file - --context t/1/f {}", key.display(), rec.display()),
        &[("passphrase: ", typed)],
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains("4111111111111111") && !seen.contains(typed), "{seen}");
    assert!(!seen.contains("again"), "opening asks once: {seen}");

    let descriptor = dir.path("passphrase-key.json");
    let (seen, code) = typed_session(
        &vbzkey,
        &format!("passphrase-key --passphrase-file - -o {}", descriptor.display()),
        &[("passphrase: ", typed), ("passphrase, again: ", typed)],
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(descriptor.exists() && !seen.contains(typed), "{seen}");
}

/// Ctrl-C at a prompt used to leave the terminal with echo off (the drop that restores it
/// never ran): whatever the person typed next, at the shell, was invisible. Now the signal
/// restores the terminal first, then ends the program as Ctrl-C does.
#[test]
fn ctrl_c_at_a_secret_prompt_gives_the_terminal_its_echo_back() {
    let dir = TempDir::new("terminal-ctrl-c");
    let echoes = |seen: &str| seen.contains(" echo ") && !seen.contains(" -echo ");
    let seen = interrupted_at_prompt(
        &bin("vbzkey-admin"),
        "--dongle unix:/nonexistent/dongle.sock set-pin --new-pin-file -",
        "new staff PIN: ",
    );
    assert!(echoes(&seen), "{seen}");
    let key = dir.path("key.json");
    let seen = interrupted_at_prompt(
        &bin("vbzkey"),
        &format!("keygen --encrypt --passphrase-file - -o {}", key.display()),
        "passphrase: ",
    );
    assert!(echoes(&seen), "{seen}");
    assert!(!key.exists(), "nothing written");
}
