//! Secrets on `-` typed at a terminal: a prompt, echo off, asked twice when set — the admin
//! tool's PINs and `vbzkey`'s passphrases. The transcript is everything the terminal showed.

use vbzkey_e2e::terminal::{
    copies_in_memory, ctrl_z_without_job_control, pid_with_argument, signalled_at_prompt,
    stopped_at_prompt, typed_session, typed_then_inspect,
};
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
/// (Ctrl-C's `INT`, a closed terminal's `HUP`, `kill`'s `TERM`) restores the terminal first,
/// then ends the program as it would have.
#[test]
fn ctrl_c_at_a_secret_prompt_gives_the_terminal_its_echo_back() {
    let dir = TempDir::new("terminal-ctrl-c");
    let echoes = |seen: &str| seen.contains(" echo ") && !seen.contains(" -echo ");
    for signal in ["INT", "HUP", "TERM"] {
        let socket = format!("unix:{}", dir.path(&format!("no-dongle-{signal}.sock")).display());
        let seen = signalled_at_prompt(
            &bin("vbzkey-admin"),
            &format!("--dongle {socket} set-pin --new-pin-file -"),
            "new staff PIN: ",
            &socket,
            signal,
        );
        assert!(echoes(&seen), "{signal}: {seen}");
        assert!(!seen.contains("again"), "ended at the first prompt: {seen}");
    }
    let key = dir.path("key.json");
    let seen = signalled_at_prompt(
        &bin("vbzkey"),
        &format!("keygen --encrypt --passphrase-file - -o {}", key.display()),
        "passphrase: ",
        vbzkey_e2e::path_str(&key),
        "INT",
    );
    assert!(echoes(&seen), "{seen}");
    assert!(!key.exists(), "nothing written");
}

/// Ctrl-Z at a prompt stopped the program with echo still off: under dash the person was
/// back at a shell that showed nothing typed; under bash, which gives the terminal its own
/// settings back when a job stops, `fg` resumed a prompt with echo on, and the PIN typed
/// next showed on the screen. Now the program gives the terminal its echo back before it
/// stops, and turns it off again, and shows its prompt again, when it is continued.
#[test]
fn ctrl_z_at_a_secret_prompt_gives_the_shell_its_echo_and_the_prompt_stays_quiet_after_fg() {
    let dir = TempDir::new("terminal-ctrl-z");
    for shell in ["bash --norc --noprofile", "dash"] {
        let socket = format!("unix:{}", dir.path("no-dongle.sock").display());
        let seen = stopped_at_prompt(
            shell,
            &bin("vbzkey-admin"),
            &format!("--dongle {socket} set-pin --new-pin-file -"),
            "new staff PIN: ",
            &[
                ("new staff PIN: ", "first-typed-pin"),
                ("new staff PIN, again: ", "other-typed-pin"),
            ],
        );
        let stopped = seen.split("echoke").next().unwrap_or_default();
        assert!(stopped.contains(" echo ") && !stopped.contains(" -echo "), "{shell}: {seen}");
        assert!(!seen.contains("first-typed-pin"), "{shell}: the PIN showed after fg: {seen}");
        assert!(!seen.contains("other-typed-pin"), "{shell}: {seen}");
        assert!(seen.contains("the two new staff PINs typed differ"), "{shell}: {seen}");
        assert!(seen.contains("rc=2"), "{shell}: {seen}");
    }
}

/// Where no shell could continue it (an orphaned process group, as under `ssh -t host
/// vbzkey-admin …`), the kernel discards Ctrl-Z; the prompt's watcher, which stops the
/// program with `SIGSTOP`, must not stop it either, or the session would hang for good.
#[test]
fn ctrl_z_at_a_secret_prompt_without_job_control_does_not_stop_the_program() {
    let dir = TempDir::new("terminal-ctrl-z-orphan");
    let socket = format!("unix:{}", dir.path("no-dongle.sock").display());
    let (state, seen, code) = ctrl_z_without_job_control(
        &bin("vbzkey-admin"),
        &format!("--dongle {socket} set-pin --new-pin-file -"),
        &socket,
        &[("new staff PIN: ", "first-typed-pin"), ("new staff PIN, again: ", "other-typed-pin")],
    );
    assert!(state.is_some_and(|s| s != 'T'), "state {state:?}: {seen}");
    assert_eq!(code, Some(2), "{seen}");
    assert!(seen.contains("the two new staff PINs typed differ"), "{seen}");
    assert!(!seen.contains("first-typed-pin") && !seen.contains("other-typed-pin"), "{seen}");
}

