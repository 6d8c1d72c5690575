//! Field arithmetic mod p = 2^255 - 19 in hand-written A32 assembly for ARMv6 (the Pi Zero's
//! ARM1176JZF-S), built on `UMAAL` (unsigned multiply accumulate accumulate: a 32×32-bit
//! product plus two 32-bit addends, which can never overflow 64 bits).
//!
//! **This is the only module of the crate with `unsafe` code**; audit it as a unit.
//!
//! Representation: an element is eight 32-bit words, least significant first, holding any
//! value below 2^256 (not necessarily reduced below p). Every function takes inputs in that
//! range and returns a result in that range congruent to the exact result mod p; only
//! [`super::ladder`]'s final encoding reduces to the canonical value. 2^256 ≡ 38 (mod p),
//! so a carry out of bit 255 is folded back in as +38 (and a borrow as -38).
//!
//! Constant time: no branch and no memory address in this file depends on a value. Every
//! function is straight-line code; loads and stores use fixed offsets from the pointers it
//! is given; carries become masks with `SBC` (never conditional execution); the conditional
//! swap is a mask-and-xor. `UMAAL`, `UMULL` and `MUL` take a fixed number of cycles on the
//! ARM1176 whatever their operands (no early termination, unlike older ARM multipliers).
//!
//! Memory safety: each function reads and writes exactly the 8 (or, for the swap, 32) words
//! behind the pointers it is given, and the safe wrappers below only pass pointers derived
//! from references to [`Fe`] (or the ladder state), which are valid, aligned and, for the
//! outputs, exclusive. The functions follow the AAPCS: r4–r11 and sp are restored, lr is
//! returned through.
#![allow(unsafe_code)]

use core::arch::global_asm;

/// A field element: eight little-endian 32-bit words, any value below 2^256.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(8))]
pub(crate) struct Fe(pub(crate) [u32; 8]);

/// The ladder's working state, `[x2, z2, x3, z3]`, contiguous so one call swaps (x2, z2)
/// with (x3, z3).
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
pub(crate) struct LadderState(pub(crate) [Fe; 4]);

mod asm {
    use super::{Fe, LadderState};

    unsafe extern "C" {
        pub(super) fn vbzkey_fe_mul(out: *mut Fe, a: *const Fe, b: *const Fe);
        pub(super) fn vbzkey_fe_sqr(out: *mut Fe, a: *const Fe);
        pub(super) fn vbzkey_fe_add(out: *mut Fe, a: *const Fe, b: *const Fe);
        pub(super) fn vbzkey_fe_sub(out: *mut Fe, a: *const Fe, b: *const Fe);
        pub(super) fn vbzkey_fe_mul121666(out: *mut Fe, a: *const Fe);
        pub(super) fn vbzkey_fe_cswap(mask: u32, state: *mut LadderState);
    }
}

/// `out = a · b`.
pub(crate) fn mul(out: &mut Fe, a: &Fe, b: &Fe) {
    // SAFETY: see the module comment: valid, aligned, non-overlapping with `out` (a `&mut`).
    unsafe { asm::vbzkey_fe_mul(out, a, b) }
}

/// `out = a²`.
pub(crate) fn sqr(out: &mut Fe, a: &Fe) {
    // SAFETY: as for `mul`.
    unsafe { asm::vbzkey_fe_sqr(out, a) }
}

/// `out = a + b`.
pub(crate) fn add(out: &mut Fe, a: &Fe, b: &Fe) {
    // SAFETY: as for `mul`.
    unsafe { asm::vbzkey_fe_add(out, a, b) }
}

/// `out = a - b`.
pub(crate) fn sub(out: &mut Fe, a: &Fe, b: &Fe) {
    // SAFETY: as for `mul`.
    unsafe { asm::vbzkey_fe_sub(out, a, b) }
}

/// `out = 121666 · a` (RFC 7748's a24 = 121665, plus one `a`: see the ladder).
pub(crate) fn mul121666(out: &mut Fe, a: &Fe) {
    // SAFETY: as for `mul`.
    unsafe { asm::vbzkey_fe_mul121666(out, a) }
}

