//! Key backup as M-of-N recovery shares (Shamir's scheme over GF(256), `blahaj`), and the
//! secret those shares (and a clone blob) carry: every key version and which one is active.
//!
//! Shares are dealt and combined **on the dongle**; a share alone, or any M-1 of them, tells
//! nothing about the keys. The printed form and its checksum are `vbzkey_protocol::share`.

use std::convert::Infallible;

use serde::{Deserialize, Serialize};
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::share::Share;
use zeroize::{Zeroize, Zeroizing};

use crate::keystore::Keys;

/// What a backup or a clone carries.
#[derive(Serialize, Deserialize, Zeroize)]
#[zeroize(drop)]
pub struct KeySet {
    keys: Vec<(u32, [u8; 32])>,
    active: u32,
}

impl KeySet {
    /// From the unlocked keys.
    pub fn from_keys(keys: &Keys, active: u32) -> Self {
        KeySet { keys: keys.keys.iter().map(|(v, k)| (*v, *k.to_bytes())).collect(), active }
    }

    /// Back to keys; `None` if the set is inconsistent (no keys, or no active one).
    pub fn into_keys(self) -> Option<(Keys, u32)> {
        if self.keys.is_empty() || !self.keys.iter().any(|(v, _)| *v == self.active) {
            return None;
        }
        let keys = self.keys.iter().map(|(v, k)| (*v, SecretKey::from_bytes(*k))).collect();
        Some((Keys { keys }, self.active))
    }

    /// Serialised, in memory that is wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // postcard fails only on types it cannot encode (maps with non-string keys, say) or a
        // full fixed buffer; this is integers and byte arrays into a growable vector.
        #[allow(clippy::expect_used, reason = "encoding integers and arrays to a Vec cannot fail")]
        Zeroizing::new(postcard::to_allocvec(self).expect("plain data"))
    }

    /// Parse serialised bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        postcard::from_bytes(b).ok()
    }
}

/// Why shares do not rebuild a key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// Shares of different backups, or different thresholds.
    #[error("the shares come from different backups")]
    Mixed,
    /// Fewer distinct shares than the threshold.
    #[error("{need} different shares are needed, {got} were given")]
    TooFew {
        /// The threshold.
        need: u8,
        /// Distinct shares given.
        got: usize,
    },
    /// The rebuilt secret does not match the set id: a share is wrong.
    #[error("the shares do not rebuild the backup: one of them is wrong")]
    WrongShare,
}

/// Feeds `blahaj` from the platform RNG. A failure is remembered (blahaj's RNG cannot fail)
/// and the caller discards whatever was dealt.
pub struct PlatformRng<'a> {
    fill: &'a mut dyn FnMut(&mut [u8]) -> bool,
    /// Set when the platform RNG failed at least once.
    pub failed: bool,
}

impl<'a> PlatformRng<'a> {
    /// Wrap a fill function that returns false on failure.
    pub fn new(fill: &'a mut dyn FnMut(&mut [u8]) -> bool) -> Self {
        PlatformRng { fill, failed: false }
    }
}

impl rand_core::TryRng for PlatformRng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if !(self.fill)(dst) {
            self.failed = true;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for PlatformRng<'_> {}

/// Deal `count` shares of `secret`, any `threshold` of which rebuild it (the field and the
/// layout are in docs/FORMAT.md). Every share is wiped when dropped; if the RNG failed while
/// dealing, the shares (whose polynomials may then be guessable) are wiped here and none are
/// returned: `rng.failed` tells the caller why.
pub fn deal(secret: &[u8], threshold: u8, count: u8, rng: &mut PlatformRng<'_>) -> Vec<Share> {
    let set = Share::set_of(secret);
    let shares: Vec<Share> = blahaj::Sharks(threshold)
        .dealer_rng(secret, rng)
        .take(usize::from(count))
        .filter_map(|s| {
            let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::from(&s));
            let (&index, data) = bytes.split_first()?;
            Some(Share { set, threshold, count, index, data: Zeroizing::new(data.to_vec()) })
        })
        .collect();
    if rng.failed {
        // Dropping wipes each share (`Share` zeroizes on drop).
        drop(shares);
        return Vec::new();
    }
    shares
}

