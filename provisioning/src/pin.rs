//! The PIN commands, both admin: `set-pin` (a new staff PIN for a forgotten one or a staff
//! lock-out, or none) and `change-admin-pin`. Each needs the admin PIN and a press of the
//! dongle's button; staff cannot change their own PIN (a compromised workstation knows it).

use std::path::PathBuf;

use crate::dongle::{Dongle, NoStaffPin};
use crate::error::AdminError;
use crate::input::read_new_pin;
use crate::output::Output;
use crate::strength;

/// `set-pin`'s options.
#[derive(clap::Args)]
pub(crate) struct SetPinArgs {
    #[command(flatten)]
    staff: NoStaffPin,
    /// The new staff PIN (6 to 128 characters, not the admin PIN).
    #[arg(long, required_unless_present = "dangerous_remove_pin")]
    new_pin_file: Option<PathBuf>,
    /// Remove the staff PIN: whoever holds the dongle can then open records.
    #[arg(long, conflicts_with = "new_pin_file")]
    dangerous_remove_pin: bool,
}

/// Set or remove the staff PIN (resets its counter).
pub(crate) fn set_pin(d: &Dongle, args: &SetPinArgs) -> Result<Output, AdminError> {
    args.staff.check("set-pin")?;
    let new = args.new_pin_file.as_deref().map(|p| read_new_pin(p, "new staff PIN")).transpose()?;
    let h = d.admin()?;
    let report = strength::report(new.as_ref(), &h.limits);
    let removed = new.is_none();
    d.client().set_staff_pin(new)?;
    let mut out = changed(removed);
    out.note(report);
    Ok(out)
}

/// `change-admin-pin`'s options.
#[derive(clap::Args)]
pub(crate) struct ChangeAdminPinArgs {
    #[command(flatten)]
    staff: NoStaffPin,
    /// The new admin PIN (8 to 128 characters, not the staff PIN).
    #[arg(long)]
    new_admin_pin_file: PathBuf,
}

/// Change the admin PIN (resets its counter).
pub(crate) fn change_admin_pin(
    d: &Dongle,
    args: &ChangeAdminPinArgs,
) -> Result<Output, AdminError> {
    args.staff.check("change-admin-pin")?;
    let new = read_new_pin(&args.new_admin_pin_file, "new admin PIN")?;
    d.admin()?;
    d.client().change_admin_pin(new)?;
    let mut out = Output::default();
    out.note("Admin PIN changed.");
    Ok(out)
}

fn changed(removed: bool) -> Output {
    let mut out = Output::default();
    out.note(if removed {
        "Staff PIN removed: whoever holds the dongle can now open records."
    } else {
        "Staff PIN set."
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_pin_says_what_it_means() {
        assert_eq!(changed(false).stderr, "Staff PIN set.\n");
        assert!(changed(true).stderr.contains("whoever holds the dongle"));
        assert!(changed(true).stdout.is_empty());
    }
}
