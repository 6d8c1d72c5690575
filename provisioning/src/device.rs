//! Reaching a dongle and asking it things, with answers an admin can act on.

use std::sync::Arc;
use vbzkey_host_bridge::link::socket::{SocketConnector, SocketTarget};
use vbzkey_host_bridge::link::usb::{DEFAULT_PID, DEFAULT_VID, UsbConnector};

use vbzkey_host_bridge::link::{Connector, Link, SessionKeys};
use vbzkey_protocol::PublicKey;
use vbzkey_protocol::wire::{DongleError, HelloInfo, KeyInfo, Pin, Request, Response};

use crate::input::read_secret_line;

/// A connector for `usb`, `unix:PATH` or `tcp:ADDR:PORT`, in a session when `keys` are given.
pub(crate) fn connector(
    spec: &str,
    serial: Option<String>,
    keys: Option<Arc<SessionKeys>>,
) -> Result<Box<dyn Connector>, String> {
    if spec == "usb" {
        return Ok(Box::new(UsbConnector::new(DEFAULT_VID, DEFAULT_PID, serial, keys)));
    }
    if let Some(p) = spec.strip_prefix("unix:") {
        return Ok(Box::new(SocketConnector::new(SocketTarget::Unix(p.into()), keys)));
    }
    if let Some(a) = spec.strip_prefix("tcp:") {
        let addr = a.parse().map_err(|_| format!("{a:?} is not ADDR:PORT"))?;
        return Ok(Box::new(SocketConnector::new(SocketTarget::Tcp(addr), keys)));
    }
    Err(format!("a dongle is usb, unix:PATH or tcp:ADDR:PORT, not {spec:?}"))
}

/// Where and as whom to reach a dongle.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) spec: String,
    pub(crate) serial: Option<String>,
    pub(crate) keys: Option<Arc<SessionKeys>>,
    /// The admin PIN file, sent (`AdminAuth`) after unlocking, for admin requests.
    pub(crate) admin_pin: Option<std::path::PathBuf>,
}

/// One open dongle. An admin window opened on it is closed when it is dropped: on USB the
/// link outlives this process, so the dongle cannot tell on its own.
pub(crate) struct Dongle {
    link: Box<dyn Link>,
    admin_pin: Option<std::path::PathBuf>,
    admin_open: bool,
    /// This host's unlock secret (split custody), when it has a host key.
    unlock_secret: Option<vbzkey_protocol::wire::UnlockSecret>,
}

impl Drop for Dongle {
    fn drop(&mut self) {
        self.end_admin();
    }
}

impl Dongle {
    pub(crate) fn open(t: &Target) -> Result<Self, String> {
        let mut link = connector(&t.spec, t.serial.clone(), t.keys.clone())?
            .connect()
            .map_err(|e| e.to_string())?;
        link.on_presence(Box::new(|secs| {
            eprintln!("Press the dongle's button now (its LED blinks; {secs} s)...");
        }));
        let unlock_secret = t.keys.as_ref().map(|k| k.unlock_secret());
        Ok(Dongle { link, admin_pin: t.admin_pin.clone(), admin_open: false, unlock_secret })
    }

    /// Ask; a dongle error becomes a message saying what to do.
    pub(crate) fn ask(&mut self, req: &Request) -> Result<Response, String> {
        match self.link.call(req).map_err(|e| e.to_string())? {
            Response::Error(e) => Err(explain(&e)),
            r => Ok(r),
        }
    }

    pub(crate) fn hello(&mut self) -> Result<HelloInfo, String> {
        match self.ask(&Request::Hello)? {
            Response::Hello(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    /// Open an admin window with the admin credential (`--admin-pin-file`): for this
    /// connection only, closed by [`Dongle::end_admin`] or when the connection ends. The staff
    /// PIN plays no part: admin commands never unlock records for the staff page.
    pub(crate) fn admin(&mut self) -> Result<(), String> {
        let file = self.admin_pin.clone().ok_or(
            "this needs the dongle's admin PIN: give --admin-pin-file (backup, clone, \
                 pairing, PIN changes and reset also ask for a press of the dongle's button)",
        )?;
        let unlock_secret = self.unlock_secret.clone();
        let admin_pin = Pin(read_secret_line(&file)?);
        match self.ask(&Request::AdminAuth { admin_pin, unlock_secret })? {
            Response::Ok => {
                self.admin_open = true;
                Ok(())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Close the admin window now, if open (best effort: the dongle also closes it when idle
    /// and, on sockets, when the connection ends).
    pub(crate) fn end_admin(&mut self) {
        if std::mem::take(&mut self.admin_open) {
            let _ = self.link.call(&Request::EndAdmin);
        }
    }

    pub(crate) fn public_keys(&mut self) -> Result<Vec<KeyInfo>, String> {
        match self.ask(&Request::PublicKeys)? {
            Response::PublicKeys(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) fn active_key(&mut self) -> Result<KeyInfo, String> {
        self.public_keys()?
            .into_iter()
            .find(|k| k.active)
            .ok_or_else(|| "the dongle reported no active key".into())
    }
}

pub(crate) fn unexpected(r: &Response) -> String {
    format!("the dongle gave an unexpected answer: {r:?}")
}

fn explain(e: &DongleError) -> String {
    match e {
        DongleError::AlreadyInitialised => {
            "the dongle already has a key; `vbzkey-admin info` shows it (`reset` starts over)"
                .into()
        }
        DongleError::NotInitialised => {
            "the dongle has no key yet: `vbzkey-admin init` (or `restore`, `clone`)".into()
        }
        DongleError::Locked => "the dongle is locked: give --pin-file".into(),
        DongleError::AdminRequired => "this needs the dongle's admin PIN: give --admin-pin-file (backup, clone, pairing, PIN changes and reset also ask for a press of the dongle's button)".into(),
        DongleError::NotConfirmed => {
            "this needs a press of the dongle's button, and none came in time: run the command again and press the button when asked (a dongle without a button cannot confirm)".into()
        }
        DongleError::AdminLockedOut => {
            "too many wrong admin PINs: admin commands are refused for good; unsealing still works. Back the records up elsewhere, then `vbzkey-admin reset` (button) and restore from the recovery shares".into()
        }
        DongleError::WrongAdminPin { tries_left } => {
            format!("wrong admin PIN: {tries_left} tries left before admin commands are refused for good")
        }
        DongleError::PairingRequired => {
            "the dongle serves paired hosts only: give --host-key (a key paired with `vbzkey-admin pair`)".into()
        }
        other => other.to_string(),
    }
}

/// A key id in groups of four, to read aloud.
pub(crate) fn fingerprint(k: &KeyInfo) -> String {
    let hex = k.key_id.to_string();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn describe_key(k: &KeyInfo) -> String {
    format!(
        "key v{}{}  {}  {}",
        k.version,
        if k.active { " (active)" } else { "         " },
        fingerprint(k),
        PublicKey::from_bytes(k.public_key)
    )
}
