//! Process hardening for programs that hold secrets in memory.

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

#[cfg(test)]
mod tests {
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
