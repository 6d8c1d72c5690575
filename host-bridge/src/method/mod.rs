//! The four key methods behind one trait, so the HTTP API, the record format and the staff
//! page are the same whichever an admin picks: the USB dongle, the LAN key server, a
//! passphrase, or a key file.

pub mod dongle;
pub mod soft;

use std::path::PathBuf;

use serde::Serialize;
use vbzkey_client::{ClientError, LinkError};
use vbzkey_protocol::wire::{DongleError, ItemError, Plaintext, SealedItem};
use vbzkey_softkey::SoftKeyError;

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
    /// The dongle serves paired workstations only, and this bridge is not one: its
    /// configuration has no `host_key`, or one the dongle does not know. `detail` says which.
    NotPaired,
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
    /// For a dongle: whether unlocking needs a paired workstation's share as well as the PIN
    /// (`split`), or the PIN alone (`pin_only`: a stolen dongle is protected by its PIN only).
    pub custody: Option<Custody>,
}

/// What protects a stolen dongle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Custody {
    /// The PIN and a paired workstation's share.
    Split,
    /// The PIN only: no host is paired.
    PinOnly,
}

/// Why a method could not do what was asked. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// The dongle is not reachable, or its link failed. Only a dongle that is not there is
    /// called "not connected": one that answers as the wrong dongle (another device key, a
    /// refused handshake) is described as what it is, with the setting to check.
    #[error("{}", link_text(.0))]
    Absent(LinkError),
    /// The key file or passphrase descriptor cannot be used.
    #[error(transparent)]
    KeyUnavailable(#[from] KeyUnavailable),
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
    /// The dongle refused for another reason, its own.
    #[error("the dongle refused: {0}")]
    Refused(DongleError),
    /// The dongle answered something that does not answer the request.
    #[error("the dongle misbehaved: {0}")]
    BadAnswer(ClientError),
    /// The dongle refused this workstation's session: it serves paired hosts only.
    #[error("{}", not_paired_text(.0.as_deref()))]
    NotPaired(Option<PathBuf>),
}

/// What to fix when the dongle refuses this workstation, by whether the bridge's
/// configuration names a host key (`host_key`) at all.
fn not_paired_text(host_key: Option<&std::path::Path>) -> String {
    match host_key {
        None => "the dongle serves paired workstations only, and the bridge's configuration has \
                 no host_key: add host_key = \"/full/path/host.key\" under [method] (the lines \
                 `vbzkey-admin pair --new-host-key FILE` printed), then restart the bridge"
            .into(),
        Some(p) => format!(
            "this workstation's host key (host_key = \"{}\" under [method]) is not paired with \
             the dongle: pair it with `vbzkey-admin pair`, or name the key that was paired",
            p.display()
        ),
    }
}

/// Why a software key's file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyUnavailable {
    /// It cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a valid key file or descriptor.
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SoftKeyError,
    },
}

impl From<DongleError> for MethodError {
    fn from(e: DongleError) -> Self {
        match e {
            DongleError::Locked => MethodError::Locked,
            DongleError::LockedOut => MethodError::LockedOut,
            DongleError::WrongPin { tries_left } => {
                MethodError::WrongSecret { tries_left: Some(tries_left) }
            }
            // A PIN of an impossible length is a wrong PIN to the person typing it.
            DongleError::BadPin => MethodError::WrongSecret { tries_left: None },
            DongleError::RateLimited { retry_after_ms } => {
                MethodError::RateLimited { retry_after_ms }
            }
            DongleError::NotInitialised => MethodError::NotInitialised,
            other => MethodError::Refused(other),
        }
    }
}

fn link_text(e: &LinkError) -> String {
    if e.is_absent() { format!("no dongle is connected: {e}") } else { e.to_string() }
}

impl From<ClientError> for MethodError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Link(e) => {
                // A dongle that is there but not usable (the wrong device key, a broken
                // session) is the admin's to fix: it goes into the bridge's log as well.
                if !e.is_absent() {
                    tracing::warn!("the dongle link failed: {e}");
                }
                MethodError::Absent(e)
            }
            ClientError::Dongle(e) => e.into(),
            other => MethodError::BadAnswer(other),
        }
    }
}

impl MethodError {
    /// Stable code for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            MethodError::Absent(_) => "dongle_absent",
            MethodError::KeyUnavailable(_) => "key_unavailable",
            MethodError::Locked => "locked",
            MethodError::LockedOut => "locked_out",
            MethodError::WrongSecret { .. } => "wrong_pin",
            MethodError::RateLimited { .. } => "rate_limited",
            MethodError::NotInitialised => "not_initialised",
            MethodError::Refused(_) => "refused",
            MethodError::BadAnswer(_) => "bad_answer",
            MethodError::NotPaired(_) => "not_paired",
        }
    }
}

/// Per-item outcome: the plaintext, or why this one record did not open.
pub type ItemResult = Result<Plaintext, ItemError>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dongles_refusals_become_the_staff_pages_codes() {
        let code = |e: DongleError| MethodError::from(ClientError::Dongle(e)).code();
        assert_eq!(code(DongleError::Locked), "locked");
        assert_eq!(code(DongleError::LockedOut), "locked_out");
        assert_eq!(code(DongleError::WrongPin { tries_left: 2 }), "wrong_pin");
        assert_eq!(code(DongleError::BadPin), "wrong_pin");
        assert_eq!(code(DongleError::RateLimited { retry_after_ms: 5 }), "rate_limited");
        assert_eq!(code(DongleError::NotInitialised), "not_initialised");
        assert_eq!(code(DongleError::AuditBroken), "refused");
        assert!(matches!(
            MethodError::from(DongleError::WrongPin { tries_left: 2 }),
            MethodError::WrongSecret { tries_left: Some(2) }
        ));
        // The dongle's own reason is kept, typed, for the message.
        match MethodError::from(DongleError::NotConfirmed) {
            MethodError::Refused(e) => assert_eq!(e, DongleError::NotConfirmed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn link_failures_are_absent_a_wrong_dongle_is_named_and_nonsense_is_a_bad_answer() {
        let absent = ClientError::Link(LinkError::NoUsbDongle { vid: 1, pid: 2, serial: None });
        assert_eq!(MethodError::from(absent).code(), "dongle_absent");
        assert!(
            MethodError::from(ClientError::Link(LinkError::NoUsbDongle {
                vid: 1,
                pid: 2,
                serial: None
            }))
            .to_string()
            .starts_with("no dongle is connected: ")
        );
        // A dongle that answers, but not as the pinned one, is not "not connected".
        let wrong = MethodError::from(ClientError::Link(LinkError::HandshakeRejected));
        assert!(!wrong.to_string().contains("no dongle is connected"), "{wrong}");
        assert!(wrong.to_string().contains("device_key"), "{wrong}");
        let odd = ClientError::Unexpected { request: "Unlock", answer: "Hello" };
        let e = MethodError::from(odd);
        assert_eq!(e.code(), "bad_answer");
        assert!(e.to_string().contains("answered Unlock with Hello"), "{e}");
    }
}
