//! The dongle's audit log: `audit export` and `audit verify` (the chain, and its head against
//! the dongle's). The format is `vbzkey_protocol::audit`, specified in docs/AUDIT-LOG.md.

use std::path::PathBuf;

use clap::Subcommand;
use vbzkey_client::AuditTail;
use vbzkey_protocol::audit::{self, Hash};

use crate::dongle::Dongle;
use crate::error::{AdminError, AuditProblem};
use crate::output::Output;

/// Lines asked for: as many as the dongle gives (it caps them at its own limit).
const MAX_LINES: u16 = u16::MAX;

/// The audit subcommands.
#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the log (every line, oldest first).
    #[command(after_help = "Example:\n  vbzkey-admin audit export -o audit-2026-11.log")]
    Export {
        /// Write to this file.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check the hash chain, of the dongle's log or of an exported file.
    #[command(
        after_help = "Example:\n  vbzkey-admin audit verify\n  vbzkey-admin audit verify audit-2026-11.log"
    )]
    Verify {
        /// An exported log; without it the dongle's own log is fetched and checked.
        file: Option<PathBuf>,
    },
}

/// Run an audit subcommand.
pub(crate) fn run(d: &Dongle, cmd: &AuditCommand) -> Result<Output, AdminError> {
    match cmd {
        AuditCommand::Export { output } => {
            let tail = d.client().audit_tail(MAX_LINES)?;
            let out = exported(&tail, output.as_deref());
            if let Some(path) = output {
                vbzkey_os::durable::write(
                    path,
                    out.stdout.as_bytes(),
                    0o600,
                    vbzkey_os::durable::Mode::Replace,
                )
                .map_err(|e| AdminError::io("write", path, e))?;
                return Ok(Output { stdout: Default::default(), stderr: out.stderr });
            }
            Ok(out)
        }
        AuditCommand::Verify { file: Some(path) } => {
            let text =
                std::fs::read_to_string(path).map_err(|e| AdminError::io("read", path, e))?;
            Ok(verified(&text, None)?)
        }
        AuditCommand::Verify { file: None } => {
            let tail = d.client().audit_tail(MAX_LINES)?;
            let text = whole(&tail)?;
            Ok(verified(&text, Some(tail.head))?)
        }
    }
}

/// The exported lines, and, when they go to a file, a note saying so.
fn exported(tail: &AuditTail, to: Option<&std::path::Path>) -> Output {
    let mut out = Output::default();
    for l in &tail.lines {
        out.line(l);
    }
    if let Some(path) = to {
        out.note(format!("{} lines written to {}.", tail.lines.len(), path.display()));
    }
    out
}

/// The whole log from a tail, or why it is not whole.
fn whole(tail: &AuditTail) -> Result<String, AuditProblem> {
    if tail.lines.len() as u64 != tail.total {
        return Err(AuditProblem::Incomplete { fetched: tail.lines.len(), total: tail.total });
    }
    Ok(tail.lines.join("\n"))
}

/// Verify `text`, and that its head is `head` when the dongle's head is known.
fn verified(text: &str, head: Option<Hash>) -> Result<Output, AuditProblem> {
    let (computed, n) = audit::verify(text).map_err(AuditProblem::Broken)?;
    if head.is_some_and(|h| n > 0 && h != computed) {
        return Err(AuditProblem::HeadMismatch);
    }
    let mut out = Output::default();
    out.line(format!("audit log verifies: {n} entries, head {}", audit::hex(&computed)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::audit::{AuditError, Entry};

    fn log(n: u64) -> (String, Hash) {
        let mut head = [0u8; 32];
        let mut text = String::new();
        for seq in 0..n {
            let e =
                Entry { seq, unix: 9, event: "unseal", keys: "", ok: 1, failed: 0, host: "usb" };
            let (line, h) = audit::line(&head, &e);
            text.push_str(&line);
            head = h;
        }
        (text, head)
    }

    #[test]
    fn a_chain_that_holds_and_matches_the_dongles_head_verifies() {
        let (text, head) = log(3);
        let out = verified(&text, Some(head)).unwrap();
        assert_eq!(
            out.stdout.as_str(),
            format!("audit log verifies: 3 entries, head {}\n", audit::hex(&head))
        );
        assert!(verified(&text, None).is_ok());
    }

    #[test]
    fn an_edited_log_or_another_dongles_head_does_not_verify() {
        let (text, head) = log(3);
        let edited = text.replacen(" 1 0 usb", " 0 0 usb", 1);
        assert!(matches!(
            verified(&edited, Some(head)),
            Err(AuditProblem::Broken(AuditError::Broken { line: 1 }))
        ));
        assert!(matches!(verified(&text, Some([1; 32])), Err(AuditProblem::HeadMismatch)));
        assert!(
            AuditProblem::HeadMismatch.to_string().contains("does NOT verify"),
            "scripts and people look for these words"
        );
    }

    #[test]
    fn an_export_is_the_lines_as_stored_and_verifies_again() {
        let (text, head) = log(2);
        let tail = AuditTail { lines: text.lines().map(str::to_string).collect(), head, total: 2 };
        let out = exported(&tail, None);
        assert_eq!(out.stdout.as_str(), text);
        assert!(out.stderr.is_empty());
        assert!(verified(&out.stdout, Some(head)).is_ok());
        let to_file = exported(&tail, Some(std::path::Path::new("a.log")));
        assert_eq!(to_file.stderr, "2 lines written to a.log.\n");
    }

    #[test]
    fn a_partial_tail_is_not_passed_off_as_the_whole_log() {
        let (text, head) = log(3);
        let lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
        let tail = AuditTail { lines, head, total: 3 };
        assert!(matches!(whole(&tail), Err(AuditProblem::Incomplete { fetched: 2, total: 3 })));
    }
}
