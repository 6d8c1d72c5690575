//! The tamper-evident audit log: one text line per event, each line's hash covering the
//! previous line's hash, so deleting or editing any line breaks every hash after it. The line
//! format and its verification are shared with every verifier (`vbzkey_protocol::audit`,
//! specified in `docs/AUDIT-LOG.md`); this module keeps the log on the dongle's storage.
//!
//! - **Before the answer.** Lines are appended and fsynced before the dongle answers (and,
//!   for a change to keys, credentials or pairings, before the change is made), so an event
//!   the host saw, or a change on the card, is always logged.
//! - **Fail closed.** A log that does not verify at start is *broken*: it is kept as found
//!   (evidence) and nothing is appended to it; the dongle then refuses every request that uses
//!   or changes keys, credentials or pairings, until a factory reset sets the broken log aside
//!   and starts a new one. A failed append (a full card, a failed fsync) is cut back to the
//!   last whole line before the request is answered with an error, so one failure never
//!   breaks the chain.
//! - **Bounded.** The log is written in segments of [`SEGMENT_ENTRIES`] entries (`audit.log`
//!   is the one being written; full ones are renamed `audit.1.log`, `audit.2.log`, …), each
//!   starting with a header that names the chain's head before it. It is verified, read and
//!   exported in pieces: no step holds more than one piece of a segment in memory.

use vbzkey_protocol::audit::{self as format, Checked, Entry, Hash, Verifier};
pub use vbzkey_protocol::audit::{AuditError, verify};

use crate::storage::{File, Storage, StorageError};

/// Entries per segment: about 0.6 MB of text, verified at start in well under a second.
pub const SEGMENT_ENTRIES: u64 = 4096;
/// Bytes read at a time when the log is verified or read.
const CHUNK: usize = 64 * 1024;
/// A line longer than this was not written by the dongle (its lines are under 300 bytes).
const MAX_LINE: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Event {
    Init,
    UnlockOk,
    UnlockFailed,
    LockedOut,
    Lock,
    IdleLock,
    Unseal,
    Rewrap,
    Rotate,
    Retire,
    FactoryReset,
    RecoveredTornLine,
    Backup,
    Restore,
    CloneExport,
    CloneImport,
    Pair,
    Unpair,
    AdminAuth,
    AdminAuthFailed,
    AdminLockedOut,
    AdminEnd,
    StaffPinSet,
    StaffPinRemoved,
    AdminPinChanged,
    PresenceMissing,
    HostNotTrusted,
    LogSetAside,
    KeyTransferRefused,
}

impl Event {
    /// The word in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Init => "init",
            Event::UnlockOk => "unlock",
            Event::UnlockFailed => "unlock-failed",
            Event::LockedOut => "locked-out",
            Event::Lock => "lock",
            Event::IdleLock => "idle-lock",
            Event::Unseal => "unseal",
            Event::Rewrap => "rewrap",
            Event::Rotate => "rotate",
            Event::Retire => "retire",
            Event::FactoryReset => "factory-reset",
            Event::RecoveredTornLine => "recovered-torn-line",
            Event::Backup => "backup",
            Event::Restore => "restore",
            Event::CloneExport => "clone-export",
            Event::CloneImport => "clone-import",
            Event::Pair => "pair",
            Event::Unpair => "unpair",
            Event::AdminAuth => "admin-auth",
            Event::AdminAuthFailed => "admin-auth-failed",
            Event::AdminLockedOut => "admin-locked-out",
            Event::AdminEnd => "admin-end",
            Event::StaffPinSet => "staff-pin-set",
            Event::StaffPinRemoved => "staff-pin-removed",
            Event::AdminPinChanged => "admin-pin-changed",
            Event::PresenceMissing => "presence-missing",
            Event::HostNotTrusted => "host-not-trusted",
            Event::LogSetAside => "log-set-aside",
            Event::KeyTransferRefused => "key-transfer-refused",
        }
    }
}

/// One event to log.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// What.
    pub event: Event,
    /// Key ids involved, hex, comma-separated ("-" for none).
    pub keys: &'a str,
    /// Records handled successfully.
    pub ok: u32,
    /// Records that failed.
    pub failed: u32,
    /// Who asked (transport label or paired host id).
    pub host: &'a str,
}

