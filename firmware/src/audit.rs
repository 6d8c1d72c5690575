//! The tamper-evident audit log: one text line per event, each line's hash covering the
//! previous line's hash, so deleting or editing any line breaks every hash after it. The line
//! format and its verification are shared with every verifier (`vbzkey_protocol::audit`,
//! specified in `docs/AUDIT-LOG.md`); this module keeps the log on the dongle's storage.
//!
//! Lines are appended and fsynced **before** the dongle answers, so an event the host saw is
//! always logged. A torn last line (power cut mid-append, no final newline) was never
//! answered and is dropped on start; anything else that fails verification marks the log
//! broken and the dongle refuses to unseal until an admin has looked.

use vbzkey_protocol::audit::{self as format, Entry};
pub use vbzkey_protocol::audit::{AuditError, verify};

use crate::storage::{File, Storage, StorageError};

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
}

impl Event {
    fn as_str(self) -> &'static str {
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

/// The log's state in memory: the head hash and the next sequence number.
#[derive(Debug, Clone)]
pub struct AuditLog {
    head: [u8; 32],
    next_seq: u64,
    intact: bool,
}

impl AuditLog {
    /// Load and verify the log, dropping a torn last line (logging that it did). A log that
    /// does not verify is kept as it is (evidence) and reported as not intact.
    pub fn open(storage: &mut dyn Storage, unix: u64) -> Result<Self, StorageError> {
        let bytes = storage.load(File::AuditLog)?.unwrap_or_default();
        let complete = match bytes.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None => 0,
        };
        let torn = complete < bytes.len();
        if torn {
            storage.truncate(File::AuditLog, complete as u64)?;
        }
        let mut log = match std::str::from_utf8(&bytes[..complete]).ok().map(verify) {
            Some(Ok((head, n))) => AuditLog { head, next_seq: n, intact: true },
            _ => AuditLog { head: [0; 32], next_seq: 0, intact: false },
        };
        if torn && log.intact {
            let rec = Record {
                event: Event::RecoveredTornLine,
                keys: "-",
                ok: 0,
                failed: 0,
                host: "firmware",
            };
            log.append(storage, unix, &rec)?;
        }
        Ok(log)
    }

    /// Whether the chain verified at start.
    pub fn intact(&self) -> bool {
        self.intact
    }

    /// The newest entry's hash (zeros for an empty log).
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// Entries in the log.
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// Append an entry durably. A broken log is not appended to: its evidence stays as found.
    pub fn append(
        &mut self,
        storage: &mut dyn Storage,
        unix: u64,
        rec: &Record<'_>,
    ) -> Result<(), StorageError> {
        if !self.intact {
            return Ok(());
        }
        let entry = Entry {
            seq: self.next_seq,
            unix,
            event: rec.event.as_str(),
            keys: rec.keys,
            ok: rec.ok,
            failed: rec.failed,
            host: rec.host,
        };
        let (line, hash) = format::line(&self.head, &entry);
        storage.append(File::AuditLog, line.as_bytes())?;
        self.head = hash;
        self.next_seq += 1;
        Ok(())
    }

    /// The last `max` lines, oldest first.
    pub fn tail(storage: &dyn Storage, max: usize) -> Result<Vec<String>, StorageError> {
        let bytes = storage.load(File::AuditLog)?.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        Ok(lines[lines.len().saturating_sub(max)..].iter().map(|l| l.to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn rec(event: Event) -> Record<'static> {
        Record { event, keys: "0011223344556677", ok: 3, failed: 1, host: "unix" }
    }

    #[test]
    fn chain_verifies_and_survives_restart() {
        let mut s = MemStorage::default();
        let mut log = AuditLog::open(&mut s, 100).unwrap();
        log.append(&mut s, 101, &rec(Event::Init)).unwrap();
        log.append(&mut s, 102, &rec(Event::Unseal)).unwrap();
        let head = log.head();
        let log2 = AuditLog::open(&mut s, 200).unwrap();
        assert!(log2.intact());
        assert_eq!(log2.len(), 2);
        assert_eq!(log2.head(), head);
        let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
        assert!(text.starts_with("1 0 101 init 0011223344556677 3 1 unix "));
    }

    #[test]
    fn editing_or_deleting_a_line_is_detected() {
        let mut s = MemStorage::default();
        let mut log = AuditLog::open(&mut s, 0).unwrap();
        for e in [Event::Init, Event::UnlockOk, Event::Unseal, Event::Lock] {
            log.append(&mut s, 5, &rec(e)).unwrap();
        }
        let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
        let edited = text.replacen(" 3 1 unix", " 0 1 unix", 3);
        assert_eq!(verify(&edited), Err(AuditError::Broken { line: 1 }));
        let lines: Vec<&str> = text.lines().collect();
        let deleted = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        assert_eq!(verify(&deleted), Err(AuditError::Broken { line: 2 }));
        let mut s2 = MemStorage::default();
        s2.files.insert(File::AuditLog, deleted.into_bytes());
        let log2 = AuditLog::open(&mut s2, 9).unwrap();
        assert!(!log2.intact());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_noted() {
        let mut s = MemStorage::default();
        let mut log = AuditLog::open(&mut s, 0).unwrap();
        log.append(&mut s, 1, &rec(Event::Init)).unwrap();
        s.files.get_mut(&File::AuditLog).unwrap().extend_from_slice(b"1 1 2 unse");
        let log2 = AuditLog::open(&mut s, 3).unwrap();
        assert!(log2.intact());
        assert_eq!(log2.len(), 2);
        let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
        assert!(text.lines().nth(1).unwrap().contains("recovered-torn-line"));
    }

    #[test]
    fn hostile_host_labels_cannot_forge_fields() {
        let mut s = MemStorage::default();
        let mut log = AuditLog::open(&mut s, 0).unwrap();
        let r = Record { host: "evil 1 2\n1 9 9 unseal", ..rec(Event::Unseal) };
        log.append(&mut s, 1, &r).unwrap();
        let text = String::from_utf8(s.files[&File::AuditLog].clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(verify(&text).is_ok());
    }
}
