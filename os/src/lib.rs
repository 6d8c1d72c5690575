//! The few operating-system services vbzkey relies on, each in a module small enough to
//! audit: crash-safe file writes, process hardening, memory locked against swap, and a
//! terminal's echo turned off while a secret is typed, and the exit codes and error prefix
//! every vbzkey program shares.
//!
//! `locked` is the only module in vbzkey with `unsafe` code (two system calls that take a
//! pointer); the rest of this crate, like every other crate, forbids it.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod cputime;
pub mod durable;
pub mod exit;
pub mod harden;
pub mod input;
pub mod locked;
pub mod tty;
