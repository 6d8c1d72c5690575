//! # vbzkey-hardware
//!
//! The dongle's platform layer: everything that differs between a Raspberry Pi Zero and a
//! development machine, behind small traits, so the firmware core never touches the board.
//!
//! - [`identity`]: the device's serial number and its OTP device secret, which bind the key
//!   store to this board.
//! - [`otp`]: reading, programming (once) and locking the OTP rows of the device secret.
//! - [`gpio`]: a GPIO line of the Linux character device as an embedded-hal 1.0 pin
//!   (`gpiocdev`; rppal is no longer maintained).
//! - [`presence`]: the status LED and the confirm button, over any embedded-hal pins.
//! - [`fake`]: in-memory pins for tests and the emulated dongle.
//!
//! The Pi image kit (gadget script, systemd units, udev rule) is in `hardware/pi/`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// What the board hands the firmware (OTP dumps, the serial in /proc/cpuinfo, GPIO) is parsed
// without panics; tests may unwrap and index (`hardware/clippy.toml`).
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod fake;
pub mod gpio;
pub mod identity;
pub mod otp;
pub mod presence;

/// Why the board could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// The serial number could not be found.
    #[error("no device serial number found (looked in {0}); is this a Raspberry Pi?")]
    NoSerial(String),
    /// A board file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What was read.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A GPIO line could not be requested or driven.
    #[error("GPIO {chip} line {line}: {source}")]
    Gpio {
        /// Chip path.
        chip: String,
        /// Line offset.
        line: u32,
        /// Why.
        source: gpiocdev::Error,
    },
}
