//! `x25519` against x25519-dalek's portable code, on pseudo-random scalars and points and on
//! the inputs where field arithmetic goes wrong: u = 0, 1, p - 1, p, p + 1, 2^255 - 1 (and
//! the same with the top bit set, which must be masked), the low-order points, scalars of
//! all zeros and all ones. Meaningful where `x25519` is the ARMv6 assembly (run under
//! `qemu-arm -cpu arm1176` by `scripts/meter --check`); elsewhere both sides are dalek.
//!
//! `VBZKEY_X25519_DIFF_COUNT` sets the number of random pairs (default 2,000; a run of
//! 1,000,000 is recorded in docs/PERFORMANCE.md), `VBZKEY_X25519_DIFF_SEED` the seed.

use vbzkey_x25519::{BACKEND, portable, x25519};

struct SplitMix(u64);

impl SplitMix {
    fn bytes(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for c in out.chunks_exact_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            c.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        out
    }
}

fn u_from_words(low: u32, fill: u8, top: u8) -> [u8; 32] {
    let mut u = [fill; 32];
    u[..4].copy_from_slice(&low.to_le_bytes());
    u[31] = top;
    u
}

#[test]
fn edge_inputs_agree_with_the_portable_code() {
    let p_minus = |d: u32| u_from_words(0xffff_ffed - d, 0xff, 0x7f);
    let mut us = vec![
        [0u8; 32],
        u_from_words(1, 0, 0),
        u_from_words(9, 0, 0),
        p_minus(1),
        p_minus(0),
        u_from_words(0xffff_ffee, 0xff, 0x7f), // p + 1
        u_from_words(0xffff_ffff, 0xff, 0x7f), // 2^255 - 1
        u_from_words(0xffff_ffff, 0xff, 0xff), // 2^256 - 1: the top bit is masked
        u_from_words(0, 0, 0x80),              // 2^255: masked to 0
    ];
    // The points of order 1, 2, 4 and 8 (as u-coordinates), from the RFC 7748 errata list.
    for hex in [
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ] {
        let v: Vec<u8> =
            (0..64).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        us.push(v.try_into().unwrap());
    }
    let mut rng = SplitMix(1);
    let scalars = [[0u8; 32], [0xff; 32], [1u8; 32], rng.bytes(), rng.bytes()];
    for k in &scalars {
        for u in &us {
            assert_eq!(x25519(k, u), portable(k, u), "k = {k:02x?}, u = {u:02x?}");
        }
    }
}

#[test]
fn random_inputs_agree_with_the_portable_code() {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let count = env("VBZKEY_X25519_DIFF_COUNT").unwrap_or(2000);
    let seed = env("VBZKEY_X25519_DIFF_SEED").unwrap_or(0x7662_7a6b_6579);
    let mut rng = SplitMix(seed);
    for i in 0..count {
        let (k, u) = (rng.bytes(), rng.bytes());
        assert_eq!(x25519(&k, &u), portable(&k, &u), "pair {i} of seed {seed}");
        // Chain some outputs in as the next point, as a DH peer's key would be.
        let out = x25519(&k, &u);
        assert_eq!(x25519(&u, &out), portable(&u, &out), "chained pair {i} of seed {seed}");
    }
    println!("differential ({BACKEND} vs x25519-dalek): {} pairs from seed {seed}: ok", 2 * count);
}