/// Why an event could not be logged (the request that needed the line is then refused).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The log is broken: nothing is added to it.
    #[error("the audit log does not verify")]
    Broken,
    /// Writing failed; the log was cut back to its last whole line (or will be, first thing
    /// at the next append, if even that failed).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where the chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    /// Verified: the next entry is `next_seq` after `head`.
    Intact { head: Hash, next_seq: u64 },
    /// Did not verify at start: kept as found, never appended to.
    Broken,
}

/// The log's state in memory: where the chain stands, and where its segments start.
#[derive(Debug, Clone)]
pub struct AuditLog {
    chain: Chain,
    /// Closed segments, oldest first: (file number, first entry).
    closed: Vec<(u32, u64)>,
    /// The first entry of `audit.log`.
    current_first: u64,
    /// Bytes of `audit.log` that hold whole lines: a failed append is cut back to this.
    current_len: u64,
    /// Entries in `audit.log`.
    current_entries: u64,
    /// A failed append could not be cut back yet: do it before writing again.
    cut_pending: bool,
}

/// Every line of `file`, in pieces of [`CHUNK`] bytes; `line` gets each line without its
/// newline (`None` for a line too long or not UTF-8) and returns whether to go on. Returns
/// the length of the whole lines read and whether a torn (unterminated) tail follows them.
fn each_line(
    storage: &dyn Storage,
    file: File,
    line: &mut dyn FnMut(Option<&str>) -> bool,
) -> Result<(u64, bool), StorageError> {
    let mut offset = 0u64;
    // The line read so far; its length keeps counting past MAX_LINE, its bytes do not.
    let (mut partial, mut partial_len) = (Vec::new(), 0usize);
    loop {
        let chunk = storage.read_at(file, offset, CHUNK)?;
        if chunk.is_empty() {
            return Ok((offset - partial_len as u64, partial_len > 0));
        }
        let chunk_start = offset;
        offset += chunk.len() as u64;
        let mut from = 0;
        for (i, b) in chunk.iter().enumerate() {
            if *b != b'\n' {
                continue;
            }
            let piece = chunk.get(from..i).unwrap_or_default();
            from = i + 1;
            partial_len += piece.len();
            let text = if partial_len <= MAX_LINE {
                partial.extend_from_slice(piece);
                std::str::from_utf8(&partial).ok()
            } else {
                None
            };
            let go_on = line(text);
            (partial_len, partial) = (0, Vec::new());
            if !go_on {
                return Ok((chunk_start + from as u64, false));
            }
        }
        let rest = chunk.get(from..).unwrap_or_default();
        partial_len += rest.len();
        if partial_len <= MAX_LINE {
            partial.extend_from_slice(rest);
        }
    }
}