/// Swap `(x2, z2)` with `(x3, z3)` when `mask` is all ones; leave them when it is zero.
/// Any other mask mixes them: callers pass `0u32.wrapping_sub(bit)` for a bit in {0, 1}.
pub(crate) fn cswap(mask: u32, state: &mut LadderState) {
    // SAFETY: `state` is 32 valid, aligned, exclusive words.
    unsafe { asm::vbzkey_fe_cswap(mask, state) }
}

// The functions. Register use is written beside each; `@` starts a comment.
global_asm!(
    ".text",
    ".arch armv6",
    ".arm",
    ".syntax unified",
    //
    // MULROW i, c0..c7, k: add a[i]·b[0..8] into the window of product words i..i+7 held in
    // c0..c7, carrying into k (zeroed here), then store the finished word i on the stack.
    // r1 = a, r2 = b (advanced and rewound here), r3 = a[i], r12/lr = two words of b.
    ".macro MULROW i, c0, c1, c2, c3, c4, c5, c6, c7, k",
    "    ldr r3, [r1, #(4*\\i)]",
    "    mov \\k, #0",
    "    ldm r2!, {{r12, lr}}",
    "    umaal \\c0, \\k, r3, r12",
    "    umaal \\c1, \\k, r3, lr",
    "    ldm r2!, {{r12, lr}}",
    "    umaal \\c2, \\k, r3, r12",
    "    umaal \\c3, \\k, r3, lr",
    "    ldm r2!, {{r12, lr}}",
    "    umaal \\c4, \\k, r3, r12",
    "    umaal \\c5, \\k, r3, lr",
    "    ldm r2!, {{r12, lr}}",
    "    umaal \\c6, \\k, r3, r12",
    "    umaal \\c7, \\k, r3, lr",
    "    sub r2, r2, #32",
    "    str \\c0, [sp, #(4*\\i)]",
    ".endm",
    //
    // vbzkey_fe_mul(r0 = out, r1 = a, r2 = b): schoolbook 8×8 words, one row of eight UMAALs
    // per word of a; the low half of the product goes to the stack, the high half stays in
    // registers; then low + 38·high, and the last carry folded in twice.
    ".p2align 2",
    ".globl vbzkey_fe_mul",
    ".hidden vbzkey_fe_mul",
    ".type vbzkey_fe_mul, %function",
    "vbzkey_fe_mul:",
    "    push {{r0, r4-r11, lr}}",
    "    sub sp, sp, #32",
    "    mov r4, #0",
    "    mov r5, #0",
    "    mov r6, #0",
    "    mov r7, #0",
    "    mov r8, #0",
    "    mov r9, #0",
    "    mov r10, #0",
    "    mov r11, #0",
    // The window rotates through r4..r11, r0: the register of the word just stored becomes
    // the next row's carry.
    "    MULROW 0, r4, r5, r6, r7, r8, r9, r10, r11, r0",
    "    MULROW 1, r5, r6, r7, r8, r9, r10, r11, r0, r4",
    "    MULROW 2, r6, r7, r8, r9, r10, r11, r0, r4, r5",
    "    MULROW 3, r7, r8, r9, r10, r11, r0, r4, r5, r6",
    "    MULROW 4, r8, r9, r10, r11, r0, r4, r5, r6, r7",
    "    MULROW 5, r9, r10, r11, r0, r4, r5, r6, r7, r8",
    "    MULROW 6, r10, r11, r0, r4, r5, r6, r7, r8, r9",
    "    MULROW 7, r11, r0, r4, r5, r6, r7, r8, r9, r10",
    // Product words 8..15 are in r0, r4..r10; words 0..7 on the stack.
    "    b vbzkey_fe_reduce",
    ".size vbzkey_fe_mul, .-vbzkey_fe_mul",
    //
    // vbzkey_fe_reduce: the tail shared by mul and sqr (jumped to, not called). In: product
    // words 0..7 at sp, 8..15 in r0, r4..r10, the output pointer at sp+32, then the saved
    // registers. Out: low + 38·high (< 39·2^256), its top word times 38 added back, and the
    // carry of that (at most one) added back as 38 again, which cannot carry.
    ".p2align 2",
    "vbzkey_fe_reduce:",
    "    ldm sp, {{r1, r2, r11, lr}}",
    "    mov r3, #38",
    "    mov r12, #0",
    "    umaal r1, r12, r0, r3",
    "    umaal r2, r12, r4, r3",
    "    umaal r11, r12, r5, r3",
    "    umaal lr, r12, r6, r3",
    "    ldr r0, [sp, #16]",
    "    ldr r4, [sp, #20]",
    "    ldr r5, [sp, #24]",
    "    ldr r6, [sp, #28]",
    "    umaal r0, r12, r7, r3",
    "    umaal r4, r12, r8, r3",
    "    umaal r5, r12, r9, r3",
    "    umaal r6, r12, r10, r3",
    "    mul r7, r12, r3",
    "    adds r1, r1, r7",
    "    adcs r2, r2, #0",
    "    adcs r11, r11, #0",
    "    adcs lr, lr, #0",
    "    adcs r0, r0, #0",
    "    adcs r4, r4, #0",
    "    adcs r5, r5, #0",
    "    adcs r6, r6, #0",
    "    sbc r7, r7, r7", // r7 = carry - 1: 0 after a carry, all ones without
    "    bic r7, r3, r7", // 38 after a carry, else 0
    "    add r1, r1, r7",
    "    ldr r7, [sp, #32]",
    "    str r1, [r7]",
    "    str r2, [r7, #4]",
    "    str r11, [r7, #8]",
    "    str lr, [r7, #12]",
    "    str r0, [r7, #16]",
    "    str r4, [r7, #20]",
    "    str r5, [r7, #24]",
    "    str r6, [r7, #28]",
    "    add sp, sp, #36",
    "    pop {{r4-r11, pc}}",
    ".size vbzkey_fe_reduce, .-vbzkey_fe_reduce",
    //
    // vbzkey_fe_sqr(r0 = out, r1 = a): the same schedule with b = a.
    ".p2align 2",
    ".globl vbzkey_fe_sqr",
    ".hidden vbzkey_fe_sqr",
    ".type vbzkey_fe_sqr, %function",
    "vbzkey_fe_sqr:",
    "    mov r2, r1",
    "    b vbzkey_fe_mul",
    ".size vbzkey_fe_sqr, .-vbzkey_fe_sqr",
    //
    // vbzkey_fe_add(r0 = out, r1 = a, r2 = b): a + b with ADDS/ADCS; the carry out of bit 255
    // (worth 2^256 ≡ 38) is added back as 38, twice (the second cannot carry).
    ".p2align 2",
    ".globl vbzkey_fe_add",
    ".hidden vbzkey_fe_add",
    ".type vbzkey_fe_add, %function",
    "vbzkey_fe_add:",
    "    push {{r4-r11, lr}}",
    "    ldm r1, {{r3-r10}}",
    "    ldm r2!, {{r1, r11, r12, lr}}",
    "    adds r3, r3, r1",
    "    adcs r4, r4, r11",
    "    adcs r5, r5, r12",
    "    adcs r6, r6, lr",
    "    ldm r2, {{r1, r11, r12, lr}}", // LDM leaves the carry flag alone
    "    adcs r7, r7, r1",
    "    adcs r8, r8, r11",
    "    adcs r9, r9, r12",
    "    adcs r10, r10, lr",
    "    mov r11, #38",
    "    sbc r1, r1, r1",
    "    bic r1, r11, r1",
    "    adds r3, r3, r1",
    "    adcs r4, r4, #0",
    "    adcs r5, r5, #0",
    "    adcs r6, r6, #0",
    "    adcs r7, r7, #0",
    "    adcs r8, r8, #0",
    "    adcs r9, r9, #0",
    "    adcs r10, r10, #0",
    "    sbc r1, r1, r1",
    "    bic r1, r11, r1",
    "    add r3, r3, r1",
    "    stm r0, {{r3-r10}}",
    "    pop {{r4-r11, pc}}",
    ".size vbzkey_fe_add, .-vbzkey_fe_add",
    //
    // vbzkey_fe_sub(r0 = out, r1 = a, r2 = b): a - b with SUBS/SBCS; a borrow out of bit 255
    // (the result is 2^256 too large, ≡ 38 too large) is taken back as 38, twice.
    ".p2align 2",
    ".globl vbzkey_fe_sub",
    ".hidden vbzkey_fe_sub",
    ".type vbzkey_fe_sub, %function",
    "vbzkey_fe_sub:",
    "    push {{r4-r11, lr}}",
    "    ldm r1, {{r3-r10}}",
    "    ldm r2!, {{r1, r11, r12, lr}}",
    "    subs r3, r3, r1",
    "    sbcs r4, r4, r11",
    "    sbcs r5, r5, r12",
    "    sbcs r6, r6, lr",
    "    ldm r2, {{r1, r11, r12, lr}}",
    "    sbcs r7, r7, r1",
    "    sbcs r8, r8, r11",
    "    sbcs r9, r9, r12",
    "    sbcs r10, r10, lr",
    "    mov r11, #38",
    "    sbc r1, r1, r1", // all ones after a borrow (carry flag clear), else 0
    "    and r1, r1, r11",
    "    subs r3, r3, r1",
    "    sbcs r4, r4, #0",
    "    sbcs r5, r5, #0",
    "    sbcs r6, r6, #0",
    "    sbcs r7, r7, #0",
    "    sbcs r8, r8, #0",
    "    sbcs r9, r9, #0",
    "    sbcs r10, r10, #0",
    "    sbc r1, r1, r1",
    "    and r1, r1, r11",
    "    sub r3, r3, r1",
    "    stm r0, {{r3-r10}}",
    "    pop {{r4-r11, pc}}",
    ".size vbzkey_fe_sub, .-vbzkey_fe_sub",
    //
    // vbzkey_fe_mul121666(r0 = out, r1 = a): each word as UMAAL(lo = a[j], hi = carry,
    // a[j], 121665), which is a[j]·121665 + a[j] + carry = a[j]·121666 + carry; then the top
    // word (< 121666) times 38 is added back, and a last carry as 38.
    ".p2align 2",
    ".globl vbzkey_fe_mul121666",
    ".hidden vbzkey_fe_mul121666",
    ".type vbzkey_fe_mul121666, %function",
    "vbzkey_fe_mul121666:",
    "    push {{r4-r11, lr}}",
    "    ldm r1, {{r3-r10}}",
    "    mov r12, #0x1d000", // 121665 = 0x1db41, built from three rotated immediates
    "    orr r12, r12, #0xb40",
    "    orr r12, r12, #0x1",
    "    mov r11, #0",
    "    umaal r3, r11, r3, r12",
    "    umaal r4, r11, r4, r12",
    "    umaal r5, r11, r5, r12",
    "    umaal r6, r11, r6, r12",
    "    umaal r7, r11, r7, r12",
    "    umaal r8, r11, r8, r12",
    "    umaal r9, r11, r9, r12",
    "    umaal r10, r11, r10, r12",
    "    mov r12, #38",
    "    mul r1, r11, r12",
    "    adds r3, r3, r1",
    "    adcs r4, r4, #0",
    "    adcs r5, r5, #0",
    "    adcs r6, r6, #0",
    "    adcs r7, r7, #0",
    "    adcs r8, r8, #0",
    "    adcs r9, r9, #0",
    "    adcs r10, r10, #0",
    "    sbc r1, r1, r1",
    "    bic r1, r12, r1",
    "    add r3, r3, r1",
    "    stm r0, {{r3-r10}}",
    "    pop {{r4-r11, pc}}",
    ".size vbzkey_fe_mul121666, .-vbzkey_fe_mul121666",
    //
    // vbzkey_fe_cswap(r0 = mask, r1 = state): words 0..15 and 16..31 exchanged where mask
    // is all ones, by t = mask & (x ^ y); x ^= t; y ^= t; four words at a time.
    ".p2align 2",
    ".globl vbzkey_fe_cswap",
    ".hidden vbzkey_fe_cswap",
    ".type vbzkey_fe_cswap, %function",
    "vbzkey_fe_cswap:",
    "    push {{r4-r11, lr}}",
    "    add r2, r1, #64",
    "    mov lr, #4",
    "1:",
    "    ldm r1, {{r3-r6}}",
    "    ldm r2, {{r7-r10}}",
    "    eor r11, r3, r7",
    "    and r11, r11, r0",
    "    eor r3, r3, r11",
    "    eor r7, r7, r11",
    "    eor r11, r4, r8",
    "    and r11, r11, r0",
    "    eor r4, r4, r11",
    "    eor r8, r8, r11",
    "    eor r11, r5, r9",
    "    and r11, r11, r0",
    "    eor r5, r5, r11",
    "    eor r9, r9, r11",
    "    eor r11, r6, r10",
    "    and r11, r11, r0",
    "    eor r6, r6, r11",
    "    eor r10, r10, r11",
    "    stm r1!, {{r3-r6}}",
    "    stm r2!, {{r7-r10}}",
    "    subs lr, lr, #1", // a loop over a public count: four blocks of four words
    "    bne 1b",
    "    pop {{r4-r11, pc}}",
    ".size vbzkey_fe_cswap, .-vbzkey_fe_cswap",
    ".purgem MULROW",
);

