//! A storage that fails on command, for fault-injection tests: a full card, a short write, a
//! failed fsync, a rename that did not happen, a card gone read-only. Each write operation is
//! numbered, so a test can run a scenario once to count them and then fail each in turn.
//!
//! What each fault leaves behind follows what `DirStorage` does on a real card: `store` writes
//! a temporary file and renames it, so no fault shows half a file there; `append` writes in
//! place, so a short write leaves half a line.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Error, ErrorKind};

use super::{File, Storage, StorageError};

/// One way a write can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The card is full: nothing changes.
    NoSpace,
    /// Part of an append reaches the card (half of it), then the card is full. Other writes
    /// change nothing.
    ShortWrite,
    /// The write takes effect, but its fsync reports an error: the caller cannot know.
    FsyncFailed,
    /// A replacing rename (or a rename) did not happen: the old file stays.
    TornRename,
    /// The card turned read-only: this write and every later one fail until `clear`.
    ReadOnly,
}

impl Fault {
    /// Every fault, for tests that try them all.
    pub const ALL: [Fault; 5] =
        [Fault::NoSpace, Fault::ShortWrite, Fault::FsyncFailed, Fault::TornRename, Fault::ReadOnly];
}

/// `S`, failing the write operations a test names.
#[derive(Debug)]
pub struct FaultyStorage<S> {
    inner: S,
    /// Write operations so far.
    writes: usize,
    /// (write number, fault) still to come.
    plan: Vec<(usize, Fault)>,
    /// Files every write to which fails, until `clear`.
    failing_files: Vec<(File, Fault)>,
    read_only: bool,
    largest_read: Cell<usize>,
    loads: RefCell<HashMap<File, usize>>,
}

impl<S: Storage> FaultyStorage<S> {
    /// `inner`, with no fault planned.
    pub fn new(inner: S) -> Self {
        FaultyStorage {
            inner,
            writes: 0,
            plan: Vec::new(),
            failing_files: Vec::new(),
            read_only: false,
            largest_read: Cell::new(0),
            loads: RefCell::new(HashMap::new()),
        }
    }

    /// The storage underneath (what is on the card).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The storage underneath, to take it out (a restart).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Write operations so far.
    pub fn writes(&self) -> usize {
        self.writes
    }

    /// Fail the next write operation.
    pub fn fail_next(&mut self, fault: Fault) {
        self.fail_at(0, fault);
    }

    /// Fail the write operation after the next.
    pub fn fail_after_next(&mut self, fault: Fault) {
        self.fail_at(1, fault);
    }

    /// Fail the write operation `n` operations from now (0: the next).
    pub fn fail_at(&mut self, n: usize, fault: Fault) {
        self.plan.push((self.writes + n, fault));
    }

    /// Fail every write to `file` from now on, until `clear`.
    pub fn fail_writes_to(&mut self, file: File, fault: Fault) {
        self.failing_files.push((file, fault));
    }

    /// No more faults: planned ones are dropped and the card is writable again.
    pub fn clear(&mut self) {
        self.plan.clear();
        self.failing_files.clear();
        self.read_only = false;
    }

    /// The most bytes one read returned.
    pub fn largest_read(&self) -> usize {
        self.largest_read.get()
    }

    /// How often `file` was loaded whole.
    pub fn whole_loads(&self, file: File) -> usize {
        self.loads.borrow().get(&file).copied().unwrap_or(0)
    }

    /// The fault of this write operation on `file`, if any (and count it).
    fn fault(&mut self, file: File) -> Option<Fault> {
        let n = self.writes;
        self.writes += 1;
        if let Some((_, f)) = self.failing_files.iter().find(|(at, _)| *at == file) {
            return Some(*f);
        }
        if let Some(i) = self.plan.iter().position(|(at, _)| *at == n) {
            let (_, f) = self.plan.remove(i);
            if f == Fault::ReadOnly {
                self.read_only = true;
            }
            return Some(f);
        }
        self.read_only.then_some(Fault::ReadOnly)
    }

    /// Run `op` on the card unless `fault` says it did not happen; the error to report.
    fn write(
        &mut self,
        op: &'static str,
        file: File,
        effect: impl FnOnce(&mut S, Option<Fault>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let fault = self.fault(file);
        let error = |kind| Err(StorageError::new(op, file, Error::from(kind)));
        match fault {
            None => effect(&mut self.inner, None),
            Some(Fault::NoSpace | Fault::TornRename) => error(ErrorKind::StorageFull),
            Some(Fault::ReadOnly) => error(ErrorKind::ReadOnlyFilesystem),
            Some(f @ (Fault::ShortWrite | Fault::FsyncFailed)) => {
                effect(&mut self.inner, Some(f))?;
                error(ErrorKind::Other)
            }
        }
    }
}

impl<S: Storage> Storage for FaultyStorage<S> {
    fn load(&self, file: File) -> Result<Option<Vec<u8>>, StorageError> {
        *self.loads.borrow_mut().entry(file).or_default() += 1;
        self.inner.load(file)
    }

    fn store(&mut self, file: File, data: &[u8]) -> Result<(), StorageError> {
        // A short write of the temporary file never replaces the old one.
        self.write("write", file, |s, f| match f {
            Some(Fault::ShortWrite) => Ok(()),
            _ => s.store(file, data),
        })
    }

    fn append(&mut self, file: File, data: &[u8]) -> Result<(), StorageError> {
        self.write("append to", file, |s, f| match f {
            Some(Fault::ShortWrite) => s.append(file, data.get(..data.len() / 2).unwrap_or(data)),
            _ => s.append(file, data),
        })
    }

    fn truncate(&mut self, file: File, len: u64) -> Result<(), StorageError> {
        self.write("truncate", file, |s, f| match f {
            Some(Fault::ShortWrite) => Ok(()),
            _ => s.truncate(file, len),
        })
    }

    fn remove(&mut self, file: File) -> Result<(), StorageError> {
        self.write("remove", file, |s, f| match f {
            Some(Fault::ShortWrite) => Ok(()),
            _ => s.remove(file),
        })
    }

    fn size(&self, file: File) -> Result<Option<u64>, StorageError> {
        self.inner.size(file)
    }

    fn read_at(&self, file: File, offset: u64, max: usize) -> Result<Vec<u8>, StorageError> {
        let got = self.inner.read_at(file, offset, max)?;
        self.largest_read.set(self.largest_read.get().max(got.len()));
        Ok(got)
    }

    fn rename(&mut self, from: File, to: File) -> Result<(), StorageError> {
        self.write("rename", from, |s, f| match f {
            Some(Fault::ShortWrite) => Ok(()),
            _ => s.rename(from, to),
        })
    }
}
