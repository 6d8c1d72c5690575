//! Secrets and shares from files or stdin: never from the command line, where they would
//! land in the shell history and in `ps`.

use std::io::Read;
use std::path::{Path, PathBuf};

use vbzkey_protocol::share::Share;
use vbzkey_protocol::wire::Pin;
use zeroize::Zeroizing;

use crate::error::{AdminError, SharesProblem};

/// Longest secret or share file read.
const MAX_INPUT: u64 = 64 * 1024;

fn read_bytes(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    if path == Path::new("-") {
        // Not through std's stdin buffer, which would keep a copy of the PIN or share. (One
        // byte less than the limit is asked, as `take(MAX_INPUT)` below reads at most that.)
        let stdin = std::io::stdin();
        let fd = std::os::fd::AsFd::as_fd(&stdin);
        return vbzkey_os::input::read_to_end_wiped(fd, MAX_INPUT as usize - 1);
    }
    let mut raw = Zeroizing::new(Vec::new());
    std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT).read_to_end(&mut raw))?;
    Ok(raw)
}

fn read_all(path: &Path) -> Result<Zeroizing<Vec<u8>>, AdminError> {
    read_bytes(path).map_err(|e| AdminError::io("read", path, e))
}

/// The first line of `text`, without its line ending.
fn first_line(text: &[u8]) -> &[u8] {
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The PIN in the first line of `path` (`-`: stdin), without its line ending. From a
/// terminal, `what` is asked for with echo off.
pub(crate) fn read_pin(path: &Path, what: &str) -> Result<Pin, AdminError> {
    if let Some(typed) = typed(path, what)? {
        return Ok(Pin::new(&typed));
    }
    Ok(Pin::new(first_line(&read_all(path)?)))
}

/// A PIN being set: as [`read_pin`], but typed twice at a terminal, and refused when the two
/// differ (a typo would otherwise lock its owner out).
pub(crate) fn read_new_pin(path: &Path, what: &str) -> Result<Pin, AdminError> {
    let Some(first) = typed(path, what)? else { return read_pin(path, what) };
    let again = typed(path, &format!("{what}, again"))?.unwrap_or_default();
    if first != again {
        return Err(crate::error::Usage::TypedPinsDiffer(what.to_string()).into());
    }
    Ok(Pin::new(&first))
}

/// A line typed at the terminal on stdin, echo off, after a prompt on stderr; `None` when
/// `path` is not `-` or stdin is not a terminal (files and pipes are read as they are).
fn typed(path: &Path, what: &str) -> Result<Option<Zeroizing<Vec<u8>>>, AdminError> {
    use std::io::IsTerminal;
    if path != Path::new("-") || !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let line = vbzkey_os::tty::read_secret(what, MAX_TYPED)
        .map_err(|e| AdminError::io("read", "the terminal", e))?;
    Ok(Some(line))
}

/// Longest line taken from a terminal (a PIN is at most 128 bytes).
const MAX_TYPED: usize = 1024;

/// The first line of `path` (`-`: stdin), without its line ending: a secret other than a PIN
/// (the database password of `rewrap --db mysql://…`), wiped when dropped.
pub(crate) fn read_secret_line(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(first_line(&read_bytes(path)?).to_vec()))
}

/// The shares in `text` (blank lines and `#` comments skipped), each checked for its checksum.
fn parse_shares(path: &Path, text: &str) -> Result<Vec<Share>, SharesProblem> {
    let mut shares = Vec::new();
    for (i, line) in text.lines().enumerate().map(|(i, l)| (i, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let share = Share::from_text(line).map_err(|source| SharesProblem::Line {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        shares.push(share);
    }
    Ok(shares)
}

/// The shares must be enough, and of one backup: said here, by name, before anything
/// reaches the dongle.
fn check_shares(shares: &[Share]) -> Result<(), SharesProblem> {
    let first = shares.first().ok_or(SharesProblem::None)?;
    if shares.iter().any(|s| s.set != first.set) {
        return Err(SharesProblem::Mixed);
    }
    let mut indices: Vec<u8> = shares.iter().map(|s| s.index).collect();
    indices.sort_unstable();
    indices.dedup();
    if indices.len() < usize::from(first.threshold) {
        return Err(SharesProblem::TooFew { need: first.threshold, got: indices.len() });
    }
    Ok(())
}

/// Every share line in the files, checked (checksum, one backup, enough of them).
pub(crate) fn read_shares(paths: &[PathBuf]) -> Result<Vec<Share>, AdminError> {
    let mut shares = Vec::new();
    for path in paths {
        let raw = read_all(path)?;
        let text = std::str::from_utf8(&raw)
            .map_err(|_| SharesProblem::NotText { path: path.to_path_buf() })?;
        shares.extend(parse_shares(path, text)?);
    }
    check_shares(&shares)?;
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vbzkey_protocol::share::ShareError;

    fn share(set: u8, index: u8) -> Share {
        Share::checked([set; 4], 3, 5, index, Zeroizing::new(vec![index; 8])).unwrap()
    }

    #[test]
    fn a_pin_is_the_first_line_without_its_ending() {
        assert_eq!(first_line(b"1234\r\nsecond"), b"1234");
        assert_eq!(first_line(b"1234"), b"1234");
        assert_eq!(first_line(b""), b"");
    }

    #[test]
    fn share_files_skip_comments_and_name_a_bad_line() {
        let text = format!(
            "# vbzkey recovery share 1 of 5\n\n{}\n  {}  \n",
            share(1, 1).to_text().as_str(),
            share(1, 2).to_text().as_str()
        );
        let got = parse_shares(Path::new("s.txt"), &text).unwrap();
        assert_eq!(got, vec![share(1, 1), share(1, 2)]);
        let mut typo = share(1, 3).to_text().to_string();
        typo.replace_range(20..21, if &typo[20..21] == "A" { "B" } else { "A" });
        let err = parse_shares(Path::new("s.txt"), &format!("# c\n{typo}\n")).unwrap_err();
        assert!(
            matches!(err, SharesProblem::Line { line: 2, source: ShareError::BadChecksum, .. }),
            "{err}"
        );
        assert!(err.to_string().starts_with("s.txt line 2: "), "{err}");
        let err = parse_shares(Path::new("s.txt"), "vkshare1.\u{e9}\u{e9}\n").unwrap_err();
        assert!(matches!(err, SharesProblem::Line { source: ShareError::Malformed, .. }));
    }

    #[test]
    fn a_share_file_that_is_not_text_is_named() {
        let path = std::env::temp_dir().join(format!("vbzkey-admin-bin-{}", std::process::id()));
        std::fs::write(&path, [0xff, 0xfe, b'v', b'k']).unwrap();
        let err = read_shares(std::slice::from_ref(&path)).unwrap_err();
        assert!(matches!(err, AdminError::Shares(SharesProblem::NotText { .. })), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::BAD_INPUT);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn too_few_mixed_or_no_shares_are_refused_before_the_dongle() {
        assert!(matches!(check_shares(&[]), Err(SharesProblem::None)));
        let dup = [share(1, 1), share(1, 1), share(1, 2)];
        assert!(matches!(check_shares(&dup), Err(SharesProblem::TooFew { need: 3, got: 2 })));
        let mixed = [share(1, 1), share(2, 2), share(1, 3)];
        assert!(matches!(check_shares(&mixed), Err(SharesProblem::Mixed)));
        assert!(check_shares(&[share(1, 5), share(1, 1), share(1, 3)]).is_ok());
    }
}
