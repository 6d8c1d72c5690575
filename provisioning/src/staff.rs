//! `unlock` and `lock`: the staff unlock, from the admin's computer, when it is asked for.
//!
//! Admin commands never unlock records for staff: their admin PIN opens a window of their own
//! connection only. These two are the one way this tool changes what the staff page can read,
//! and only when an admin types them: `unlock` for a dongle whose staff use no browser page (a
//! LAN key server started by hand, a script), `lock` to end every unlock at once (a workstation
//! left open, a shift's end). Both are what the bridge's `/v1/unlock` and `/v1/lock` ask, with
//! the same counting of wrong PINs and the same audit lines (`unlock`, `unlock-failed`, `lock`).

use std::path::PathBuf;

use crate::dongle::Dongle;
use crate::error::AdminError;
use crate::input::read_pin;
use crate::output::Output;

/// `unlock`'s options.
#[derive(clap::Args)]
pub(crate) struct UnlockArgs {
    /// The staff PIN (`-`: stdin; at a terminal it is asked with echo off). A wrong one is
    /// counted, as at the staff page.
    #[arg(long)]
    pin_file: PathBuf,
}

/// Unlock for staff with the staff PIN (and, on a dongle in split custody, this computer's
/// share from `--host-key`).
pub(crate) fn unlock(d: &Dongle, args: &UnlockArgs) -> Result<Output, AdminError> {
    let pin = read_pin(&args.pin_file, "staff PIN")?;
    d.client().unlock(pin)?;
    let mut out = Output::default();
    out.note(
        "Unlocked for staff: records open for every host the dongle serves until \
         `vbzkey-admin lock`, a Lock from the staff page, or its idle time.",
    );
    Ok(out)
}

/// `lock`: no options.
#[derive(clap::Args)]
pub(crate) struct LockArgs {}

/// Forget the keys until staff unlock again (every connection, every host).
pub(crate) fn lock(d: &Dongle, _args: &LockArgs) -> Result<Output, AdminError> {
    d.client().lock()?;
    let mut out = Output::default();
    out.note("Locked: no record opens until staff unlock again.");
    Ok(out)
}