impl AuditLog {
    /// Load and verify every segment, in pieces, giving each verified entry to `entry` (the
    /// dongle replays its rate limit from them). A torn last line (power cut mid-append) is
    /// dropped and noted; a log that does not verify is kept as it is and reported broken.
    pub fn open(
        storage: &mut dyn Storage,
        unix: u64,
        entry: &mut dyn FnMut(&Checked<'_>),
    ) -> Result<Self, StorageError> {
        let mut closed = Vec::new();
        while let Ok(n) = u32::try_from(closed.len() + 1) {
            if storage.size(File::AuditSegment(n))?.is_none() {
                break;
            }
            closed.push((n, 0));
        }
        let mut v = Verifier::genesis();
        let mut ok = true;
        for (n, first) in &mut closed {
            *first = v.next_seq().unwrap_or(0);
            let (_, torn) = each_line(storage, File::AuditSegment(*n), &mut |line| {
                ok = ok && line.is_some_and(|l| v.push(l).map(|c| c.inspect(|c| entry(c))).is_ok());
                ok
            })?;
            ok = ok && !torn;
        }
        let current_first = v.next_seq().unwrap_or(0);
        let mut current_entries = 0;
        let (current_len, torn) = if storage.size(File::AuditLog)?.is_some() {
            each_line(storage, File::AuditLog, &mut |line| {
                let checked = line.map(|l| v.push(l));
                ok = ok && matches!(checked, Some(Ok(_)));
                if let Some(Ok(Some(c))) = checked {
                    current_entries += 1;
                    entry(&c);
                }
                ok
            })?
        } else {
            (0, false)
        };
        if torn && ok {
            storage.truncate(File::AuditLog, current_len)?;
        }
        let chain = match (ok, v.next_seq()) {
            (true, Some(next_seq)) => Chain::Intact { head: v.head(), next_seq },
            _ => Chain::Broken,
        };
        let mut log = AuditLog {
            chain,
            closed,
            current_first,
            current_len,
            current_entries,
            cut_pending: false,
        };
        if torn && log.intact() {
            let rec = Record {
                event: Event::RecoveredTornLine,
                keys: "-",
                ok: 0,
                failed: 0,
                host: "firmware",
            };
            if let Chain::Intact { head, next_seq } = log.chain {
                log.write(storage, unix, &rec, head, next_seq)?;
            }
        }
        Ok(log)
    }

    /// Whether the chain verified at start.
    pub fn intact(&self) -> bool {
        matches!(self.chain, Chain::Intact { .. })
    }

    /// The newest entry's hash (zeros for an empty or broken log).
    pub fn head(&self) -> Hash {
        match self.chain {
            Chain::Intact { head, .. } => head,
            Chain::Broken => [0; 32],
        }
    }

    /// Entries in the log (0 for a broken one: its length is not known).
    pub fn len(&self) -> u64 {
        match self.chain {
            Chain::Intact { next_seq, .. } => next_seq,
            Chain::Broken => 0,
        }
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append an entry durably, starting a new segment first when this one is full. A broken
    /// log is not appended to: its evidence stays as found.
    pub fn append(
        &mut self,
        storage: &mut dyn Storage,
        unix: u64,
        rec: &Record<'_>,
    ) -> Result<(), AppendError> {
        let Chain::Intact { head, next_seq } = self.chain else {
            return Err(AppendError::Broken);
        };
        Ok(self.write(storage, unix, rec, head, next_seq)?)
    }

    fn write(
        &mut self,
        storage: &mut dyn Storage,
        unix: u64,
        rec: &Record<'_>,
        head: Hash,
        next_seq: u64,
    ) -> Result<(), StorageError> {
        if self.cut_pending {
            storage.truncate(File::AuditLog, self.current_len)?;
            self.cut_pending = false;
        }
        if self.current_entries >= SEGMENT_ENTRIES {
            let n = u32::try_from(self.closed.len() + 1).unwrap_or(u32::MAX);
            storage.rename(File::AuditLog, File::AuditSegment(n))?;
            self.closed.push((n, self.current_first));
            (self.current_first, self.current_len, self.current_entries) = (next_seq, 0, 0);
        }
        let entry = Entry {
            seq: next_seq,
            unix,
            event: rec.event.as_str(),
            keys: rec.keys,
            ok: rec.ok,
            failed: rec.failed,
            host: rec.host,
        };
        let (line, hash) = format::line(&head, &entry);
        // A segment after the first states where the chain stands, for whoever reads it alone.
        let bytes = if self.current_len == 0 && self.current_first > 0 {
            format!("{}{line}", format::segment_header(self.current_first, &head))
        } else {
            line
        };
        if let Err(e) = storage.append(File::AuditLog, bytes.as_bytes()) {
            if storage.truncate(File::AuditLog, self.current_len).is_err() {
                self.cut_pending = true;
            }
            return Err(e);
        }
        self.chain = Chain::Intact { head: hash, next_seq: next_seq + 1 };
        self.current_len += bytes.len() as u64;
        self.current_entries += 1;
        Ok(())
    }

    /// Entry lines from `from_seq` on (at most `max_lines` of them, at most `max_bytes` of
    /// text), and the head they chain from. Reads at most the segment holding `from_seq`
    /// before it, in pieces.
    pub fn read(
        &self,
        storage: &dyn Storage,
        from_seq: u64,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<(Hash, Vec<String>), ReadError> {
        if !self.intact() {
            return Err(ReadError::Broken);
        }
        let total = self.len();
        if from_seq > total {
            return Err(ReadError::Beyond { total });
        }
        let segments: Vec<(File, u64)> = self
            .closed
            .iter()
            .map(|(n, first)| (File::AuditSegment(*n), *first))
            .chain(std::iter::once((File::AuditLog, self.current_first)))
            .collect();
        let start = segments.iter().rposition(|(_, first)| *first <= from_seq).unwrap_or(0);
        let mut prev: Option<Hash> = (from_seq == 0).then_some([0; 32]);
        let (mut lines, mut bytes, mut full) = (Vec::new(), 0usize, false);
        for (file, _) in segments.iter().skip(start) {
            let mut failed = false;
            each_line(storage, *file, &mut |line| {
                let Some(line) = line else {
                    failed = true;
                    return false;
                };
                if let Some(rest) = line.strip_prefix(format::SEGMENT_HEADER) {
                    let mut f = rest.split(' ').skip(2);
                    if let (Some(seq), Some(h)) = (f.next(), f.next())
                        && seq == from_seq.to_string()
                    {
                        prev = prev.or(format::parse_hash(h));
                    }
                    return true;
                }
                let mut f = line.split(' ');
                let Some(seq) = f.nth(1).and_then(|s| s.parse::<u64>().ok()) else {
                    failed = true;
                    return false;
                };
                if seq + 1 == from_seq {
                    prev = line.rsplit(' ').next().and_then(format::parse_hash);
                }
                if seq < from_seq {
                    return true;
                }
                if lines.len() >= max_lines || bytes + line.len() + 1 > max_bytes {
                    full = true;
                    return false;
                }
                bytes += line.len() + 1;
                lines.push(line.to_string());
                true
            })?;
            if failed {
                return Err(ReadError::Damaged);
            }
            if full {
                break;
            }
        }
        Ok((prev.ok_or(ReadError::Damaged)?, lines))
    }

    /// The last whole lines of a log as stored (for a broken one too: what an admin looks at),
    /// at most `max_lines` and `max_bytes`.
    pub fn raw_tail(
        storage: &dyn Storage,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Vec<String>, StorageError> {
        let size = storage.size(File::AuditLog)?.unwrap_or(0);
        let from = size.saturating_sub(max_bytes as u64);
        let bytes = storage.read_at(File::AuditLog, from, max_bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        // The first piece may be a cut line: keep only what follows a newline.
        let body = if from > 0 { text.split_once('\n').map_or("", |(_, b)| b) } else { &text };
        let lines: Vec<&str> = body.lines().collect();
        Ok(lines
            .iter()
            .skip(lines.len().saturating_sub(max_lines))
            .map(|l| l.to_string())
            .collect())
    }

    /// Set a broken log aside (renamed `audit.broken-<tag>.<n>.log`, kept as evidence) and
    /// start an empty one. Returns how many files were set aside.
    pub fn set_aside(&mut self, storage: &mut dyn Storage, tag: u64) -> Result<u32, StorageError> {
        let mut tag = tag;
        while storage.size(File::AuditSetAside { tag, part: 0 })?.is_some() {
            tag += 1;
        }
        let mut moved = 0;
        if storage.size(File::AuditLog)?.is_some() {
            storage.rename(File::AuditLog, File::AuditSetAside { tag, part: 0 })?;
            moved += 1;
        }
        for (n, _) in &self.closed {
            storage.rename(File::AuditSegment(*n), File::AuditSetAside { tag, part: *n })?;
            moved += 1;
        }
        *self = AuditLog {
            chain: Chain::Intact { head: [0; 32], next_seq: 0 },
            closed: Vec::new(),
            current_first: 0,
            current_len: 0,
            current_entries: 0,
            cut_pending: false,
        };
        Ok(moved)
    }
}

/// Why lines could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The log is broken: its entries are not numbered reliably.
    #[error("the audit log does not verify")]
    Broken,
    /// Asked from beyond the end.
    #[error("the log has {total} entries")]
    Beyond {
        /// Entries in the log.
        total: u64,
    },
    /// A segment no longer reads as it did at start.
    #[error("an audit segment changed since start")]
    Damaged,
    /// Reading failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[cfg(test)]
mod tests;
