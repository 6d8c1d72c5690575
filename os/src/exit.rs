//! How every vbzkey program ends: one table of exit codes, one per class of failure, shared by
//! `vbzkey`, `vbzkey-admin`, `vbzkey-bridge` and `vbzkey-firmware` so that they cannot
//! disagree (docs/CLI.md prints the same table, and a test compares the two), and one error
//! prefix, `<tool>: error:`, on standard error.

use std::process::ExitCode;

/// The class of a program's end. Each tool uses the classes that can happen to it; a code
/// means the same in all four.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// A file, a stream, the terminal or the database could not be read or written.
    Io = 1,
    /// The command line is wrong or incomplete (clap's own code as well).
    Usage = 2,
    /// What a file or standard input holds is malformed: a record, a key, a share, JSON, a
    /// PIN of impossible length.
    BadInput = 3,
    /// Not there: no dongle at the address, no such key or paired host, a record sealed to
    /// another key.
    NotFound = 4,
    /// Refused in this state (by the dongle, or by the tool to protect data); the message
    /// says what is missing.
    Refused = 5,
    /// A wrong PIN, admin PIN or passphrase.
    WrongCredential = 6,
    /// Too many wrong PINs: that credential is locked out.
    LockedOut = 7,
    /// The link broke mid-exchange, or the dongle (or its hardware) failed or answered
    /// nonsense.
    DongleFailed = 8,
    /// Does not verify: an audit log, or a record that does not open under this context
    /// (altered, or sealed for another place).
    NotVerified = 9,
    /// A destructive command was not confirmed (no button press, no typed serial); nothing
    /// was changed.
    Aborted = 10,
    /// The self-test failed (EX_SOFTWARE): the program refuses to run on this machine.
    SelfTest = 70,
    /// A daemon's configuration cannot be used (EX_CONFIG): systemd does not restart it.
    Config = 78,
}

impl Exit {
    /// Every class, in code order: the table `--help` and docs/CLI.md print.
    pub const ALL: [Exit; 13] = [
        Exit::Ok,
        Exit::Io,
        Exit::Usage,
        Exit::BadInput,
        Exit::NotFound,
        Exit::Refused,
        Exit::WrongCredential,
        Exit::LockedOut,
        Exit::DongleFailed,
        Exit::NotVerified,
        Exit::Aborted,
        Exit::SelfTest,
        Exit::Config,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The class in a few words, as the table prints it.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "done",
            Exit::Io => "I/O error (a file, stream, terminal or database)",
            Exit::Usage => "usage error (the command line)",
            Exit::BadInput => "bad input (a record, key, share, JSON or PIN file is malformed)",
            Exit::NotFound => "not found (no dongle, no such key or host, record for another key)",
            Exit::Refused => "refused in this state (the message says what is missing)",
            Exit::WrongCredential => "wrong PIN, admin PIN or passphrase",
            Exit::LockedOut => "locked out (too many wrong PINs)",
            Exit::DongleFailed => "link or dongle failure",
            Exit::NotVerified => "does not verify (audit log; record altered or other context)",
            Exit::Aborted => "not confirmed (nothing changed)",
            Exit::SelfTest => "self-test failed",
            Exit::Config => "configuration unusable (systemd does not restart)",
        }
    }

    /// The exit-code table for a tool's `--help` (the same lines as docs/CLI.md's table).
    pub fn help() -> String {
        let mut text = String::from("Exit codes (the same for every vbzkey tool, docs/CLI.md):");
        for e in Exit::ALL {
            text.push_str(&format!("\n  {:>2}  {}", e.code(), e.meaning()));
        }
        text
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// Print `<tool>: error: <message>` on standard error: the one error line every tool prints.
pub fn error(tool: &str, message: impl std::fmt::Display) {
    eprintln!("{tool}: error: {message}");
}

/// End after a command line that did not parse: clap's rendered text (which begins with
/// `error: `), prefixed with the tool's name on standard error and exit 2; `--help` and
/// `--version` (not errors) go to standard output with exit 0.
pub fn command_line(tool: &str, rendered: &str, is_error: bool) -> ExitCode {
    if is_error {
        eprint!("{tool}: {rendered}");
        Exit::Usage.into()
    } else {
        print!("{rendered}");
        Exit::Ok.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_code_and_a_line_in_the_table() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "in code order, no code twice");
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
        let help = Exit::help();
        for e in Exit::ALL {
            assert!(help.contains(&format!("{:>2}  {}", e.code(), e.meaning())), "{e:?}");
        }
        // Room for the table in an 80-column terminal.
        assert!(help.lines().all(|l| l.chars().count() <= 80), "{help}");
    }
}
