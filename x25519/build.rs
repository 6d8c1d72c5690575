//! Decides whether the ARMv6 assembly field arithmetic is built: on A32 code for ARMv6 or
//! later (the Pi Zero's `arm-unknown-linux-*eabihf`, and `armv6`/`armv7` targets), where
//! `UMAAL` exists. Thumb targets and ARMv4T/v5TE get the portable code. The decision is made
//! from the target name because `target_feature = "v6"` is only visible to nightly `cfg`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vbzkey_x25519_armv6)");
    println!("cargo::rerun-if-env-changed=TARGET");
    println!("cargo::rerun-if-env-changed=VBZKEY_X25519_PORTABLE");
    let target = std::env::var("TARGET").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let a32_v6_plus = arch == "arm"
        && (target.starts_with("arm-")
            || target.starts_with("armv6")
            || target.starts_with("armv7"))
        && !features.split(',').any(|f| f == "thumb-mode");
    // VBZKEY_X25519_PORTABLE=1 builds the portable code even there (for comparisons).
    if a32_v6_plus && std::env::var_os("VBZKEY_X25519_PORTABLE").is_none() {
        println!("cargo::rustc-cfg=vbzkey_x25519_armv6");
    }
}
