//! The four key methods behind one trait, so the HTTP API, the record format and the staff
//! page are the same whichever an admin picks: the USB dongle, the LAN key server, a
//! passphrase, or a key file.

pub mod dongle;
pub mod soft;

use serde::Serialize;
use vbzkey_protocol::wire::{Plaintext, SealedItem};

/// Lock state as the staff page sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No dongle reachable (unplugged, emulator stopped).
    Absent,
    /// The dongle has no key yet.
    Uninitialised,
    /// A PIN or passphrase is needed.
    Locked,
    /// Records can be opened.
    Unlocked,
    /// Too many wrong PINs.
    LockedOut,
    /// The dongle could not read its OTP device secret at boot: nothing opens, no PIN is asked.
    DeviceSecretMissing,
}

/// One key's public facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    /// Key id (hex).
    pub key_id: String,
    /// Version (1 for software keys).
    pub version: u32,
    /// Whether new records go to it.
    pub active: bool,
    /// Its `vkpub1.` public key.
    pub public_key: String,
}

/// What `/v1/status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `dongle`, `lan`, `passphrase` or `keyfile`.
    pub method: &'static str,
    /// Overall state.
    pub state: State,
    /// Where the key is (`usb:SERIAL`, `unix:/path`, a file name).
    pub source: Option<String>,
    /// Dongle serial, firmware version and PIN tries left, for the dongle methods.
    pub serial: Option<String>,
    /// Firmware version of the dongle.
    pub firmware_version: Option<String>,
    /// Wrong PINs left.
    pub pin_tries_left: Option<u8>,
    /// Keys.
    pub keys: Vec<KeyStatus>,
    /// Other dongles present (serials), for the dongle method over USB.
    pub also_present: Vec<String>,
    /// Why the key is absent, in words for the staff member.
    pub detail: Option<String>,
}

/// Why a method could not do what was asked. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    /// The dongle is not reachable.
    #[error("no dongle is connected: {0}")]
    Absent(String),
    /// Unlock first.
    #[error("locked: unlock with the PIN or passphrase first")]
    Locked,
    /// Too many wrong PINs.
    #[error("the dongle is locked out after too many wrong PINs")]
    LockedOut,
    /// Wrong PIN or passphrase.
    #[error("wrong PIN or passphrase")]
    WrongSecret {
        /// Tries left, where counted.
        tries_left: Option<u8>,
    },
    /// The dongle's rate limit.
    #[error("rate limit reached")]
    RateLimited {
        /// When to retry.
        retry_after_ms: u32,
    },
    /// The dongle has no key.
    #[error("the dongle is not initialised")]
    NotInitialised,
    /// The dongle refused for another reason (its error, in words).
    #[error("the dongle refused: {0}")]
    Refused(String),
}

impl MethodError {
    /// Stable code for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            MethodError::Absent(_) => "dongle_absent",
            MethodError::Locked => "locked",
            MethodError::LockedOut => "locked_out",
            MethodError::WrongSecret { .. } => "wrong_pin",
            MethodError::RateLimited { .. } => "rate_limited",
            MethodError::NotInitialised => "not_initialised",
            MethodError::Refused(_) => "refused",
        }
    }
}

/// Per-item outcome: the plaintext or a stable error code.
pub type ItemResult = Result<Plaintext, &'static str>;

/// A key method. Calls may block (USB, Argon2): the HTTP layer runs them off the async
/// threads.
pub trait KeyMethod: Send + Sync {
    /// The method's name in status answers.
    fn name(&self) -> &'static str;
    /// Current state and keys.
    fn status(&self) -> Status;
    /// Unlock with a PIN or passphrase.
    fn unlock(&self, secret: &[u8]) -> Result<(), MethodError>;
    /// Forget the key material / lock the dongle.
    fn lock(&self) -> Result<(), MethodError>;
    /// Open a batch; one result per item, in order.
    fn unseal(&self, items: Vec<SealedItem>) -> Result<Vec<ItemResult>, MethodError>;
    /// Whether the secret may only be typed into the bridge's own page (passphrases:
    /// a store page must never see them), rather than into the store page (a dongle PIN,
    /// useless without the dongle).
    fn unlock_only_on_bridge_page(&self) -> bool;
    /// Called periodically: lock after idle time, where the bridge holds the key.
    fn tick(&self) {}
}
