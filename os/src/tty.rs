//! Typing a secret at a terminal: echo off while it is read, restored afterwards.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};

/// While alive, the terminal on `fd` does not echo what is typed (line editing still works,
/// and the newline that ends the line is echoed so the next output starts on its own line).
/// Dropping it restores the settings found. A signal that kills the process first leaves
/// echo off, as with `passwd` and `ssh`; `reset` or `stty echo` restores it.
#[derive(Debug)]
pub struct EchoOff<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> EchoOff<'a> {
    /// Turn echo off on the terminal `fd`; an error if `fd` is not a terminal.
    pub fn new(fd: BorrowedFd<'a>) -> io::Result<Self> {
        let saved = tcgetattr(fd)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        // Flush: anything typed before the prompt (and already echoed) is not taken.
        tcsetattr(fd, OptionalActions::Flush, &quiet)?;
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd.as_fd(), OptionalActions::Now, &self.saved);
    }
}