/// A PIN typed at the terminal went through std's stdin buffer, which is never wiped: while
/// `vbzkey-admin backup` waited for the button, its memory still held the admin PIN it had
/// already sent and dropped. Read straight from the terminal, no copy is left.
#[test]
fn a_typed_admin_pin_leaves_no_copy_in_memory_once_sent() {
    let dir = TempDir::new("terminal-pin-memory");
    let d = vbzkey_e2e::AdminDongle::init(&dir, "24681357", &[]);
    let shares = dir.path("shares-memory-marker");
    let marker = vbzkey_e2e::path_str(&shares).to_string();
    let admin_pin = std::str::from_utf8(vbzkey_e2e::ADMIN_PIN).unwrap();
    let (copies, seen) = typed_then_inspect(
        &bin("vbzkey-admin"),
        &format!(
            "--dongle {} --admin-pin-file - backup --threshold 2 --shares 3 -o {marker}",
            d.fw.target()
        ),
        ("admin PIN: ", admin_pin),
        vbzkey_e2e::PRESS_PROMPT,
        || {
            let pid = pid_with_argument(&marker).expect("vbzkey-admin is running");
            copies_in_memory(pid, vbzkey_e2e::ADMIN_PIN)
        },
    );
    let Some(copies) = copies else {
        eprintln!("skipped: only root may read a vbzkey tool's memory (CI runs as root)");
        return;
    };
    assert_eq!(copies, 0, "the admin PIN is still in vbzkey-admin's memory: {seen}");
    assert!(!seen.contains(admin_pin), "{seen}");
}

/// A passphrase typed longer than the limit is refused (exit 3), not cut; the whole line is
/// read off the terminal, so none of it is left for the shell to run as a command once the
/// program ends.
#[test]
fn an_over_long_typed_passphrase_is_refused_and_nothing_is_left_for_the_shell() {
    let dir = TempDir::new("terminal-long");
    let key = dir.path("key.json");
    let long = format!("{}echo LEFT-FOR-THE-SHELL", "x".repeat(1100));
    let (seen, code) = typed_session(
        std::path::Path::new("sh"),
        &format!(
            "-c '{} keygen --encrypt --passphrase-file - -o {}; read -t 1 rest; echo \"rest=[$rest]\"'",
            bin("vbzkey").display(),
            key.display()
        ),
        &[("passphrase: ", &long)],
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(
        seen.contains("vbzkey: error: the passphrase typed is longer than 1024 bytes"),
        "{seen}"
    );
    assert!(seen.contains("rest=[]"), "the rest of the line stayed on the terminal: {seen}");
    assert!(!key.exists());
}

/// The same from a pipe (`--admin-pin-file -`, what the docs give scripts): std's stdin
/// buffer kept the admin PIN after it was sent. Read straight from the pipe, no copy is left.
#[test]
fn a_piped_admin_pin_leaves_no_copy_in_memory_once_sent() {
    use std::io::{BufRead, BufReader, Write};
    let dir = TempDir::new("piped-pin-memory");
    let d = vbzkey_e2e::AdminDongle::init(&dir, "24681357", &[]);
    let mut child = std::process::Command::new(bin("vbzkey-admin"))
        .args(["--dongle", &d.fw.target(), "--admin-pin-file", "-"])
        .args(["backup", "--threshold", "2", "--shares", "3", "-o"])
        .arg(dir.path("shares"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(vbzkey_e2e::ADMIN_PIN).unwrap();
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains(vbzkey_e2e::PRESS_PROMPT) {
        assert!(stderr.read_line(&mut seen).unwrap() > 0, "no press prompt: {seen}");
    }
    let copies = copies_in_memory(child.id(), vbzkey_e2e::ADMIN_PIN);
    child.kill().unwrap();
    child.wait().unwrap();
    let Some(copies) = copies else {
        eprintln!("skipped: only root may read a vbzkey tool's memory (CI runs as root)");
        return;
    };
    assert_eq!(copies, 0, "the admin PIN is still in vbzkey-admin's memory");
}
