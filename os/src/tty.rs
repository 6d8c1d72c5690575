//! Typing a secret at a terminal: echo off while it is read, restored afterwards — also when
//! Ctrl-C, a hang-up or `kill` ends the program in the middle of the prompt.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// While alive, the terminal on `fd` does not echo what is typed (line editing still works,
/// and the newline that ends the line is echoed so the next output starts on its own line).
/// Dropping it restores the settings found; so does a signal that ends the program meanwhile
/// (Ctrl-C, Ctrl-\, a hang-up, `kill`), before the program ends as that signal would end it.
/// Only `SIGKILL` leaves echo off (`stty echo` or `reset` restores it).
#[derive(Debug)]
pub struct EchoOff<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

/// The terminal settings a signal must restore before the program ends: set while an
/// [`EchoOff`] is alive.
static TO_RESTORE: Mutex<Option<(OwnedFd, Termios)>> = Mutex::new(None);

/// The signals whose default action ends the program and that a person or the system sends
/// to a program waiting at a prompt.
const ENDING: [i32; 4] = [SIGINT, SIGQUIT, SIGHUP, SIGTERM];

/// Start, once per process, the thread that receives [`ENDING`] signals: it restores
/// [`TO_RESTORE`] (if a prompt is on), then ends the program as the signal's default action
/// does. The handlers stay for the rest of the program (signal-hook cannot give the default
/// back), which is why the thread always ends it afterwards, prompt or not.
fn watch_signals() -> io::Result<()> {
    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    if *started {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new(ENDING)?;
    std::thread::Builder::new().name("tty-restore".into()).spawn(move || {
        for sig in signals.forever() {
            // Held until the program is gone: a prompt the main thread starts meanwhile
            // cannot turn echo off again after this restored it.
            let pending = TO_RESTORE.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((fd, saved)) = pending.as_ref() {
                let _ = tcsetattr(fd, OptionalActions::Now, saved);
            }
            let _ = signal_hook::low_level::emulate_default_handler(sig);
        }
    })?;
    *started = true;
    Ok(())
}

impl<'a> EchoOff<'a> {
    /// Turn echo off on the terminal `fd`; an error if `fd` is not a terminal.
    pub fn new(fd: BorrowedFd<'a>) -> io::Result<Self> {
        let saved = tcgetattr(fd)?;
        // Before echo goes off: a signal from here on restores the terminal first. Echo goes
        // off under the lock the signal's restore takes, so the two cannot interleave.
        watch_signals()?;
        let mut pending = TO_RESTORE.lock().unwrap_or_else(|p| p.into_inner());
        *pending = Some((fd.try_clone_to_owned()?, saved.clone()));
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        // Flush: anything typed before the prompt (and already echoed) is not taken.
        let off = EchoOff { fd, saved };
        tcsetattr(fd, OptionalActions::Flush, &quiet)?;
        Ok(off)
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let mut pending = TO_RESTORE.lock().unwrap_or_else(|p| p.into_inner());
        let _ = tcsetattr(self.fd.as_fd(), OptionalActions::Now, &self.saved);
        *pending = None;
    }
}

/// Read the line typed on the terminal `fd` (which [`EchoOff`] has made quiet), without its
/// line ending, straight from the terminal into a buffer wiped on drop: std's `stdin()` would
/// first copy it into its own 8 KiB buffer, which lives, never wiped, until the program ends
/// (a typed admin PIN was found there while `vbzkey-admin` waited for the button). At most
/// `max + 1` bytes are kept (so the caller can tell an over-long line); the rest of the line
/// is still read, and wiped, so that nothing typed is left for the shell to run.
pub fn read_typed_line(fd: BorrowedFd<'_>, max: usize) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
    use zeroize::Zeroize;
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(max + 1));
    let mut chunk = zeroize::Zeroizing::new([0u8; 256]);
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
