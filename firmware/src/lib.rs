//! # vbzkey-firmware
//!
//! The dongle: it holds the X25519 private keys and opens records for paired hosts, never
//! revealing a key.
//!
//! ```text
//!            frames in                                       frames out
//!  transport ─────────► Dongle::handle_frame(payload, now) ─────────► transport
//!  (FunctionFS,              │            │           │
//!   Unix, TCP)          Storage       Platform      Now
//!                   (key store,     (RNG, LED,   (passed in:
//!                    PIN counter,    button)      no clock inside)
//!                    audit log)
//! ```
//!
//! The core ([`dongle`]) is sans-IO: it never opens a socket or a file or reads a clock;
//! everything arrives through its arguments, which is what lets the tests drive every
//! policy (PIN counter across restarts, lock-out, idle lock, rate limit) without waiting.
//! Transports ([`transport`]) only move frames.
//!
//! ## Non-features
//!
//! - **No key export.** No request returns a private key, in any form. Re-wrap only seals to
//!   the dongle's own keys.
//! - **No silent repair.** A key store that fails its checks is reported and left untouched;
//!   an audit log that does not verify stops everything that uses or changes keys until an
//!   admin resets the dongle (the broken log is kept).
//! - **No secret in logs.** Tracing output names requests, counts and key ids, never PINs,
//!   keys or plaintext.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The firmware parses what a host or a card hands it: no panics in its request path (a panic
// aborts, and a clone's RAM-only transfer key would go with it). Each exception is an
// `#[allow]` with its reason; tests may unwrap and index (`firmware/clippy.toml`).
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod audit;
pub mod backup;
mod bytes;
pub mod dongle;
pub mod keystore;
pub mod pairing;
pub mod parallel;
pub mod pin_counter;
pub mod platform;
pub mod selftest;
pub mod storage;
pub mod transport;
