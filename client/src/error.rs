//! The client's errors, one enum per layer, typed to the caller: a transport that failed
//! ([`TransportError`]), a link that failed ([`LinkError`]), and a request that failed
//! ([`ClientError`]), which keeps the dongle's own [`DongleError`] as it came.

use std::io;
use std::path::PathBuf;

use vbzkey_protocol::endpoint::Endpoint;
use vbzkey_protocol::keyfile::KeyFileError;
use vbzkey_protocol::session::SessionError;
use vbzkey_protocol::wire::{DongleError, FrameKind, WireError};

/// Moving one frame failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The socket failed (or timed out).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// libusb failed (or timed out, or the device went away).
    #[error("USB: {0}")]
    Usb(#[from] rusb::Error),
    /// The dongle closed the connection.
    #[error("the dongle closed the connection")]
    Closed,
    /// A USB write moved fewer bytes than asked.
    #[error("a short USB write ({sent} of {len} bytes)")]
    ShortWrite {
        /// Bytes sent.
        sent: usize,
        /// Bytes asked.
        len: usize,
    },
    /// A USB transfer of another size where the 8-byte frame header was expected.
    #[error("a {0}-byte USB transfer where a frame header was expected")]
    HeaderTransfer(usize),
    /// A zero-length USB transfer in the middle of a frame.
    #[error("an empty USB transfer inside a frame")]
    EmptyTransfer,
    /// The frame header is invalid: the stream is out of sync.
    #[error("a bad frame header: {0}")]
    Frame(WireError),
}

/// The answer was not a valid answer.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The payload does not decode.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The answer names another request.
    #[error("an answer to request {got}, where {expected} was asked")]
    WrongId {
        /// The id sent.
        expected: u32,
        /// The id received.
        got: u32,
    },
    /// A frame of another kind than the exchange allows.
    #[error("a {got:?} frame where a {expected:?} frame was expected")]
    FrameKind {
        /// What the exchange expects.
        expected: FrameKind,
        /// What came.
        got: FrameKind,
    },
    /// `DeviceKey` (asked before a session with no pinned device key) got another answer.
    #[error("the dongle did not give its device key")]
    NoDeviceKey,
}

