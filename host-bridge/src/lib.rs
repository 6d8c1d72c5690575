//! # vbzkey-host-bridge
//!
//! The workstation side: it finds the staff member's key (a dongle on USB, the emulated
//! dongle on a socket, the LAN key server, a passphrase or a key file), and serves the
//! localhost HTTP API that the store's admin page calls to open sealed fields.
//!
//! ```text
//!  staff browser ──HTTP (Origin-checked)──► http ──► KeyMethod ─┬─ DongleMethod ──► vbzkey-client ──USB/socket──► dongle
//!                                                                └─ SoftMethod (passphrase, key file)
//! ```
//!
//! The dongle client (addresses, links, sessions, reconnecting, typed requests and errors) is
//! its own crate, `vbzkey-client`, shared with the admin tool; this crate adds the HTTP API and
//! the key methods on top.
//!
//! ## Non-features
//!
//! - **Not reachable from the network**: it binds 127.0.0.1 and ::1 only.
//! - **No wildcard origins, no cookies, no credentials**: CORS is answered per exact origin.
//! - **No plaintext in logs**, no caching of answers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod http;
pub mod method;
