//! Reaching the dongle the global options name, and proving the credentials a command needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vbzkey_client::{Client, ClientError, ConnectOptions, DongleAddr, SessionKeys};
use vbzkey_protocol::wire::HelloInfo;

use crate::error::{AdminError, Credential, Usage};
use crate::input::read_pin;

/// Where and as whom to reach a dongle.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: DongleAddr,
    pub(crate) keys: Option<Arc<SessionKeys>>,
    /// The admin PIN file, proven (`AdminAuth`) after unlocking, for admin requests.
    pub(crate) admin_pin: Option<PathBuf>,
}

/// One dongle, as a command uses it.
pub(crate) struct Dongle {
    client: Client,
    admin_pin: Option<PathBuf>,
}

/// Name the credential a failed request carried.
pub(crate) fn carrying(credential: Credential) -> impl FnOnce(ClientError) -> AdminError {
    move |error| AdminError::Dongle { error, credential: Some(credential) }
}

impl Dongle {
    /// A dongle at `t` (nothing is opened before the first request).
    pub(crate) fn open(t: &Target) -> Self {
        let opts = ConnectOptions { keys: t.keys.clone(), ..ConnectOptions::default() };
        Dongle { client: Client::for_addr(&t.addr, opts), admin_pin: t.admin_pin.clone() }
    }

    /// The client, for the requests themselves.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Unlock with the PIN in `pin_file` (unless the dongle has no PIN), then, if the dongle
    /// has an admin PIN and `--admin-pin-file` was given, prove it. Returns the dongle's
    /// `Hello` from before.
    pub(crate) fn unlock(&self, pin_file: Option<&Path>) -> Result<HelloInfo, AdminError> {
        let h = self.client.hello()?;
        if h.pin_set {
            let file = pin_file.ok_or(Usage::NeedPinFile)?;
            self.client.unlock(read_pin(file)?).map_err(carrying(Credential::Pin))?;
        }
        if let (true, Some(file)) = (h.admin_pin_set, &self.admin_pin) {
            self.client.admin_auth(read_pin(file)?).map_err(carrying(Credential::AdminPin))?;
        }
        Ok(h)
    }
}
