//! Bounded reads from stdin or files, and the terminal checks of a Unix filter.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::CliError;

/// Read all of stdin, refusing more than `limit` bytes instead of buffering without bound.
/// On a terminal a one-line hint says what is awaited, instead of a silent wait.
pub(crate) fn read_stdin(limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    if std::io::stdin().is_terminal() {
        eprintln!("vbzkey: reading {what} from standard input; end it with Ctrl-D");
    }
    // Not through std's stdin buffer, which would keep a copy of the plaintext or passphrase.
    let stdin = std::io::stdin();
    let buf = vbzkey_os::input::read_to_end_wiped(std::os::fd::AsFd::as_fd(&stdin), limit)
        .map_err(|e| CliError::io("cannot read standard input", e))?;
    if buf.len() > limit {
        return Err(CliError::BadInput(format!(
            "{what} on standard input is longer than {limit} bytes"
        )));
    }
    Ok(buf)
}

/// Read the command's input: the file `path` (`-` or none: standard input), refusing more
/// than `limit` bytes.
pub(crate) fn read_input(
    path: Option<&Path>,
    limit: usize,
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let Some(path) = path.filter(|p| *p != Path::new("-")) else {
        return read_stdin(limit, what);
    };
    let err = |e| CliError::io(format!("cannot read {}", path.display()), e);
    let f = std::fs::File::open(path).map_err(err)?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(limit as u64 + 1).read_to_end(&mut buf).map_err(err)?;
    if buf.len() > limit {
        return Err(CliError::BadInput(format!(
            "{what} in {} is longer than {limit} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Read a small file (keys), refusing more than `limit` bytes.
pub(crate) fn read_file(path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let what = || format!("cannot read {}", path.display());
    let f = std::fs::File::open(path).map_err(|e| CliError::io(what(), e))?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(limit as u64 + 1).read_to_end(&mut buf).map_err(|e| CliError::io(what(), e))?;
    if buf.len() > limit {
        return Err(CliError::BadInput(format!(
            "{} is larger than a key file can be",
            path.display()
        )));
    }
    Ok(buf)
}

/// Remove one trailing line ending (what `echo` and editors add), keeping anything else.
pub(crate) fn strip_one_newline(buf: &[u8]) -> &[u8] {
    let buf = buf.strip_suffix(b"\n").unwrap_or(buf);
    buf.strip_suffix(b"\r").unwrap_or(buf)
}

/// Refuse to write binary or secret output to a terminal, like `age` does; `instead` says
/// what this command offers.
pub(crate) fn refuse_terminal(what: &str, instead: &str) -> Result<(), CliError> {
    if std::io::stdout().is_terminal() {
        return Err(CliError::Usage(format!("refusing to write {what} to a terminal; {instead}")));
    }
    Ok(())
}

/// Write to stdout; a closed pipe (e.g. `| head`) is not an error worth a message.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::io("cannot write standard output", e))
        }
        _ => Ok(()),
    }
}

/// Whether stdout is a terminal (then text output gets a final newline).
pub(crate) fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Whether stdin is a terminal (then a secret on `-` is typed, and asked for).
pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// One line typed at the terminal on stdin after a prompt on stderr, with echo off (as the
/// admin tool's PIN prompt), without its line ending; read straight from the terminal (not
/// through std's stdin buffer, which would keep a copy) and wiped when dropped.
pub(crate) fn typed_secret(what: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let line = vbzkey_os::tty::read_secret(what, vbzkey_softkey::MAX_PASSPHRASE_LEN)
        .map_err(|e| CliError::io("cannot read the terminal", e))?;
    if line.len() > vbzkey_softkey::MAX_PASSPHRASE_LEN {
        return Err(CliError::BadInput(format!(
            "the {what} typed is longer than {} bytes",
            vbzkey_softkey::MAX_PASSPHRASE_LEN
        )));
    }
    Ok(line)
}

/// Write a command's result to `output` (`-` or none: standard output) — crash-safely and
/// replacing the file, like age's `-o`; 0600 when it is secret (a plaintext), else 0644.
pub(crate) fn write_output(
    output: Option<&Path>,
    bytes: &[u8],
    secret: bool,
) -> Result<(), CliError> {
    match output.filter(|p| *p != Path::new("-")) {
        None => write_stdout(bytes),
        Some(path) => vbzkey_os::durable::write(
            path,
            bytes,
            if secret { 0o600 } else { 0o644 },
            vbzkey_os::durable::Mode::Replace,
        )
        .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e)),
    }
}
