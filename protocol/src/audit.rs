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

/// The first word of a segment header line.
pub const SEGMENT_HEADER: &str = "vbzkey-audit-segment";

/// The header that starts a segment whose first entry is `first_seq`, chained after `prev`
/// (the head of everything before it), with its newline. It is not hashed: the first entry's
/// hash already covers `prev`, so a header that lies fails at that entry.
pub fn segment_header(first_seq: u64, prev: &Hash) -> String {
    format!("{SEGMENT_HEADER} {LINE_VERSION} {first_seq} {}\n", hex(prev))
}

/// The fields of one verified entry line that a reader of the log acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked<'a> {
    /// Position in the log.
    pub seq: u64,
    /// When, by the dongle's clock.
    pub unix: u64,
    /// The event word.
    pub event: &'a str,
    /// Records handled successfully.
    pub ok: u32,
    /// Records that failed.
    pub failed: u32,
}

/// Where a verification starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Nothing seen yet; the first line must be entry 0 after the zero head.
    Genesis,
    /// Nothing seen yet; the first entry (of any number) must chain after this remembered head.
    After(Hash),
    /// Nothing seen yet; the first line must be a segment header (or entry 0), which is
    /// trusted: the segment verifies in itself, and a remembered head can be compared later.
    Segment,
    /// Within the chain: the next entry is `seq` after `head`.
    At { head: Hash, seq: u64 },
}

/// Checks a log line by line, in bounded memory: a whole log from its start, a segment from
/// its header, or anything from a head remembered earlier. Segment headers may appear between
/// entries; each must state exactly where the chain is.
#[derive(Debug, Clone)]
pub struct Verifier {
    start: Start,
    lines: usize,
    entries: u64,
}

impl Verifier {
    /// A whole log, from entry 0.
    pub fn genesis() -> Self {
        Verifier { start: Start::Genesis, lines: 0, entries: 0 }
    }

    /// Entries that follow a head remembered earlier (the first entry's number is taken as
    /// it comes: the head says where the chain was, not how long it was).
    pub fn after(head: Hash) -> Self {
        Verifier { start: Start::After(head), lines: 0, entries: 0 }
    }

    /// A segment as the dongle stores it or `audit export --from` writes it: a header, then
    /// entries (or, for the first segment, entries from 0).
    pub fn segment() -> Self {
        Verifier { start: Start::Segment, lines: 0, entries: 0 }
    }

    /// Check the next line (without its newline). Returns the entry's fields, or `None` for a
    /// segment header.
    pub fn push<'a>(&mut self, line: &'a str) -> Result<Option<Checked<'a>>, AuditError> {
        self.lines += 1;
        let broken = AuditError::Broken { line: self.lines };
        if let Some(rest) = line.strip_prefix(SEGMENT_HEADER) {
            let (seq, prev) = parse_header(rest).ok_or(broken.clone())?;
            self.start = match self.start {
                Start::Segment => Start::At { head: prev, seq },
                Start::After(head) if head == prev => Start::At { head, seq },
                Start::Genesis if seq == 0 && prev == [0; 32] => Start::At { head: prev, seq },
                Start::At { head, seq: next } if head == prev && next == seq => self.start,
                _ => return Err(broken),
            };
            return Ok(None);
        }
        let (body, hash) = line.rsplit_once(' ').ok_or(broken.clone())?;
        let fields: Vec<&str> = body.split(' ').collect();
        let [version, seq, unix, event, _keys, ok, failed, _host] = fields[..] else {
            return Err(broken);
        };
        let number = |f: &str| canonical_u64(f).ok_or(broken.clone());
        let seq = number(seq)?;
        let (prev, expected_seq) = match self.start {
            Start::Genesis | Start::Segment => ([0; 32], 0),
            Start::After(head) => (head, seq),
            Start::At { head, seq } => (head, seq),
        };
        if version != LINE_VERSION || seq != expected_seq {
            return Err(broken);
        }
        let computed = line_hash(&prev, body);
        if hex(&computed) != hash {
            return Err(broken);
        }
        let count = |f: &str| number(f).and_then(|n| u32::try_from(n).map_err(|_| broken.clone()));
        let checked =
            Checked { seq, unix: number(unix)?, event, ok: count(ok)?, failed: count(failed)? };
        self.start = Start::At { head: computed, seq: seq + 1 };
        self.entries += 1;
        Ok(Some(checked))
    }

    /// The head after the last line (the starting head if no entry came).
    pub fn head(&self) -> Hash {
        match self.start {
            Start::Genesis | Start::Segment => [0; 32],
            Start::After(head) | Start::At { head, .. } => head,
        }
    }

    /// The number the next entry must carry, once known.
    pub fn next_seq(&self) -> Option<u64> {
        match self.start {
            Start::Genesis | Start::Segment => Some(0),
            Start::After(_) => None,
            Start::At { seq, .. } => Some(seq),
        }
    }

    /// Entries checked so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }
}

