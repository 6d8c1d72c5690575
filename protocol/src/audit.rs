//! The audit log's line format and its verification, shared by the dongle (which writes the
//! log) and every verifier (`vbzkey-admin audit verify`). `docs/AUDIT-LOG.md` specifies it.
//!
//! ```text
//! 1 <seq> <unix secs> <event> <key ids|-> <ok> <failed> <host> <hash>
//! hash = hex(SHA-256(previous hash (32 bytes; zeros for seq 0) ‖ the line up to the hash))
//! ```
//!
//! Each line's hash covers the previous line's, so deleting or editing any line breaks every
//! hash after it; a verifier that remembers an earlier head hash also notices a truncation.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The version field that starts every line.
pub const LINE_VERSION: &str = "1";
/// Host labels are reduced to this many characters of `[A-Za-z0-9._:@-]`.
pub const MAX_HOST_LEN: usize = 64;
/// Fields before the hash.
const BODY_FIELDS: usize = 8;

/// A line's hash, and the head of a chain.
pub type Hash = [u8; 32];

/// One event, before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Position in the log, from 0.
    pub seq: u64,
    /// When, in Unix seconds by the dongle's clock.
    pub unix: u64,
    /// What happened (a single word, e.g. `unseal`).
    pub event: &'a str,
    /// Key ids involved, hex, comma-separated (empty: none).
    pub keys: &'a str,
    /// Records handled successfully.
    pub ok: u32,
    /// Records that failed.
    pub failed: u32,
    /// Who asked (transport label or paired host id); cleaned by [`line()`].
    pub host: &'a str,
}

/// Why a log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// A line is malformed, out of sequence, or its hash does not chain.
    #[error("audit log line {line} does not verify")]
    Broken {
        /// 1-based line number.
        line: usize,
    },
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn line_hash(prev: &Hash, body: &str) -> Hash {
    Sha256::new().chain_update(prev).chain_update(body.as_bytes()).finalize().into()
}

/// Keep a host label printable and single-word, so it cannot forge fields or lines.
fn clean_host(host: &str) -> String {
    let s: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'))
        .take(MAX_HOST_LEN)
        .collect();
    if s.is_empty() { "-".to_string() } else { s }
}

/// The line for `entry` after a chain whose head is `prev` (with its newline), and its hash
/// (the new head).
pub fn line(prev: &Hash, entry: &Entry<'_>) -> (String, Hash) {
    let body = format!(
        "{LINE_VERSION} {} {} {} {} {} {} {}",
        entry.seq,
        entry.unix,
        entry.event,
        if entry.keys.is_empty() { "-" } else { entry.keys },
        entry.ok,
        entry.failed,
        clean_host(entry.host)
    );
    let hash = line_hash(prev, &body);
    (format!("{body} {}\n", hex(&hash)), hash)
}

/// Verify a whole log (lines separated by `\n`); returns (head hash, number of entries) or
/// the first line that does not verify. An empty log verifies with a zero head.
pub fn verify(text: &str) -> Result<(Hash, u64), AuditError> {
    let mut head = [0u8; 32];
    let mut seq = 0u64;
    for (i, line) in text.lines().enumerate() {
        let broken = AuditError::Broken { line: i + 1 };
        let (body, hash) = line.rsplit_once(' ').ok_or(broken.clone())?;
        let fields: Vec<&str> = body.split(' ').collect();
        let seq_text = seq.to_string();
        if fields.len() != BODY_FIELDS
            || fields.first() != Some(&LINE_VERSION)
            || fields.get(1) != Some(&seq_text.as_str())
        {
            return Err(broken);
        }
        let expected = line_hash(&head, body);
        if hex(&expected) != hash {
            return Err(broken);
        }
        head = expected;
        seq += 1;
    }
    Ok((head, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(events: &[&str]) -> String {
        let mut head = [0u8; 32];
        let mut text = String::new();
        for (seq, event) in events.iter().enumerate() {
            let e = Entry {
                seq: seq as u64,
                unix: 5,
                event,
                keys: "0011223344556677",
                ok: 3,
                failed: 1,
                host: "unix",
            };
            let (l, h) = line(&head, &e);
            text.push_str(&l);
            head = h;
        }
        text
    }

    #[test]
    fn written_lines_verify_and_the_head_is_the_last_hash() {
        let text = log(&["init", "unlock", "unseal"]);
        let (head, n) = verify(&text).unwrap();
        assert_eq!(n, 3);
        assert!(text.lines().last().unwrap().ends_with(&hex(&head)));
        assert!(text.starts_with("1 0 5 init 0011223344556677 3 1 unix "));
        assert_eq!(verify(""), Ok(([0; 32], 0)));
    }

    #[test]
    fn editing_reordering_or_deleting_a_line_is_detected() {
        let text = log(&["init", "unlock", "unseal", "lock"]);
        let edited = text.replacen(" 3 1 unix", " 0 1 unix", 1);
        assert_eq!(verify(&edited), Err(AuditError::Broken { line: 1 }));
        let lines: Vec<&str> = text.lines().collect();
        let deleted = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        assert_eq!(verify(&deleted), Err(AuditError::Broken { line: 2 }));
        let swapped = format!("{}\n{}\n", lines[1], lines[0]);
        assert_eq!(verify(&swapped), Err(AuditError::Broken { line: 1 }));
        assert_eq!(verify("garbage"), Err(AuditError::Broken { line: 1 }));
        assert_eq!(verify("1 0 \u{e9}\u{e9} x"), Err(AuditError::Broken { line: 1 }));
    }

    #[test]
    fn hostile_host_labels_cannot_forge_fields_or_lines() {
        let e = Entry {
            seq: 0,
            unix: 1,
            event: "unseal",
            keys: "",
            ok: 1,
            failed: 0,
            host: "evil 1 2\n1 9 9 unseal\u{e9}",
        };
        let (l, _) = line(&[0; 32], &e);
        assert_eq!(l.lines().count(), 1);
        assert!(l.starts_with("1 0 1 unseal - 1 0 evil12199unseal "), "{l}");
        assert!(verify(&l).is_ok());
    }
}
