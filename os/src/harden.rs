//! Process hardening for programs that hold secrets in memory.

use rustix::mm::{MlockAllFlags, mlockall};
use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

/// Keep this process's memory out of core dumps and away from same-user debuggers, where the
/// OS allows: `RLIMIT_CORE` = 0 and `PR_SET_DUMPABLE` = 0 (which also blocks `ptrace` by
/// other processes of the same user and hides `/proc/PID/mem`). Best effort: a failure is
/// reported to the caller, who should log it and carry on.
pub fn no_core_dumps() -> Result<(), std::io::Error> {
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    Ok(())
}

/// Lock every page of this process into RAM, now and as it is touched later, so keys, PINs and
/// plaintexts never reach swap (`mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`; on-fault so
/// thread stacks and the Argon2 buffer are locked as used, not committed up front). Fails with
/// the OS's reason, typically `RLIMIT_MEMLOCK` (the systemd unit raises `LimitMEMLOCK`).
pub fn lock_all_memory() -> Result<(), std::io::Error> {
    mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT)?;
    Ok(())
}

/// Whether any swap area is active (`/proc/swaps` lists one).
pub fn swap_active() -> Result<bool, std::io::Error> {
    let swaps = std::fs::read_to_string("/proc/swaps")?;
    Ok(swaps_listed(&swaps))
}

fn swaps_listed(proc_swaps: &str) -> bool {
    // The first line is the header.
    proc_swaps.lines().skip(1).any(|l| !l.trim().is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn swap_is_read_from_proc_swaps() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!super::swaps_listed(header));
        assert!(super::swaps_listed(&format!("{header}/var/swap  file  102396  0  -2\n")));
        assert!(super::swap_active().is_ok());
    }

    #[test]
    fn memory_locks_where_the_limit_allows() {
        // Run in a child: a locked test harness would lock every test's memory.
        if std::env::var_os("VBZKEY_MLOCK_CHILD").is_some() {
            let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
            let line = limits.lines().find(|l| l.starts_with("Max locked memory")).unwrap();
            let unlimited = line.split_whitespace().nth(3) == Some("unlimited");
            let root = rustix::process::geteuid().is_root();
            match super::lock_all_memory() {
                Ok(()) => {
                    let v = std::hint::black_box(vec![7u8; 1 << 20]);
                    let status = std::fs::read_to_string("/proc/self/status").unwrap();
                    let vmlck = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
                    let kb: u64 = vmlck.split_whitespace().nth(1).unwrap().parse().unwrap();
                    assert!(kb >= 1024, "a touched MiB is locked: {vmlck}");
                    drop(v);
                }
                // Only a limited, unprivileged process may be refused.
                Err(e) => assert!(!unlimited && !root, "mlockall failed: {e}"),
            }
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new(exe)
            .args(["--exact", "harden::tests::memory_locks_where_the_limit_allows", "--nocapture"])
            .env("VBZKEY_MLOCK_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn hardening_applies_and_is_visible_in_proc() {
        // Run in a child so the test harness itself stays dumpable.
        let exe = std::env::current_exe().unwrap();
        if std::env::var_os("VBZKEY_HARDEN_CHILD").is_some() {
            super::no_core_dumps().unwrap();
            let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
            let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
            assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
            return;
        }
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "harden::tests::hardening_applies_and_is_visible_in_proc",
                "--nocapture",
            ])
            .env("VBZKEY_HARDEN_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success());
    }
}
