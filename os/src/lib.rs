//! The few operating-system services vbzkey relies on, each in a module small enough to
//! audit: crash-safe file writes and process hardening for processes that hold secrets.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod durable;
pub mod harden;
