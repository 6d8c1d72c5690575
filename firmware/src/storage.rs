//! Where the dongle keeps its state: a small trait over named files, a real directory
//! implementation (crash-safe writes, durable appends) and an in-memory one for tests.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use vbzkey_os::durable;

pub mod faults;

/// The files of the dongle's state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum File {
    /// The sealed private keys.
    KeyStore,
    /// The persistent wrong-PIN counters (staff and admin).
    PinCounter,
    /// The hash-chained audit log: the segment being written.
    AuditLog,
    /// A closed segment of the audit log (1, 2, …: oldest first), never written again.
    AuditSegment(u32),
    /// A segment of a broken audit log, set aside as evidence by a factory reset
    /// (`tag` tells the resets apart; `part` 0 is the segment that was being written).
    AuditSetAside {
        /// Unique per reset.
        tag: u64,
        /// Which segment.
        part: u32,
    },
    /// The device's session key (X25519), sealed to the board.
    DeviceKey,
    /// The paired hosts.
    Pairings,
}

impl File {
    /// The file's name in the state directory.
    pub fn name(self) -> String {
        match self {
            File::KeyStore => "keystore.v1".into(),
            File::PinCounter => "pin-counter.v1".into(),
            File::AuditLog => "audit.log".into(),
            File::AuditSegment(n) => format!("audit.{n}.log"),
            File::AuditSetAside { tag, part } => format!("audit.broken-{tag}.{part}.log"),
            File::DeviceKey => "device-key.v1".into(),
            File::Pairings => "pairings.v1".into(),
        }
    }
}

/// A storage failure; the message names the file, never its content.
#[derive(Debug, thiserror::Error)]
#[error("{op} {file}: {source}")]
pub struct StorageError {
    op: &'static str,
    file: String,
    #[source]
    source: std::io::Error,
}

impl StorageError {
    /// An error from `op` on `file`.
    pub fn new(op: &'static str, file: File, source: std::io::Error) -> Self {
        StorageError { op, file: file.name(), source }
    }
}

/// The dongle's persistent state. Every method is durable when it returns `Ok`.
pub trait Storage {
    /// The whole file, or `None` if it does not exist.
    fn load(&self, file: File) -> Result<Option<Vec<u8>>, StorageError>;
    /// Replace the file atomically: after a crash it holds the old or the new content.
    fn store(&mut self, file: File, data: &[u8]) -> Result<(), StorageError>;
    /// Append to the file (created if missing).
    fn append(&mut self, file: File, data: &[u8]) -> Result<(), StorageError>;
    /// Cut the file to `len` bytes (to drop a torn last audit line).
    fn truncate(&mut self, file: File, len: u64) -> Result<(), StorageError>;
    /// Delete the file if it exists.
    fn remove(&mut self, file: File) -> Result<(), StorageError>;
    /// The file's length, or `None` if it does not exist.
    fn size(&self, file: File) -> Result<Option<u64>, StorageError>;
    /// Up to `max` bytes from `offset` (fewer at the end of the file): files too big to load
    /// whole (the audit log) are read in pieces.
    fn read_at(&self, file: File, offset: u64, max: usize) -> Result<Vec<u8>, StorageError>;
    /// Rename `from` to `to` atomically (replacing `to`): after a crash one of them exists.
    fn rename(&mut self, from: File, to: File) -> Result<(), StorageError>;
}

/// State in a directory on the SD card, 0600 files in a 0700 directory.
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    /// The open lock file whose exclusive `flock` makes this process the directory's only
    /// owner; the kernel releases it when the process ends, however it ends.
    _owner: std::fs::File,
}

/// The lock file in a state directory; it holds the owner's pid, for the refusal message.
pub const LOCK_FILE: &str = "lock";

/// Why a state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the directory's lock: two writers would interleave one key
    /// store, one PIN counter and one audit log.
    #[error(
        "another process{} is serving it (it holds {LOCK_FILE} there); stop that one first, \
         or give this one its own --state-dir",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held {
        /// The pid the owner wrote into the lock file, if readable.
        pid: Option<u32>,
    },
    /// The directory or its lock file could not be created or locked.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl DirStorage {
    /// Use `dir`, creating it (0700) if needed, as its only owner: an exclusive `flock` on
    /// its lock file is taken before anything in it is touched (even the clean-up of
    /// interrupted writes, which could delete another live process's temporary file).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, OpenError> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::DirBuilderExt;
        let dir = dir.into();
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let mut owner = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))?;
        if !durable::try_lock_exclusive(&owner)? {
            let mut text = String::new();
            let pid = owner.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
            return Err(OpenError::Held { pid });
        }
        owner.set_len(0)?;
        owner.rewind()?;
        writeln!(owner, "{}", std::process::id())?;
        let stale = durable::remove_stale_temps(&dir)?;
        if stale > 0 {
            tracing::warn!("removed {stale} temporary file(s) left by an interrupted write");
        }
        Ok(DirStorage { dir, _owner: owner })
    }

    fn err(op: &'static str, file: File) -> impl FnOnce(std::io::Error) -> StorageError {
        move |source| StorageError::new(op, file, source)
    }
}