/// A link to a dongle could not be opened, or failed. Any of these drops the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Nothing answers at a socket address (emulator not running, LAN key server down, a
    /// host name that does not resolve).
    #[error("no dongle found at {addr}: {source}")]
    Unreachable {
        /// Where.
        addr: Endpoint,
        /// Why.
        source: io::Error,
    },
    /// libusb cannot start or cannot list devices (no USB on this computer, or in this
    /// container or VM). libusb's own words ("Other error") say nothing an admin can act on,
    /// so the message names what was looked for and what to check.
    #[error(
        "no dongle found: this computer's USB devices cannot be listed (libusb: {0}). A vbzkey \
         dongle is looked for as USB id {vid:04x}:{pid:04x}: check that /dev/bus/usb exists and \
         is readable (in a container or VM, that USB is passed through), that the dongle is \
         plugged in (`lsusb -d {vid:04x}:{pid:04x}`), and that the udev rule \
         hardware/pi/70-vbzkey.rules is installed; an emulated dongle is reached with \
         --dongle unix:PATH",
        vid = crate::usb::DEFAULT_VID,
        pid = crate::usb::DEFAULT_PID
    )]
    UsbUnavailable(rusb::Error),
    /// No matching USB device is plugged in.
    #[error(
        "no dongle found: none with USB id {vid:04x}:{pid:04x}{} is plugged in. Check the cable \
         (a data cable, in the Pi's USB port, not PWR), that `lsusb -d {vid:04x}:{pid:04x}` lists \
         it, and that the udev rule hardware/pi/70-vbzkey.rules is installed",
        serial.as_deref().map(|s| format!(" and serial {s}")).unwrap_or_default()
    )]
    NoUsbDongle {
        /// Vendor id looked for.
        vid: u16,
        /// Product id looked for.
        pid: u16,
        /// Serial looked for.
        serial: Option<String>,
    },
    /// Several matching dongles are plugged in and none was named: choosing one would be a
    /// guess (the wrong one would get the PIN).
    #[error(
        "several dongles are plugged in (serials {}): name one (`serial = \"…\"` in the bridge's \
         configuration, `--dongle usb:SERIAL` for the admin tool)",
        serials.join(", ")
    )]
    SeveralDongles {
        /// The serials found.
        serials: Vec<String>,
    },
    /// The dongle answering is not the one this host knows: its device key differs from the
    /// pinned one. Nothing else (no PIN) is sent to it.
    #[error(
        "the dongle {at} is not the one this computer knows: its device key {got} differs from \
         the pinned {expected} (device_key / --device-key, or the trust-on-first-use file); \
         nothing was sent to it. If the dongle was replaced on purpose, pin the new key \
         (`vbzkey-admin pair` prints it)"
    )]
    DeviceKeyMismatch {
        /// Where it was reached.
        at: String,
        /// The pinned key.
        expected: vbzkey_protocol::PublicKey,
        /// The key it gave.
        got: vbzkey_protocol::PublicKey,
    },
    /// The trust-on-first-use file cannot be read or written.
    #[error("the known-dongle file {}: {source}", path.display())]
    KnownDongleFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The device has no vendor interface with bulk endpoints: not a vbzkey dongle.
    #[error(
        "the USB device {serial} is not a vbzkey dongle (no vendor interface with bulk endpoints)"
    )]
    NoInterface {
        /// Its serial.
        serial: String,
    },
    /// The device is there but cannot be opened (most often: no permission, udev rule missing).
    #[error(
        "cannot open dongle {serial}: {source}{}",
        if matches!(source, rusb::Error::Access) {
            " (install hardware/pi/70-vbzkey.rules on this computer, see docs/OPERATIONS.md)"
        } else {
            ""
        }
    )]
    UsbOpen {
        /// Its serial.
        serial: String,
        /// Why.
        source: rusb::Error,
    },
    /// Sending failed: the request did not reach the dongle.
    #[error("sending to the dongle failed: {0}")]
    Send(TransportError),
    /// Sending worked but no answer came: the dongle may or may not have acted on it.
    #[error("no answer from the dongle: {0}")]
    Recv(TransportError),
    /// The answer is not a valid answer.
    #[error("the dongle's answer is invalid: {0}")]
    Protocol(#[from] ProtocolError),
    /// The dongle refused this host's session (for example `NotPaired`).
    #[error("the dongle refused this host's session: {0}")]
    Refused(DongleError),
    /// The dongle hung up during the session handshake: it could not read the first message,
    /// which is what happens when the pinned device key is not this dongle's.
    #[error(
        "the dongle closed the connection during the session handshake: the pinned device key \
         is not this dongle's key (check device_key / --device-key)"
    )]
    HandshakeRejected,
    /// The encrypted session failed (a message did not verify).
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl LinkError {
    /// Whether this says only that no dongle is there (as opposed to one that misbehaved).
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            LinkError::Unreachable { .. }
                | LinkError::UsbUnavailable(_)
                | LinkError::NoUsbDongle { .. }
        )
    }
}

/// A request did not get the answer it wanted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The link failed: nothing, or nothing valid, came back.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The dongle refused, with its own typed reason.
    #[error(transparent)]
    Dongle(#[from] DongleError),
    /// The dongle answered with a message that does not answer this request.
    #[error("the dongle answered {request} with {answer}")]
    Unexpected {
        /// The request.
        request: &'static str,
        /// What came back.
        answer: &'static str,
    },
    /// The dongle reported keys but none active (a damaged state; `info` shows it).
    #[error("the dongle reported no active key")]
    NoActiveKey,
}

/// A host key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// It could not be read.
    #[error("cannot read the host key {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is not a key file.
    #[error("the host key {}: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyFileError,
    },
}
