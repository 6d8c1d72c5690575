//! Finding a dongle and opening a link to it, for any [`DongleAddr`].

use std::sync::Arc;

use crate::addr::DongleAddr;
use crate::error::LinkError;
use crate::link::Link;
use crate::session::SessionKeys;
use crate::socket::SocketConnector;
use crate::usb::{DEFAULT_PID, DEFAULT_VID, UsbConnector};

/// Makes links: finds the dongle and opens it.
pub trait Connector: Send + Sync {
    /// Open a fresh link to the dongle.
    fn connect(&self) -> Result<Link, LinkError>;
    /// Serial numbers of every matching dongle present (for status), where the transport can
    /// tell without opening them.
    fn present(&self) -> Vec<String> {
        Vec::new()
    }
    /// A counter that changes when devices come or go (hot-plug); a link opened under an
    /// older value is dropped before use. Transports without events keep it at 0.
    fn generation(&self) -> u64 {
        0
    }
}

/// How to reach a dongle besides its address.
#[derive(Clone)]
pub struct ConnectOptions {
    /// USB vendor id to look for.
    pub vid: u16,
    /// USB product id to look for.
    pub pid: u16,
    /// This host's session keys, for a dongle that serves paired hosts only.
    pub keys: Option<Arc<SessionKeys>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { vid: DEFAULT_VID, pid: DEFAULT_PID, keys: None }
    }
}

/// The connector for `addr`.
pub fn connector(addr: &DongleAddr, opts: ConnectOptions) -> Box<dyn Connector> {
    match addr {
        DongleAddr::Usb { serial } => {
            Box::new(UsbConnector::new(opts.vid, opts.pid, serial.clone(), opts.keys))
        }
        DongleAddr::Socket(endpoint) => Box::new(SocketConnector::new(endpoint.clone(), opts.keys)),
    }
}