#[cfg(test)]
mod tests {
    //! Each function against a reference that shares nothing with it: values reduced mod p
    //! bit by bit (Horner's rule with a compare-and-subtract), products by plain schoolbook.
    //! The inputs are the values where carries and folds happen: 0, 1, p - 1, p, p + 1,
    //! 2^255 - 1, 2^256 - 1, 2^256 - 38, words of all ones, and pseudo-random ones.
    use super::*;

    const P: [u32; 8] = [
        0xffff_ffed,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0xffff_ffff,
        0x7fff_ffff,
    ];

    fn geq(a: &[u32; 8], b: &[u32; 8]) -> bool {
        for i in (0..8).rev() {
            if a[i] != b[i] {
                return a[i] > b[i];
            }
        }
        true
    }

    fn sub_p(a: &mut [u32; 8]) {
        let mut borrow = 0i64;
        for i in 0..8 {
            let v = i64::from(a[i]) - i64::from(P[i]) + borrow;
            a[i] = v as u32;
            borrow = v >> 32;
        }
    }

    /// `x mod p` for a little-endian number of any length, one bit at a time.
    fn reference_mod(x: &[u32]) -> [u32; 8] {
        let mut r = [0u32; 8];
        for i in (0..x.len() * 32).rev() {
            let bit = (x[i / 32] >> (i % 32)) & 1;
            // r = 2r + bit; r < p < 2^255, so 2r + 1 < 2^256 fits.
            let mut carry = bit;
            for w in r.iter_mut() {
                let v = (*w << 1) | carry;
                carry = *w >> 31;
                *w = v;
            }
            if geq(&r, &P) {
                sub_p(&mut r);
            }
        }
        r
    }

