//! # vbzkey-x25519
//!
//! X25519 (RFC 7748) for vbzkey's records. On the Pi Zero's ARM1176 (A32, ARMv6), a
//! constant-time Montgomery ladder ([`ladder`]) on hand-written field arithmetic using
//! `UMAAL` ([`arm`], the crate's only `unsafe` code); everywhere else x25519-dalek, which the
//! ARM code is tested against (`tests/`, run under `qemu-arm -cpu arm1176` by `scripts/meter`).
//!
//! Both functions clamp the scalar and mask the top bit of `u` as RFC 7748 says, and return
//! the 32-byte output without judging it: the caller checks for the all-zero output of a
//! low-order point (HPKE's DH step does).
#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(vbzkey_x25519_armv6)]
mod arm;
#[cfg(vbzkey_x25519_armv6)]
mod ladder;

/// X25519's base point, u = 9.
pub const BASEPOINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 9;
    b
};

/// Which implementation [`x25519`] runs in this build.
pub const BACKEND: &str = if cfg!(vbzkey_x25519_armv6) { "armv6-umaal" } else { "x25519-dalek" };

/// X25519(scalar, u): the shared secret with the peer whose public key is `u`.
pub fn x25519(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    #[cfg(vbzkey_x25519_armv6)]
    {
        ladder::x25519(scalar, u)
    }
    #[cfg(not(vbzkey_x25519_armv6))]
    {
        portable(scalar, u)
    }
}

/// X25519(scalar, 9): the public key of `scalar`, by x25519-dalek's fixed-base code
/// (Edwards arithmetic on precomputed tables) on every CPU: several times faster than a
/// ladder on 64-bit CPUs, and on the ARM1176 still 4 % fewer instructions than the assembly
/// ladder (docs/PERFORMANCE.md).
pub fn x25519_base(scalar: &[u8; 32]) -> [u8; 32] {
    let secret = x25519_dalek::StaticSecret::from(*scalar);
    x25519_dalek::PublicKey::from(&secret).to_bytes()
}

/// x25519-dalek's X25519 (its portable field arithmetic): the reference the ARM code is
/// tested against, and the implementation everywhere else.
pub fn portable(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*scalar, *u)
}
