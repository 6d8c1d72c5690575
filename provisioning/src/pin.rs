//! The PIN commands: `change-pin` (change, set or remove the staff PIN).

use std::path::PathBuf;

use crate::dongle::{Dongle, carrying};
use crate::error::{AdminError, Credential};
use crate::input::read_pin;
use crate::output::Output;

/// `change-pin`'s options.
#[derive(clap::Args)]
pub(crate) struct ChangePinArgs {
    /// The current PIN (omit if none is set).
    #[arg(long)]
    pin_file: Option<PathBuf>,
    /// The new PIN.
    #[arg(long, required_unless_present = "dangerous_remove_pin")]
    new_pin_file: Option<PathBuf>,
    /// Remove the PIN.
    #[arg(long, conflicts_with = "new_pin_file")]
    dangerous_remove_pin: bool,
}

/// Change, set or remove the staff PIN; a wrong current PIN counts toward the lock-out.
pub(crate) fn change_pin(d: &Dongle, args: &ChangePinArgs) -> Result<Output, AdminError> {
    let old = args.pin_file.as_deref().map(read_pin).transpose()?;
    let new = args.new_pin_file.as_deref().map(read_pin).transpose()?;
    let removed = new.is_none();
    d.client().change_pin(old, new).map_err(carrying(Credential::Pin))?;
    Ok(changed(removed))
}

fn changed(removed: bool) -> Output {
    let mut out = Output::default();
    out.note(if removed {
        "PIN removed: whoever holds the dongle can now use it."
    } else {
        "PIN changed."
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_the_pin_says_what_it_means() {
        assert_eq!(changed(false).stderr, "PIN changed.\n");
        assert!(changed(true).stderr.contains("whoever holds the dongle"));
        assert!(changed(true).stdout.is_empty());
    }
}