    fn reference_mul(a: &Fe, b: &Fe) -> [u32; 8] {
        let mut prod = [0u32; 16];
        for i in 0..8 {
            let mut carry = 0u64;
            for j in 0..8 {
                let v = u64::from(a.0[i]) * u64::from(b.0[j]) + u64::from(prod[i + j]) + carry;
                prod[i + j] = v as u32;
                carry = v >> 32;
            }
            prod[i + 8] = carry as u32;
        }
        reference_mod(&prod)
    }

    fn reference_add(a: &Fe, b: &Fe) -> [u32; 8] {
        let mut sum = [0u32; 9];
        let mut carry = 0u64;
        for i in 0..8 {
            let v = u64::from(a.0[i]) + u64::from(b.0[i]) + carry;
            sum[i] = v as u32;
            carry = v >> 32;
        }
        sum[8] = carry as u32;
        reference_mod(&sum)
    }

    /// (a - b) mod p as (a mod p) + (p - (b mod p)).
    fn reference_sub(a: &Fe, b: &Fe) -> [u32; 8] {
        let b = reference_mod(&b.0);
        let mut neg_b = P;
        let mut borrow = 0i64;
        for i in 0..8 {
            let v = i64::from(neg_b[i]) - i64::from(b[i]) + borrow;
            neg_b[i] = v as u32;
            borrow = v >> 32;
        }
        reference_add(a, &Fe(neg_b))
    }

