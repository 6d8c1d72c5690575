//! # vbzkey-client
//!
//! The one client of the dongle's wire protocol (`docs/PROTOCOL.md`). The bridge, the admin
//! tool, the USB VM probe and the end-to-end tests all reach dongles through it.
//!
//! ```text
//!  "usb:SERIAL" / "unix:PATH" / "tcp:HOST:PORT"
//!        │ DongleAddr::from_str
//!        ▼
//!  Connector ──connect──► Link ──FrameIo──► USB (rusb) │ Unix socket │ TCP ──► dongle
//!  (usb, socket)          request ids,
//!        ▲                Noise session (SessionKeys)
//!        │
//!  Client: keeps one link, reopens it, retries only what is safe to repeat,
//!          one typed method per request → Result<T, ClientError>
//! ```
//!
//! Errors stay typed to the caller: a refusal is `ClientError::Dongle(DongleError)` exactly
//! as the dongle sent it, so the caller decides how to explain it and what exit code it is.
//!
//! ## Non-features
//!
//! - **No policy**: whether a PIN or an admin credential is needed is the dongle's decision;
//!   the client forwards and reports.
//! - **No secrets kept**: PINs pass through as zeroizing `Pin`s; plaintexts come back as
//!   zeroizing `Plaintext`s; nothing is logged but link failures (never payloads).
//! - **No async**: calls block (USB transfers, a dongle waiting for its button); async callers
//!   run them on blocking threads.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod addr;
mod client;
pub mod connector;
pub mod error;
pub mod link;
pub mod session;
pub mod socket;
pub mod usb;

pub use addr::{AddrError, DongleAddr};
pub use client::{AuditPage, AuditTail, Client, replay_safe};
pub use connector::{ConnectOptions, Connector, connector};
pub use error::{ClientError, HostKeyError, LinkError, ProtocolError, TransportError};
pub use link::{FrameIo, Link};
pub use session::{DevicePin, SessionKeys, read_host_key};

#[cfg(test)]
mod tests;
