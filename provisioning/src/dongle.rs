//! Reaching the dongle the global options name, and proving the admin credential a command
//! needs. The staff PIN plays no part in admin commands: they open an admin window of their
//! own connection (with the admin PIN and, once hosts are paired, this host's unlock secret)
//! and close it when they finish, so they never leave records unlocked for the staff page.

use std::path::PathBuf;
use std::sync::Arc;

use vbzkey_client::{Client, ConnectOptions, DongleAddr, SessionKeys};
use vbzkey_protocol::wire::HelloInfo;

use crate::error::{AdminError, Usage};
use crate::input::read_pin;

/// What the tool prints when the dongle asks for its button (tests look for it).
pub(crate) const PRESS_PROMPT: &str = "Press the dongle's button";

/// Where and as whom to reach a dongle.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: DongleAddr,
    pub(crate) keys: Option<Arc<SessionKeys>>,
    /// The admin PIN file (`--admin-pin-file`), proven (`AdminAuth`) by admin commands.
    pub(crate) admin_pin: Option<PathBuf>,
}

/// Every admin command's `--pin-file`, hidden: a staff PIN given to an admin command is
/// refused with a reason, rather than with clap's "unexpected argument".
#[derive(clap::Args)]
pub(crate) struct NoStaffPin {
    /// Not accepted: the staff PIN opens records and nothing else.
    #[arg(long = "pin-file", hide = true)]
    staff_pin_file: Option<PathBuf>,
}

impl NoStaffPin {
    /// Refuse a staff PIN given to `command`.
    pub(crate) fn check(&self, command: &'static str) -> Result<(), AdminError> {
        match self.staff_pin_file {
            Some(_) => Err(Usage::StaffPinRefused(command).into()),
            None => Ok(()),
        }
    }
}

/// One dongle, as a command uses it. An admin window it opened is closed when it is dropped:
/// on USB the link outlives this process, so the dongle cannot tell on its own.
pub(crate) struct Dongle {
    client: Client,
    addr: DongleAddr,
    admin_pin: Option<PathBuf>,
    admin_open: std::cell::Cell<bool>,
}

impl Drop for Dongle {
    fn drop(&mut self) {
        self.end_admin();
    }
}

impl Dongle {
    /// A dongle at `t` (nothing is opened before the first request). When the dongle asks
    /// for its button, the tool says so on stderr.
    pub(crate) fn open(t: &Target) -> Self {
        let opts = ConnectOptions { keys: t.keys.clone(), ..ConnectOptions::default() };
        // An admin's job (a long re-wrap, commands in a script) waits for the dongle's rate
        // limit rather than failing half-way.
        let client = Client::for_addr(&t.addr, opts)
            .on_presence(|secs| {
                eprintln!("{PRESS_PROMPT} now (its light blinks; {secs} s)...");
            })
            .waiting_on_rate_limit(std::time::Duration::from_secs(120));
        Dongle {
            client,
            addr: t.addr.clone(),
            admin_pin: t.admin_pin.clone(),
            admin_open: std::cell::Cell::new(false),
        }
    }

    /// Where it is.
    pub(crate) fn addr(&self) -> &DongleAddr {
        &self.addr
    }

    /// The client, for the requests themselves.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Open an admin window with `--admin-pin-file` (and this host's unlock secret). Returns
    /// the dongle's `Hello` from before.
    pub(crate) fn admin(&self) -> Result<HelloInfo, AdminError> {
        let file = self.admin_pin.as_deref().ok_or(Usage::NeedAdminPinFile)?;
        let h = self.client.hello()?;
        self.client.admin_auth(read_pin(file, "admin PIN")?)?;
        self.admin_open.set(true);
        Ok(h)
    }

    /// Close the admin window now, if this dongle opened one (best effort: the dongle also
    /// closes it when idle and, on sockets, when the connection ends).
    pub(crate) fn end_admin(&self) {
        if self.admin_open.replace(false) {
            let _ = self.client.end_admin();
        }
    }
}