impl Storage for DirStorage {
    fn load(&self, file: File) -> Result<Option<Vec<u8>>, StorageError> {
        match std::fs::read(self.dir.join(file.name())) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::err("read", file)(e)),
        }
    }

    fn store(&mut self, file: File, data: &[u8]) -> Result<(), StorageError> {
        durable::write(&self.dir.join(file.name()), data, 0o600, durable::Mode::Replace)
            .map_err(Self::err("write", file))
    }

    fn append(&mut self, file: File, data: &[u8]) -> Result<(), StorageError> {
        let path = self.dir.join(file.name());
        let created = !path.exists();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(Self::err("open", file))?;
        f.write_all(data).and_then(|()| f.sync_data()).map_err(Self::err("append to", file))?;
        if created {
            durable::sync_dir(&self.dir).map_err(Self::err("sync directory of", file))?;
        }
        Ok(())
    }

    fn truncate(&mut self, file: File, len: u64) -> Result<(), StorageError> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.dir.join(file.name()))
            .map_err(Self::err("open", file))?;
        f.set_len(len).and_then(|()| f.sync_all()).map_err(Self::err("truncate", file))
    }

    fn remove(&mut self, file: File) -> Result<(), StorageError> {
        match std::fs::remove_file(self.dir.join(file.name())) {
            Ok(()) => durable::sync_dir(&self.dir).map_err(Self::err("sync directory of", file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::err("remove", file)(e)),
        }
    }

    fn size(&self, file: File) -> Result<Option<u64>, StorageError> {
        match std::fs::metadata(self.dir.join(file.name())) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::err("stat", file)(e)),
        }
    }

    fn read_at(&self, file: File, offset: u64, max: usize) -> Result<Vec<u8>, StorageError> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f =
            std::fs::File::open(self.dir.join(file.name())).map_err(Self::err("open", file))?;
        let mut buf = Vec::with_capacity(max.min(1 << 20));
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.take(max as u64).read_to_end(&mut buf))
            .map_err(Self::err("read", file))?;
        Ok(buf)
    }

    fn rename(&mut self, from: File, to: File) -> Result<(), StorageError> {
        std::fs::rename(self.dir.join(from.name()), self.dir.join(to.name()))
            .map_err(Self::err("rename", from))?;
        durable::sync_dir(&self.dir).map_err(Self::err("sync directory of", to))
    }
}

/// State in memory: for unit tests of the core, and to simulate a restart (keep the map,
/// drop the `Dongle`).
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    /// The files.
    pub files: HashMap<File, Vec<u8>>,
}

impl Storage for MemStorage {
    fn load(&self, file: File) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.files.get(&file).cloned())
    }

    fn store(&mut self, file: File, data: &[u8]) -> Result<(), StorageError> {
        self.files.insert(file, data.to_vec());
        Ok(())
    }

    fn append(&mut self, file: File, data: &[u8]) -> Result<(), StorageError> {
        self.files.entry(file).or_default().extend_from_slice(data);
        Ok(())
    }

    fn truncate(&mut self, file: File, len: u64) -> Result<(), StorageError> {
        if let Some(f) = self.files.get_mut(&file) {
            f.truncate(len as usize);
        }
        Ok(())
    }

    fn remove(&mut self, file: File) -> Result<(), StorageError> {
        self.files.remove(&file);
        Ok(())
    }

    fn size(&self, file: File) -> Result<Option<u64>, StorageError> {
        Ok(self.files.get(&file).map(|f| f.len() as u64))
    }

    fn read_at(&self, file: File, offset: u64, max: usize) -> Result<Vec<u8>, StorageError> {
        let missing = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let f = self.files.get(&file).ok_or_else(|| StorageError::new("read", file, missing()))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        Ok(f.get(start..).unwrap_or_default().iter().take(max).copied().collect())
    }

    fn rename(&mut self, from: File, to: File) -> Result<(), StorageError> {
        let missing = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let data =
            self.files.remove(&from).ok_or_else(|| StorageError::new("rename", from, missing()))?;
        self.files.insert(to, data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_storage_round_trip_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("vbzkey-fw-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = DirStorage::open(&dir).unwrap();
        assert_eq!(s.load(File::KeyStore).unwrap(), None);
        s.store(File::KeyStore, b"abc").unwrap();
        s.append(File::AuditLog, b"one\n").unwrap();
        s.append(File::AuditLog, b"two\n").unwrap();
        assert_eq!(s.load(File::AuditLog).unwrap().unwrap(), b"one\ntwo\n");
        s.truncate(File::AuditLog, 4).unwrap();
        assert_eq!(s.load(File::AuditLog).unwrap().unwrap(), b"one\n");
        let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("keystore.v1"), 0o600);
        assert_eq!(mode("audit.log"), 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        s.remove(File::KeyStore).unwrap();
        s.remove(File::KeyStore).unwrap();
        assert_eq!(s.load(File::KeyStore).unwrap(), None);
        s.append(File::AuditLog, b"two\nthree\n").unwrap();
        assert_eq!(s.size(File::AuditLog).unwrap(), Some(14));
        assert_eq!(s.read_at(File::AuditLog, 4, 4).unwrap(), b"two\n");
        assert_eq!(s.read_at(File::AuditLog, 13, 100).unwrap(), b"\n");
        // While `s` is open the directory has one owner; a second open is refused, naming it.
        match DirStorage::open(&dir) {
            Err(OpenError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("a second owner was let in: {other:?}"),
        }
        s.rename(File::AuditLog, File::AuditSegment(1)).unwrap();
        assert_eq!(s.size(File::AuditLog).unwrap(), None);
        assert_eq!(mode("audit.1.log"), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
