//! Typing a secret at a terminal: a prompt, echo off while the line is read, restored
//! afterwards — also when Ctrl-C, a hang-up or `kill` ends the program in the middle of the
//! prompt, and around a Ctrl-Z: the shell gets its echo back while the program is stopped,
//! and the prompt comes back quiet when it is continued.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP};
use zeroize::{Zeroize, Zeroizing};

/// Ask for a secret on standard input, which must be a terminal: `prompt` and `": "` on
/// standard error, then one line read with echo off, without its line ending, into a buffer
/// wiped on drop. At most `max + 1` bytes are kept, so the caller can tell an over-long line
/// (the rest of it is still read, and wiped, so nothing typed is left for the shell to run).
/// An error if standard input is not a terminal.
pub fn read_secret(prompt: &str, max: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    let prompt = format!("{prompt}: ");
    let quiet = EchoOff::new(fd, &prompt)?;
    show(&prompt);
    let line = read_typed_line(fd, max)?;
    drop(quiet);
    Ok(line)
}

/// Write `prompt` to standard error; a terminal that cannot show it still takes the line.
fn show(prompt: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
}

/// While alive, the terminal on `fd` does not echo what is typed (line editing still works,
/// and the newline that ends the line is echoed so the next output starts on its own line).
/// Dropping it restores the settings found; so does a signal that ends the program meanwhile
/// (Ctrl-C, Ctrl-\, a hang-up, `kill`), before the program ends as that signal would end it.
/// Only `SIGKILL` leaves echo off (`stty echo` or `reset` restores it).
#[derive(Debug)]
struct EchoOff<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

/// A prompt waiting for its line: what a signal needs to put the terminal right.
struct Prompting {
    fd: OwnedFd,
    /// The settings found, given back when the prompt ends, the program ends or stops.
    saved: Termios,
    /// The settings while the line is typed, put back when a stopped program continues.
    quiet: Termios,
    /// Shown again when a stopped program continues (the shell's output is in between).
    prompt: String,
}

/// Set while an [`EchoOff`] is alive.
static PROMPTING: Mutex<Option<Prompting>> = Mutex::new(None);

/// The signals whose default action ends the program and that a person or the system sends
/// to a program waiting at a prompt.
const ENDING: [i32; 4] = [SIGINT, SIGQUIT, SIGHUP, SIGTERM];

/// Start, once per process, the thread that receives the signals a prompt must answer:
/// - [`ENDING`]: restore the terminal (if a prompt is on), then end the program as the
///   signal's default action does;
/// - `SIGTSTP` (Ctrl-Z): restore the terminal, then stop as the default action does, so the
///   shell the person is returned to echoes what they type (and, as the default, not stop
///   where no shell could continue the program: [`group_can_stop`]);
/// - `SIGCONT` (`fg`, `kill -CONT`): echo off again and the prompt shown again, whoever
///   stopped the program (bash gives the terminal back its own settings when a job stops,
///   which turned echo on under a prompt that went on reading).
///
/// The handlers stay for the rest of the program (signal-hook cannot give the default
/// back), which is why the thread always does the default afterwards, prompt or not.
fn watch_signals() -> io::Result<()> {
    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    if *started {
        return Ok(());
    }
    let mut handled = ENDING.to_vec();
    handled.extend([SIGTSTP, SIGCONT]);
    let mut signals = signal_hook::iterator::Signals::new(handled)?;
    std::thread::Builder::new().name("tty-restore".into()).spawn(move || {
        for sig in signals.forever() {
            let prompting = PROMPTING.lock().unwrap_or_else(|p| p.into_inner());
            if sig == SIGCONT {
                // In the background, setting the terminal stops the program (`SIGTTOU`)
                // until it is in the foreground again; only then is the prompt shown.
                if let Some(p) = prompting.as_ref()
                    && tcsetattr(&p.fd, OptionalActions::Flush, &p.quiet).is_ok()
                {
                    show(&p.prompt);
                }
                continue;
            }
            if sig == SIGTSTP && !group_can_stop() {
                continue;
            }
            if let Some(p) = prompting.as_ref() {
                let _ = tcsetattr(&p.fd, OptionalActions::Now, &p.saved);
            }
            // Held while stopped, and until the program is gone: the main thread cannot
            // turn echo off (a second prompt) or on (the end of this one) meanwhile.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
        }
    })?;
    *started = true;
    Ok(())
}

