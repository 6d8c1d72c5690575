//! Secrets typed at a terminal: `script` (util-linux, essential in Debian) gives a tool a
//! pseudo-terminal; the test types only after each prompt, as a person would, so anything
//! echoed would show in the transcript.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A shell command running on a pseudo-terminal, and everything the terminal showed so far.
struct Session {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Vec<u8>>,
    seen: String,
    /// Where in `seen` the next [`Session::wait_for`] looks: what it waited for is consumed.
    from: usize,
    deadline: Instant,
}

impl Session {
    fn start(cmd: &str) -> Self {
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
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        Session { child, stdin, rx, seen: String::new(), from: 0, deadline }
    }

    /// Wait until `what` shows after what was waited for last.
    fn wait_for(&mut self, what: &str) {
        loop {
            if let Some(at) = self.seen.get(self.from..).and_then(|rest| rest.find(what)) {
                self.from += at + what.len();
                return;
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!("no {what:?} in {:?}", self.seen.get(self.from..)),
            }
        }
    }

    /// Type `line` after `prompt` (only then: the terminal's echo is already off).
    fn answer(&mut self, prompt: &str, line: &str) {
        self.wait_for(prompt);
        self.stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Wait for the end: the transcript and the exit code.
    fn finish(mut self, name: &Path) -> (String, Option<i32>) {
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < self.deadline,
                "{} did not finish: {:?}",
                name.display(),
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.stdin);
        while let Ok(b) = self.rx.recv_timeout(Duration::from_millis(500)) {
            self.seen.push_str(&String::from_utf8_lossy(&b));
        }
        (self.seen, status.code())
    }
}

/// Run the program `bin` with `args` (shell words) on a pseudo-terminal, typing each line
/// after its prompt; the transcript (everything the terminal showed) and the exit code.
pub fn typed_session(bin: &Path, args: &str, answers: &[(&str, &str)]) -> (String, Option<i32>) {
    let mut s = Session::start(&format!("{} {args}", bin.display()));
    for (prompt, line) in answers {
        s.answer(prompt, line);
    }
    s.finish(bin)
}

/// Run `bin` with `args` on a pseudo-terminal; at `prompt`, send `signal` (`INT`, what
/// Ctrl-C sends, `HUP`, `TERM`) to the program (found by `marker`, one of its arguments),
/// then show the terminal's settings (`stty -a`, run by the shell after the program ended):
/// the transcript. The signal goes to the program alone, so that the shell, which Ctrl-C
/// would interrupt too, is still there to show them.
pub fn signalled_at_prompt(
    bin: &Path,
    args: &str,
    prompt: &str,
    marker: &str,
    signal: &str,
) -> String {
    let mut s = Session::start(&format!("{} {args}; stty -a", bin.display()));
    s.wait_for(prompt);
    let pid = pid_with_argument(marker).expect("the program is running");
    // The shell's own `kill` (procps, which has /bin/kill, is not on every Debian machine).
    let sent = Command::new("sh").arg("-c").arg(format!("kill -{signal} {pid}")).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
    s.finish(bin).0
}

/// Run `bin` with `args` from an interactive shell (`shell`: `bash` or `dash`, with job
/// control, as a person's) on a pseudo-terminal; at `prompt`, press Ctrl-Z; once the program
/// has stopped, show the terminal's settings (`stty -a`, run by that shell),
/// then `fg` and type each line after its prompt, shown again. The transcript, which ends with
/// the program's exit code (printed by the shell as `rc=N`).
pub fn stopped_at_prompt(
    shell: &str,
    bin: &Path,
    args: &str,
    prompt: &str,
    answers: &[(&str, &str)],
) -> String {
    let script = format!("{} {args}; stty -a; fg; echo rc=$?", bin.display());
    let mut s = Session::start(&format!("{shell} -ic '{script}'"));
    s.wait_for(prompt);
    s.stdin.write_all(b"\x1a").unwrap();
    s.stdin.flush().unwrap();
    // The last of the local modes `stty -a` shows: the shell's settings are all there.
    s.wait_for("echoke");
    for (prompt, line) in answers {
        s.answer(prompt, line);
    }
    s.finish(bin).0
}

/// Run `bin` with `args` on a pseudo-terminal with no job-control shell (as `ssh -t host
/// cmd` gives); at the first prompt of `answers`, press Ctrl-Z, and half a second later read
/// the program's state (found by `marker`, one of its arguments; `T` is stopped); then type
/// each line after its prompt. The state, the transcript and the exit code.
pub fn ctrl_z_without_job_control(
    bin: &Path,
    args: &str,
    marker: &str,
    answers: &[(&str, &str)],
) -> (Option<char>, String, Option<i32>) {
    let mut s = Session::start(&format!("{} {args}", bin.display()));
    let Some(((prompt, first), rest)) = answers.split_first() else { panic!("no prompt") };
    s.wait_for(prompt);
    s.stdin.write_all(b"\x1a").unwrap();
    s.stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let state = pid_with_argument(marker).and_then(|pid| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    });
    s.stdin.write_all(format!("{first}\n").as_bytes()).unwrap();
    s.stdin.flush().unwrap();
    for (prompt, line) in rest {
        s.answer(prompt, line);
    }
    let (seen, code) = s.finish(bin);
    (state, seen, code)
}

/// Run `bin` with `args` on a pseudo-terminal, type `line` after `prompt`, and once `then`
/// shows, run `inspect` while the program waits there; then end the program. What
/// `inspect` returned, and the transcript.
pub fn typed_then_inspect<T>(
    bin: &Path,
    args: &str,
    (prompt, line): (&str, &str),
    then: &str,
    inspect: impl FnOnce() -> T,
) -> (T, String) {
    let mut s = Session::start(&format!("{} {args}", bin.display()));
    s.answer(prompt, line);
    s.wait_for(then);
    let found = inspect();
    let _ = s.child.kill();
    let _ = s.child.wait();
    (found, s.seen)
}

/// How many copies of `needle` the readable memory of process `pid` holds
/// (`/proc/PID/maps` and `/proc/PID/mem`). `None` when this process may not read it: the
/// vbzkey tools make themselves not dumpable, which only root (`CAP_SYS_PTRACE`, as in CI)
/// gets past.
pub fn copies_in_memory(pid: u32, needle: &[u8]) -> Option<usize> {
    use std::io::{Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut mem = match std::fs::File::open(format!("/proc/{pid}/mem")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !is_root() => return None,
        Err(e) => panic!("open /proc/{pid}/mem: {e}"),
    };
    let mut copies = 0;
    for line in maps.lines() {
        let mut cols = line.split_whitespace();
        let (Some(range), Some(perms)) = (cols.next(), cols.next()) else { continue };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let Some((lo, hi)) = range.split_once('-') else { continue };
        let (lo, hi) = (u64::from_str_radix(lo, 16).unwrap(), u64::from_str_radix(hi, 16).unwrap());
        let mut data = vec![0u8; (hi - lo) as usize];
        if mem.seek(SeekFrom::Start(lo)).is_err() || mem.read_exact(&mut data).is_err() {
            continue;
        }
        copies += data.windows(needle.len()).filter(|w| *w == needle).count();
    }
    Some(copies)
}

/// Whether this process runs as root (`/proc/self/status`'s effective uid).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1).map(|e| e == "0"))
            .unwrap_or(false)
    })
}

/// The process whose command line holds `marker` (a unique argument), if one runs.
pub fn pid_with_argument(marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let is_it = cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes());
        let is_wrapper = cmdline.starts_with(b"script\0") || cmdline.starts_with(b"sh\0");
        (is_it && !is_wrapper).then_some(pid)
    })
}
