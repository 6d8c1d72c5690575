//! Links to a dongle: something that carries one wire-protocol request and brings back its
//! answer. The same dongle code path uses USB (libusb) for the real key and a socket for the
//! emulated dongle and the LAN key server.

pub mod socket;
pub mod usb;

use vbzkey_protocol::wire::{Request, Response};

/// Why a link failed. Any of these means "drop the link and reconnect".
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No dongle found (unplugged, emulator not running).
    #[error("no dongle found: {0}")]
    NotFound(String),
    /// The transport failed mid-exchange.
    #[error("dongle link failed: {0}")]
    Io(String),
    /// The dongle answered something that is not a valid answer.
    #[error("the dongle's answer is invalid: {0}")]
    Protocol(String),
}

/// One open connection to one dongle.
pub trait Link: Send {
    /// Send a request and wait for its answer.
    fn call(&mut self, req: &Request) -> Result<Response, LinkError>;
    /// Where this link goes, for status and logs ("usb:SERIAL", "unix:/path").
    fn describe(&self) -> String;
}

/// Makes links: finds the dongle and opens it.
pub trait Connector: Send + Sync {
    /// Open a fresh link to the configured dongle.
    fn connect(&self) -> Result<Box<dyn Link>, LinkError>;
    /// Serial numbers of every matching dongle currently present (for status), where the
    /// transport can tell without opening them.
    fn present(&self) -> Vec<String> {
        Vec::new()
    }
    /// A counter that changes when devices come or go (hot-plug); a link opened under an
    /// older value is dropped before use. Transports without events keep it at 0.
    fn generation(&self) -> u64 {
        0
    }
}