    fn canonical(f: &Fe) -> [u32; 8] {
        reference_mod(&f.0)
    }

    fn samples() -> alloc_free::Samples {
        alloc_free::Samples::new()
    }

    /// Edge values and pseudo-random ones, without an allocator (the crate is `no_std`).
    mod alloc_free {
        use super::super::Fe;
        use super::P;

        pub(super) struct Samples {
            i: usize,
            state: u64,
        }

        const EDGES: usize = 14;

        impl Samples {
            pub(super) fn new() -> Self {
                Samples { i: 0, state: 0x9e37_79b9_7f4a_7c15 }
            }

            fn next_u32(&mut self) -> u32 {
                // splitmix64
                self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = self.state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u32
            }
        }

        impl Iterator for Samples {
            type Item = Fe;
            fn next(&mut self) -> Option<Fe> {
                let i = self.i;
                self.i += 1;
                let ones = [u32::MAX; 8];
                let mut p_plus = P;
                let f = match i {
                    0 => Fe([0; 8]),
                    1 => Fe([1, 0, 0, 0, 0, 0, 0, 0]),
                    2 => {
                        p_plus[0] -= 1;
                        Fe(p_plus)
                    }
                    3 => Fe(P),
                    4 => {
                        p_plus[0] += 1;
                        Fe(p_plus)
                    }
                    5 => Fe([
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        0x7fff_ffff,
                    ]),
                    6 => Fe(ones),
                    7 => Fe([
                        u32::MAX - 37,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                    ]),
                    8 => Fe([
                        u32::MAX - 38,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                        u32::MAX,
                    ]),
                    9 => Fe([37, 0, 0, 0, 0, 0, 0, 0]),
                    10 => Fe([38, 0, 0, 0, 0, 0, 0, 0]),
                    11 => Fe([0, 0, 0, 0, 0, 0, 0, 0x8000_0000]),
                    12 => Fe([18, 0, 0, 0, 0, 0, 0, 0x8000_0000]),
                    13 => Fe([0, u32::MAX, 0, u32::MAX, 0, u32::MAX, 0, u32::MAX]),
                    n if n < EDGES + 200 => {
                        let mut w = [0u32; 8];
                        for x in w.iter_mut() {
                            *x = self.next_u32();
                        }
                        // Some with high words forced to all ones, where carries run far.
                        if n % 3 == 0 {
                            w[4..].fill(u32::MAX);
                        }
                        Fe(w)
                    }
                    _ => return None,
                };
                Some(f)
            }
        }
    }