/// Rebuild the secret from shares of one backup.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let first = shares.first().ok_or(ShareError::TooFew { need: 2, got: 0 })?;
    if shares.iter().any(|s| {
        s.set != first.set || s.threshold != first.threshold || s.data.len() != first.data.len()
    }) {
        return Err(ShareError::Mixed);
    }
    let mut distinct: Vec<&Share> = Vec::new();
    for s in shares {
        if !distinct.iter().any(|d| d.index == s.index) {
            distinct.push(s);
        }
    }
    if distinct.len() < usize::from(first.threshold) {
        return Err(ShareError::TooFew { need: first.threshold, got: distinct.len() });
    }
    let parsed: Vec<blahaj::Share> = distinct
        .iter()
        .map(|s| {
            let mut raw = Zeroizing::new(Vec::with_capacity(s.data.len() + 1));
            raw.push(s.index);
            raw.extend_from_slice(&s.data);
            blahaj::Share::try_from(&raw[..]).map_err(|_| ShareError::WrongShare)
        })
        .collect::<Result<_, _>>()?;
    let secret = Zeroizing::new(
        blahaj::Sharks(first.threshold).recover(&parsed).map_err(|_| ShareError::WrongShare)?,
    );
    if Share::set_of(&secret) != first.set {
        return Err(ShareError::WrongShare);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_fill(b: &mut [u8]) -> bool {
        getrandom::fill(b).is_ok()
    }

    #[test]
    fn any_three_of_five_rebuild_and_two_do_not() {
        let secret = b"every key version of the dongle".to_vec();
        let mut fill = os_fill;
        let mut rng = PlatformRng::new(&mut fill);
        let shares = deal(&secret, 3, 5, &mut rng);
        assert!(!rng.failed);
        assert_eq!(shares.len(), 5);
        for (a, b, c) in [(0, 1, 2), (0, 2, 4), (1, 3, 4), (4, 2, 0)] {
            let picked = [shares[a].clone(), shares[b].clone(), shares[c].clone()];
            assert_eq!(&combine(&picked).unwrap()[..], &secret[..]);
        }
        assert_eq!(combine(&shares[..2]).unwrap_err(), ShareError::TooFew { need: 3, got: 2 });
        let dup = [shares[0].clone(), shares[0].clone(), shares[1].clone()];
        assert_eq!(combine(&dup).unwrap_err(), ShareError::TooFew { need: 3, got: 2 });
        let mut bad = shares[..3].to_vec();
        bad[1].data[0] ^= 1;
        assert_eq!(combine(&bad).unwrap_err(), ShareError::WrongShare);
        let mut rng = PlatformRng::new(&mut fill);
        let other = deal(b"another secret of the same size!", 3, 5, &mut rng);
        assert_eq!(
            combine(&[shares[0].clone(), shares[1].clone(), other[2].clone()]).unwrap_err(),
            ShareError::Mixed
        );
    }

    #[test]
    fn a_failing_rng_is_noticed_and_deals_nothing() {
        // Fails at once, or only part-way through dealing.
        for fail_after in [0, 1, 3] {
            let mut calls = 0;
            let mut fill = |b: &mut [u8]| {
                calls += 1;
                b.fill(0);
                calls <= fail_after
            };
            let mut rng = PlatformRng::new(&mut fill);
            let shares = deal(b"a secret of some length", 2, 3, &mut rng);
            assert!(rng.failed, "{fail_after}");
            assert!(shares.is_empty(), "{fail_after}: no share of a guessable polynomial");
        }
    }

    /// GF(2^8) multiplication with the reduction polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d),
    /// bit by bit: an implementation independent of blahaj's tables.
    fn gf_mul(mut a: u8, mut b: u8) -> u8 {
        let mut p = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                p ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= 0x1d;
            }
            b >>= 1;
        }
        p
    }

    fn gf_inv(a: u8) -> u8 {
        // a^254 = a^-1 in GF(2^8).
        (0..253).fold(a, |acc, _| gf_mul(acc, a))
    }

    #[test]
    fn shares_are_points_of_polynomials_over_gf256_mod_0x11d_as_format_md_says() {
        let secret = b"the layout in docs/FORMAT.md".to_vec();
        let mut fill = os_fill;
        let mut rng = PlatformRng::new(&mut fill);
        let shares = deal(&secret, 3, 5, &mut rng);
        for picked in [[0, 1, 2], [4, 2, 1], [0, 3, 4]] {
            let pts: Vec<&Share> = picked.iter().map(|&i| &shares[i]).collect();
            // Lagrange interpolation at x = 0, byte by byte: secret[j] = sum y_i * prod x_k / (x_k - x_i).
            let rebuilt: Vec<u8> = (0..secret.len())
                .map(|j| {
                    pts.iter().fold(0u8, |acc, si| {
                        let basis =
                            pts.iter().filter(|sk| sk.index != si.index).fold(1u8, |b, sk| {
                                gf_mul(b, gf_mul(sk.index, gf_inv(sk.index ^ si.index)))
                            });
                        acc ^ gf_mul(si.data[j], basis)
                    })
                })
                .collect();
            assert_eq!(rebuilt, secret, "{picked:?}");
        }
        assert_eq!(gf_mul(0x80, 2), 0x1d, "x^8 reduces by 0x11d");
        assert!(shares.iter().map(|s| s.index).eq(1..=5), "x = 1..=count");
        assert!(shares.iter().all(|s| s.data.len() == secret.len()), "one y byte per secret byte");
    }
}