/// `1 <first seq> <prev head hex>` after the header word.
fn parse_header(rest: &str) -> Option<(u64, Hash)> {
    let mut f = rest.strip_prefix(' ')?.split(' ');
    let (Some(LINE_VERSION), Some(seq), Some(prev), None) =
        (f.next(), f.next(), f.next(), f.next())
    else {
        return None;
    };
    Some((canonical_u64(seq)?, parse_hash(prev)?))
}

/// A decimal number written the way [`line()`] writes it (no sign, no leading zeros).
fn canonical_u64(s: &str) -> Option<u64> {
    let n: u64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

/// 64 lower-case hex digits.
pub fn parse_hash(s: &str) -> Option<Hash> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *o = digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?;
    }
    Some(out)
}

/// Verify a whole log (lines separated by `\n`; segment headers allowed where they state the
/// chain exactly); returns (head hash, number of entries) or the first line that does not
/// verify. An empty log verifies with a zero head.
pub fn verify(text: &str) -> Result<(Hash, u64), AuditError> {
    let mut v = Verifier::genesis();
    for line in text.lines() {
        v.push(line)?;
    }
    Ok((v.head(), v.entries()))
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

    #[test]
    fn a_segment_verifies_from_its_header_or_from_a_remembered_head() {
        let text = log(&["init", "unlock", "unseal", "lock", "unseal"]);
        let lines: Vec<&str> = text.lines().collect();
        let (head_2, _) = verify(&format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        let tail = format!("{}\n{}\n{}\n", lines[2], lines[3], lines[4]);
        // From the head remembered after entry 1.
        let mut v = Verifier::after(head_2);
        for l in tail.lines() {
            v.push(l).unwrap();
        }
        assert_eq!((v.head(), v.next_seq(), v.entries()), (verify(&text).unwrap().0, Some(5), 3));
        // From a header stating it, alone, or in the middle of the whole log.
        let segment = format!("{}{tail}", segment_header(2, &head_2));
        let mut v = Verifier::segment();
        assert!(segment.lines().all(|l| v.push(l).is_ok()));
        let whole = format!("{}\n{}\n{segment}", lines[0], lines[1]);
        assert_eq!(verify(&whole), verify(&text));
        // A header that lies about where the chain is, or a wrong remembered head.
        let lying = format!("{}\n{}\n{}{tail}", lines[0], lines[1], segment_header(3, &head_2));
        assert_eq!(verify(&lying), Err(AuditError::Broken { line: 3 }));
        let mut v = Verifier::after([7; 32]);
        assert_eq!(v.push(lines[2]), Err(AuditError::Broken { line: 1 }));
        let forged = format!("{}{tail}", segment_header(2, &[7; 32]));
        let mut v = Verifier::segment();
        let results: Vec<_> = forged.lines().map(|l| v.push(l).is_ok()).collect();
        assert_eq!(results, [true, false, false, false], "the first entry does not chain");
    }

    #[test]
    fn checked_lines_give_their_fields_and_refuse_odd_spellings() {
        let text = log(&["unseal"]);
        let mut v = Verifier::genesis();
        let c = v.push(text.trim_end()).unwrap().unwrap();
        assert_eq!((c.seq, c.unix, c.event, c.ok, c.failed), (0, 5, "unseal", 3, 1));
        for bad in
            ["vbzkey-audit-segment 1 01 00", "vbzkey-audit-segment 2 0 ", "vbzkey-audit-segmentx"]
        {
            assert!(Verifier::segment().push(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_hash(&hex(&[0xab; 32])), Some([0xab; 32]));
        assert_eq!(parse_hash(&hex(&[0xab; 32]).to_uppercase()), None);
    }
}
