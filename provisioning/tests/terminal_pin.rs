//! `--new-pin-file -` on a terminal: a prompt, echo off, the PIN asked twice. `script`
//! (util-linux, essential in Debian) gives the tool a pseudo-terminal; the test types only
//! after each prompt, as a person would, so anything echoed would show in the transcript.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Run `vbzkey-admin ARGS` on a pseudo-terminal, typing each line after its prompt; the
/// transcript (everything the terminal showed) and the exit code.
fn typed_session(args: &str, answers: &[(&str, &str)]) -> (String, Option<i32>) {
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_vbzkey-admin"));
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1) from util-linux");
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let wait_for = |what: &str, seen: &mut String| {
        while !seen.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!("no {what:?} in {seen:?}"),
            }
        }
    };
    for (prompt, line) in answers {
        wait_for(prompt, &mut seen);
        // Typed only after the prompt: the terminal's echo is already off by then.
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        seen = seen.replacen(prompt, &format!("<{prompt}>"), 1);
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vbzkey-admin did not finish: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    while let Ok(b) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push_str(&String::from_utf8_lossy(&b));
    }
    (seen, status.code())
}

#[test]
fn a_new_pin_typed_at_a_terminal_is_not_echoed_and_is_asked_twice() {
    // Two different entries: refused before anything reaches a dongle.
    let (seen, code) = typed_session(
        "--dongle unix:/nonexistent/dongle.sock set-pin --new-pin-file -",
        &[("new staff PIN: ", "first-typed-pin"), ("new staff PIN, again: ", "other-typed-pin")],
    );
    assert_eq!(code, Some(2), "{seen}");
    assert!(seen.contains("the two new staff PINs typed differ"), "{seen}");
    assert!(!seen.contains("first-typed-pin") && !seen.contains("other-typed-pin"), "{seen}");

    // The same twice: taken, and the command goes on (to ask for the admin PIN it lacks).
    let (seen, code) = typed_session(
        "--dongle unix:/nonexistent/dongle.sock set-pin --new-pin-file -",
        &[("new staff PIN: ", "same-typed-pin"), ("new staff PIN, again: ", "same-typed-pin")],
    );
    assert_eq!(code, Some(2), "{seen}");
    assert!(seen.contains("--admin-pin-file"), "{seen}");
    assert!(!seen.contains("differ") && !seen.contains("same-typed-pin"), "{seen}");
}