    #[test]
    fn mul_and_sqr_match_the_reference_on_edge_and_random_values() {
        for a in samples() {
            for b in samples().step_by(7) {
                let mut out = Fe::default();
                mul(&mut out, &a, &b);
                assert_eq!(canonical(&out), reference_mul(&a, &b), "{:08x?} · {:08x?}", a.0, b.0);
            }
            let mut out = Fe::default();
            sqr(&mut out, &a);
            assert_eq!(canonical(&out), reference_mul(&a, &a), "{:08x?}²", a.0);
        }
    }

    #[test]
    fn add_and_sub_match_the_reference_on_edge_and_random_values() {
        for a in samples() {
            for b in samples().step_by(3) {
                let mut out = Fe::default();
                add(&mut out, &a, &b);
                assert_eq!(canonical(&out), reference_add(&a, &b), "{:08x?} + {:08x?}", a.0, b.0);
                sub(&mut out, &a, &b);
                assert_eq!(canonical(&out), reference_sub(&a, &b), "{:08x?} - {:08x?}", a.0, b.0);
            }
        }
    }

    #[test]
    fn mul121666_matches_the_reference() {
        let k = Fe([121_666, 0, 0, 0, 0, 0, 0, 0]);
        for a in samples() {
            let mut out = Fe::default();
            mul121666(&mut out, &a);
            assert_eq!(canonical(&out), reference_mul(&a, &k), "121666 · {:08x?}", a.0);
        }
    }

    #[test]
    fn cswap_swaps_on_all_ones_and_keeps_on_zero() {
        let mut s = samples();
        let fe: [Fe; 4] = core::array::from_fn(|_| s.nth(20).unwrap());
        let mut st = LadderState(fe);
        cswap(0, &mut st);
        assert!(st.0 == fe);
        cswap(u32::MAX, &mut st);
        assert!(st.0 == [fe[2], fe[3], fe[0], fe[1]]);
    }

    #[test]
    fn encoding_reduces_every_value_below_2_256_to_its_canonical_form() {
        for a in samples() {
            let bytes = a.to_bytes();
            let want = reference_mod(&a.0);
            let mut got = [0u32; 8];
            for (g, c) in got.iter_mut().zip(bytes.chunks_exact(4)) {
                *g = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            assert_eq!(got, want, "{:08x?}", a.0);
        }
    }
}
