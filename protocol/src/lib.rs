//! # vbzkey-protocol
//!
//! What every part of vbzkey agrees on: the sealed-record format v1, record key pairs and key
//! ids, and the split of a customer record into clear search fields and sealed values.
//!
//! ```text
//!   store (public key only)                         dongle / key holder (secret key)
//!   ───────────────────────                         ────────────────────────────────
//!   value + context ──► seal() ──► "vk1.…" ──DB──► open(context) ──► value
//!                                  12-byte header, enc, ciphertext ‖ tag
//! ```
//!
//! The format is HPKE (RFC 9180), base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//! ChaCha20Poly1305, single-shot; `docs/FORMAT.md` specifies it independently of this code.
//!
//! It also holds the other formats two parts must agree on: the bridge⇄dongle messages
//! (`wire`) and their framing (`stream`, std), host sessions (`session`, feature), recovery
//! shares (`share`), the audit-log line (`audit`, `docs/AUDIT-LOG.md`), key files
//! (`keyfile`), socket addresses (`endpoint`, std) and Argon2id stretching (`kdf`, feature).
//!
//! ```text
//!  firmware ──┐            ┌── vbzkey-client ◄── host-bridge, provisioning (vbzkey-admin)
//!  softkey ───┼─► protocol ◄┤
//!  cli ───────┘            └── tests
//! ```
//!
//! ## Non-features
//!
//! - **No I/O.** This crate never touches a file, socket or clock; it is `no_std` + `alloc`
//!   so the same code runs in the firmware, the bridge, the CLI and tests.
//! - **No other suites, no negotiation.** One suite per format version; a reader rejects what
//!   it does not know instead of guessing.
//! - **No partial results.** Opening either returns the whole value or an error; a failed
//!   open zeroes any bytes it touched.
//! - **No secret in `Debug` or error messages.** Keys print their key id only.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Everything here parses input from outside (records, frames, share lines, customer JSON): no
// panics. Each exception is an `#[allow]` with its reason; tests may unwrap and index
// (`protocol/clippy.toml`).
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
// clippy.toml has no tests switch for `string_slice`: unit tests slice their own ASCII strings.
#![cfg_attr(test, allow(clippy::string_slice))]

extern crate alloc;

pub mod audit;
#[cfg(feature = "std")]
pub mod endpoint;
mod hpke;
#[cfg(feature = "kdf")]
pub mod kdf;
pub mod keyfile;
pub mod keys;
pub mod ratelimit;
pub mod record;
#[cfg(feature = "session")]
pub mod session;
pub mod share;
pub mod split;
#[cfg(feature = "std")]
pub mod stream;
pub mod usb_id;
pub mod wire;

pub use keys::{KeyError, KeyId, PublicKey, SecretKey};
pub use record::{Record, RecordError};
