//! Secrets typed at a terminal: `script` (util-linux, essential in Debian) gives a tool a
//! pseudo-terminal; the test types only after each prompt, as a person would, so anything
//! echoed would show in the transcript.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Run the program `bin` with `args` (shell words) on a pseudo-terminal, typing each line after its prompt; the
/// transcript (everything the terminal showed) and the exit code.
pub fn typed_session(bin: &Path, args: &str, answers: &[(&str, &str)]) -> (String, Option<i32>) {
    shell_session(bin, &format!("{} {args}", bin.display()), answers)
}

/// Run `bin` with `args` on a pseudo-terminal, press Ctrl-C at `prompt`, then show the
/// terminal's settings (`stty -a`, run by the shell the program was started from): the
/// transcript.
pub fn interrupted_at_prompt(bin: &Path, args: &str, prompt: &str) -> String {
    let cmd = format!("trap 'stty -a; exit 130' INT; {} {args}; stty -a", bin.display());
    shell_session(bin, &cmd, &[(prompt, "\u{3}")]).0
}

/// The shell command `cmd` on a pseudo-terminal, typing each line after its prompt; `bin`
/// names the program in messages.
fn shell_session(bin: &Path, cmd: &str, answers: &[(&str, &str)]) -> (String, Option<i32>) {
    let mut child = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
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
        assert!(Instant::now() < deadline, "{} did not finish: {seen:?}", bin.display());
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    while let Ok(b) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push_str(&String::from_utf8_lossy(&b));
    }
    (seen, status.code())
}
