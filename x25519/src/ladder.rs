//! The X25519 function of RFC 7748 §5 on the ARMv6 field arithmetic of [`super::arm`]: the
//! Montgomery ladder, with the RFC's formulas in the RFC's order, then one inversion by
//! Fermat's little theorem. Safe code; constant time because every step runs for every
//! scalar (255 ladder steps, a fixed addition chain) and the scalar's bits only ever feed
//! the swap mask.

use zeroize::Zeroize;

use crate::arm::{self, Fe, LadderState};

impl Fe {
    const ONE: Fe = Fe([1, 0, 0, 0, 0, 0, 0, 0]);

    /// Little-endian bytes, the top bit masked off (RFC 7748 §5: "implementations MUST
    /// mask the most significant bit"). Values from p to 2^255 - 1 are accepted as they are:
    /// the arithmetic works on any value below 2^256.
    pub(crate) fn from_bytes(b: &[u8; 32]) -> Fe {
        let mut w = [0u32; 8];
        for (w, c) in w.iter_mut().zip(b.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        w[7] &= 0x7fff_ffff;
        Fe(w)
    }

    /// The canonical encoding: the value reduced below p, little-endian.
    pub(crate) fn to_bytes(&self) -> [u8; 32] {
        // Fold bit 255 back in as 19 (2^255 ≡ 19): then v < 2^255 + 19.
        let mut w = self.0;
        let top = w[7] >> 31;
        w[7] &= 0x7fff_ffff;
        add_small(&mut w, 19 * top);
        // Now v < 2^255 + 19, so v ≥ p exactly when v + 19 reaches 2^255; then v - p is
        // (v + 19) without bit 255. Chosen by a mask, not a branch.
        let mut t = w;
        add_small(&mut t, 19);
        let mask = 0u32.wrapping_sub(t[7] >> 31);
        t[7] &= 0x7fff_ffff;
        let mut out = [0u8; 32];
        for (i, c) in out.chunks_exact_mut(4).enumerate() {
            let v = (t[i] & mask) | (w[i] & !mask);
            c.copy_from_slice(&v.to_le_bytes());
        }
        w.zeroize();
        t.zeroize();
        out
    }
}

/// `w += x` for a small `x`, carrying through every word (no early exit).
fn add_small(w: &mut [u32; 8], x: u32) {
    let mut carry = u64::from(x);
    for word in w.iter_mut() {
        carry += u64::from(*word);
        *word = carry as u32;
        carry >>= 32;
    }
}

fn sqr_n(out: &mut Fe, a: &Fe, n: u32) {
    let mut t = Fe::default();
    sqr(out, a);
    for _ in 1..n {
        t.clone_from(out);
        sqr(out, &t);
    }
}

fn sqr(out: &mut Fe, a: &Fe) {
    arm::sqr(out, a);
}

/// `z^(p-2) = 1/z` (0 for 0), by the usual chain of 254 squarings and 11 multiplications.
fn invert(z: &Fe) -> Fe {
    let (mut t0, mut t1, mut t2, mut t3) =
        (Fe::default(), Fe::default(), Fe::default(), Fe::default());
    let mut s = Fe::default();
    sqr(&mut t0, z); // 2
    sqr_n(&mut s, &t0, 2); // 8
    arm::mul(&mut t1, z, &s); // 9
    arm::mul(&mut s, &t0, &t1); // 11
    t0 = s;
    sqr(&mut s, &t0); // 22
    arm::mul(&mut t2, &t1, &s); // 2^5 - 1
    sqr_n(&mut s, &t2, 5);
    arm::mul(&mut t1, &s, &t2); // 2^10 - 1
    sqr_n(&mut s, &t1, 10);
    arm::mul(&mut t2, &s, &t1); // 2^20 - 1
    sqr_n(&mut s, &t2, 20);
    arm::mul(&mut t3, &s, &t2); // 2^40 - 1
    sqr_n(&mut s, &t3, 10);
    arm::mul(&mut t2, &s, &t1); // 2^50 - 1
    sqr_n(&mut s, &t2, 50);
    arm::mul(&mut t1, &s, &t2); // 2^100 - 1
    sqr_n(&mut s, &t1, 100);
    arm::mul(&mut t3, &s, &t1); // 2^200 - 1
    sqr_n(&mut s, &t3, 50);
    arm::mul(&mut t1, &s, &t2); // 2^250 - 1
    sqr_n(&mut s, &t1, 5); // 2^255 - 2^5
    let mut out = Fe::default();
    arm::mul(&mut out, &s, &t0); // 2^255 - 21 = p - 2
    for t in [&mut t0, &mut t1, &mut t2, &mut t3, &mut s] {
        t.0.zeroize();
    }
    out
}

/// RFC 7748 X25519(k, u): the scalar is clamped here, the top bit of u is masked.
pub(crate) fn x25519(scalar: &[u8; 32], u: &[u8; 32]) -> [u8; 32] {
    let mut k = *scalar;
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    let x1 = Fe::from_bytes(u);
    let mut st = LadderState([Fe::ONE, Fe::default(), x1, Fe::ONE]);
    let (mut a, mut aa, mut b, mut bb) =
        (Fe::default(), Fe::default(), Fe::default(), Fe::default());
    let (mut c, mut d, mut e, mut da, mut cb) =
        (Fe::default(), Fe::default(), Fe::default(), Fe::default(), Fe::default());
    let mut swap = 0u32;
    for t in (0..255).rev() {
        let bit = u32::from(k[t / 8] >> (t % 8)) & 1;
        swap ^= bit;
        arm::cswap(0u32.wrapping_sub(swap), &mut st);
        swap = bit;
        let [x2, z2, x3, z3] = &mut st.0;
        arm::add(&mut a, x2, z2); // A = x2 + z2
        sqr(&mut aa, &a); // AA = A²
        arm::sub(&mut b, x2, z2); // B = x2 - z2
        sqr(&mut bb, &b); // BB = B²
        arm::sub(&mut e, &aa, &bb); // E = AA - BB
        arm::add(&mut c, x3, z3); // C = x3 + z3
        arm::sub(&mut d, x3, z3); // D = x3 - z3
        arm::mul(&mut da, &d, &a); // DA = D·A
        arm::mul(&mut cb, &c, &b); // CB = C·B
        arm::add(&mut c, &da, &cb);
        sqr(x3, &c); // x3 = (DA + CB)²
        arm::sub(&mut d, &da, &cb);
        sqr(&mut c, &d);
        arm::mul(z3, &x1, &c); // z3 = x1·(DA - CB)²
        arm::mul(x2, &aa, &bb); // x2 = AA·BB
        // z2 = E·(AA + a24·E) with a24 = 121665, written as E·(BB + 121666·E): AA = BB + E.
        arm::mul121666(&mut c, &e);
        arm::add(&mut d, &bb, &c);
        arm::mul(z2, &e, &d);
    }
    arm::cswap(0u32.wrapping_sub(swap), &mut st);
    let [x2, z2, _, _] = &st.0;
    let mut zinv = invert(z2);
    let mut r = Fe::default();
    arm::mul(&mut r, x2, &zinv);
    let out = r.to_bytes();
    k.zeroize();
    for f in [
        &mut a, &mut aa, &mut b, &mut bb, &mut c, &mut d, &mut e, &mut da, &mut cb, &mut zinv,
        &mut r,
    ] {
        f.0.zeroize();
    }
    for f in st.0.iter_mut() {
        f.0.zeroize();
    }
    out
}