/// Whether Ctrl-Z may stop this program: the kernel discards it for a process group that no
/// shell can continue (an orphaned one: no member has a parent in another group of the same
/// session, as under `ssh -t host vbzkey-admin …`), so the default action is to stop only
/// when some member's parent is such a shell. The watcher must decide the same, since it
/// stops the program with `SIGSTOP`, which is never discarded. When `/proc` cannot tell,
/// the prompt goes on rather than risk a stop nothing can undo.
fn group_can_stop() -> bool {
    let Some(me) = ProcStat::read("self") else { return false };
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().filter_map(|e| ProcStat::read(e.file_name().to_str()?)).any(|member| {
        member.pgrp == me.pgrp
            && ProcStat::read(&member.ppid.to_string())
                .is_some_and(|parent| parent.pgrp != me.pgrp && parent.session == me.session)
    })
}

/// The fields of `/proc/PID/stat` a job-control decision needs.
struct ProcStat {
    ppid: u32,
    pgrp: u32,
    session: u32,
}

impl ProcStat {
    /// `/proc/<pid>/stat`, `None` for anything that is not a process's or cannot be read.
    fn read(pid: &str) -> Option<Self> {
        if pid != "self" && !pid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name, which may hold spaces and parentheses: state, ppid, pgrp,
        // session.
        let (_, rest) = text.rsplit_once(')')?;
        let mut fields = rest.split_ascii_whitespace().skip(1).map(|f| f.parse().ok());
        Some(ProcStat { ppid: fields.next()??, pgrp: fields.next()??, session: fields.next()?? })
    }
}

impl<'a> EchoOff<'a> {
    /// Turn echo off on the terminal `fd`, which shows `prompt`; an error if `fd` is not a
    /// terminal.
    fn new(fd: BorrowedFd<'a>, prompt: &str) -> io::Result<Self> {
        let saved = tcgetattr(fd)?;
        // Before echo goes off: a signal from here on restores the terminal first. Echo goes
        // off under the lock the signal's restore takes, so the two cannot interleave.
        watch_signals()?;
        let mut prompting = PROMPTING.lock().unwrap_or_else(|p| p.into_inner());
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        *prompting = Some(Prompting {
            fd: fd.try_clone_to_owned()?,
            saved: saved.clone(),
            quiet: quiet.clone(),
            prompt: prompt.to_string(),
        });
        // Flush: anything typed before the prompt (and already echoed) is not taken.
        let off = EchoOff { fd, saved };
        tcsetattr(fd, OptionalActions::Flush, &quiet)?;
        Ok(off)
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let mut prompting = PROMPTING.lock().unwrap_or_else(|p| p.into_inner());
        let _ = tcsetattr(self.fd.as_fd(), OptionalActions::Now, &self.saved);
        *prompting = None;
    }
}

/// Read the line typed on the terminal `fd` (which [`EchoOff`] has made quiet), without its
/// line ending, straight from the terminal into a buffer wiped on drop: std's `stdin()` would
/// first copy it into its own 8 KiB buffer, which lives, never wiped, until the program ends
/// (a typed admin PIN was found there while `vbzkey-admin` waited for the button). At most
/// `max + 1` bytes are kept; the rest of the line is still read, and wiped.
fn read_typed_line(fd: BorrowedFd<'_>, max: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::with_capacity(max + 1));
    let mut chunk = Zeroizing::new([0u8; 256]);
    loop {
        let n = match rustix::io::read(fd, &mut chunk[..]) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let got = &chunk[..n];
        let (part, ended) = match got.iter().position(|b| *b == b'\n') {
            Some(i) => (&got[..i], true),
            None => (got, n == 0),
        };
        let room = (max + 1).saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        chunk.zeroize();
        if ended {
            break;
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}
