//! Crash-safe file writes.
//!
//! A power cut or a `SIGKILL` at any instant must leave either the old file or the new one,
//! never a torn mix and never nothing. The recipe (the one SQLite and LMDB rely on):
//!
//! 1. write the new content to a temporary file in the **same directory**, created with the
//!    final permissions (so a secret is never briefly world-readable);
//! 2. `fsync` it, so its data is on disk before anything points at it;
//! 3. `rename` it over the target (atomic on POSIX), or `link` it to a name that must not
//!    exist yet (atomic and refuses to clobber);
//! 4. `fsync` the directory, so the rename itself survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Take an exclusive `flock` on `file` without waiting: `Ok(false)` when another open file
/// holds it. The lock lives as long as this open file (the kernel drops it when the process
/// ends, however it ends). std's `File::try_lock` does the same from Rust 1.89, above the
/// workspace's minimum.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether an existing file at the target may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Atomically replace any existing file.
    Replace,
    /// Fail with `AlreadyExists` if the target exists (for keys: never clobber one).
    CreateNew,
}

fn temp_path(target: &Path) -> io::Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no file name"))?;
    let mut tmp = name.to_os_string();
    // The pid keeps two writers in different processes apart; a stale temp from a crash is
    // removed by the next write with the same pid, or is harmless litter.
    tmp.push(format!(".tmp-{}", std::process::id()));
    Ok(target.with_file_name(tmp))
}

/// The directory holding `path`, `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `fsync` a directory so that renames and links in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Environment variable naming a crash point, `FILE_NAME:STEP`, for crash-safety tests.
pub const CRASH_AT_ENV: &str = "VBZKEY_DANGEROUS_CRASH_AT";

/// Steps of [`write`] at which a test can make the process die.
pub const CRASH_STEPS: [&str; 5] = ["created", "written", "synced", "replaced", "dir-synced"];

/// Test hook: if `VBZKEY_DANGEROUS_CRASH_AT` is `<file name>:<step>`, die here with SIGKILL,
/// exactly as an OOM kill or `kill -9` would. This only ever ends the process; it cannot
/// weaken anything, and production units never set the variable.
fn crash_point(target: &Path, step: &str) {
    let Some(name) = target.file_name() else { return };
    let mut here = name.to_os_string();
    here.push(":");
    here.push(step);
    crash_if_asked(&here);
}

/// The same test hook for a named point of a longer job (e.g. `rewrap-db:committed:3`): if
/// `VBZKEY_DANGEROUS_CRASH_AT` equals `here`, die with SIGKILL. Only ever ends the process.
pub fn crash_if_asked(here: &std::ffi::OsStr) {
    if std::env::var_os(CRASH_AT_ENV).is_some_and(|want| want == here) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// Remove temporary files left in `dir` by writes that crashed. They are never the live copy
/// of anything: the live file is only ever replaced by a complete, synced temp file.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().contains(".tmp-") {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Write `contents` to `target` crash-safely, with Unix permission bits `perm` (e.g. 0o600).
pub fn write(target: &Path, contents: &[u8], perm: u32, mode: Mode) -> io::Result<()> {
    let tmp = temp_path(target)?;
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(perm).open(&tmp)?;
        crash_point(target, "created");
        f.write_all(contents)?;
        crash_point(target, "written");
        f.sync_all()?;
        crash_point(target, "synced");
        drop(f);
        match mode {
            Mode::Replace => fs::rename(&tmp, target)?,
            Mode::CreateNew => {
                fs::hard_link(&tmp, target)?;
                fs::remove_file(&tmp)?;
            }
        }
        crash_point(target, "replaced");
        sync_dir(parent_dir(target))?;
        crash_point(target, "dir-synced");
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Linux file-system magic numbers (`statfs(2)`) of file systems that lose their content at a
/// power cycle: RAM-backed ones, and the overlay that Raspberry Pi OS's read-only root
/// ("Overlay File System" in raspi-config) puts over the SD card with a RAM upper layer.
const VOLATILE_FS: [(u64, &str); 3] =
    [(0x0102_1994, "tmpfs"), (0x8584_58f6, "ramfs"), (0x794c_7630, "overlayfs")];

/// The name of the file system `dir` is on if that one forgets its content at a power cycle
/// (`None` for a disk or SD card file system). An overlay is counted as volatile: its writes
/// go to the upper layer, which on a read-only Pi root is RAM.
pub fn volatile_fs(dir: &Path) -> io::Result<Option<&'static str>> {
    let st = rustix::fs::statfs(dir)?;
    let magic = u64::try_from(st.f_type).unwrap_or(0);
    Ok(VOLATILE_FS.iter().find(|(m, _)| *m == magic).map(|(_, name)| *name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vbzkey-os-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replace_overwrites_and_sets_permissions() {
        let d = tempdir("replace");
        let f = d.join("state");
        write(&f, b"one", 0o600, Mode::Replace).unwrap();
        write(&f, b"two", 0o600, Mode::Replace).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temp file is left behind");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn create_new_refuses_to_clobber() {
        let d = tempdir("create");
        let f = d.join("key");
        write(&f, b"first", 0o600, Mode::CreateNew).unwrap();
        let err = write(&f, b"second", 0o600, Mode::CreateNew).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&f).unwrap(), b"first");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn stale_temps_are_removed() {
        let d = tempdir("stale");
        fs::write(d.join("keystore.v1"), b"live").unwrap();
        fs::write(d.join("keystore.v1.tmp-4242"), b"torn").unwrap();
        assert_eq!(remove_stale_temps(&d).unwrap(), 1);
        assert_eq!(fs::read(d.join("keystore.v1")).unwrap(), b"live");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn missing_directory_is_an_error_not_a_panic() {
        let err = write(Path::new("/nonexistent-vbzkey-dir/x"), b"", 0o600, Mode::Replace);
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn ram_and_overlay_file_systems_are_volatile_disks_are_not() {
        let mounts = fs::read_to_string("/proc/mounts").unwrap();
        // The last mount on a path is the one statfs sees.
        let mut top = std::collections::BTreeMap::new();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            top.insert(f[1], (f[2], line));
        }
        let mut checked = 0;
        for (dir, (kind, line)) in top {
            let dir = Path::new(dir);
            let want = match kind {
                "tmpfs" => Some("tmpfs"),
                "ramfs" => Some("ramfs"),
                "overlay" => Some("overlayfs"),
                "ext4" | "xfs" | "btrfs" | "vfat" | "f2fs" => None,
                _ => continue,
            };
            // Mount points hidden below others, or unreadable, say nothing.
            if let Ok(got) = volatile_fs(dir) {
                assert_eq!(got, want, "{line}");
                checked += 1;
            }
        }
        assert!(checked > 0, "no mount of a known kind to check in /proc/mounts");
    }
}
