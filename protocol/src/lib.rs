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

extern crate alloc;

mod hpke;
pub mod keys;
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
