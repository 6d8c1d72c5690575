//! Secrets and shares from files or stdin: never from the command line, where they would
//! land in the shell history and in `ps`.

use std::io::Read;
use std::path::Path;

use vbzkey_protocol::share::Share;
use zeroize::Zeroizing;

/// Longest secret or share file read.
const MAX_INPUT: u64 = 64 * 1024;

fn read_all(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut raw = Zeroizing::new(Vec::new());
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT)
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT).read_to_end(&mut raw))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    Ok(raw)
}

/// The first line of `path` (`-`: stdin), without its line ending.
pub(crate) fn read_secret_line(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let raw = read_all(path)?;
    let line = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// Every share line in the files (blank lines and `#` comments skipped), each checked for
/// its checksum here, so a mistyped share is named before anything reaches the dongle.
pub(crate) fn read_shares(paths: &[std::path::PathBuf]) -> Result<Vec<String>, String> {
    let mut shares = Vec::new();
    for path in paths {
        let raw = read_all(path)?;
        let text = String::from_utf8_lossy(&raw);
        for (i, line) in text.lines().enumerate().map(|(i, l)| (i, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let share = Share::from_text(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            shares.push(share);
        }
    }
    let first = shares.first().ok_or("no recovery share was given")?;
    let distinct = {
        let mut x: Vec<u8> = shares.iter().map(|s| s.index).collect();
        x.sort_unstable();
        x.dedup();
        x.len()
    };
    if distinct < usize::from(first.threshold) {
        return Err(format!(
            "{} different shares are needed to restore this backup, and only {distinct} were given",
            first.threshold
        ));
    }
    if shares.iter().any(|s| s.set != first.set) {
        return Err("the shares come from different backups (their set ids differ)".into());
    }
    Ok(shares.iter().map(Share::to_text).collect())
}
