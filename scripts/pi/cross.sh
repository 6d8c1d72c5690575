# Cross-building for the Pi boards; sourced by scripts/release-pi and scripts/meter.
#
#   cross_toolchain                  install what the cross builds need (as root, once)
#   cross_build TARGET CARGO-ARGS..  release build for TARGET into target/pi/TARGET/release
#
# Debian's rustc-web, cargo-web and rust-web-src give a toolchain that can rebuild std for a
# target rustup cannot fetch here (build-std); zig, through cargo-zigbuild (PyPI, in a venv
# under ${VBZKEY_CACHE:-~/.cache/vbzkey}), links against a musl built for the exact CPU.
# qemu-user runs the results (the Pi Zero's ARM1176 and the Zero 2 W's Cortex-A53).

cross_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cross_venv=${VBZKEY_CACHE:-$HOME/.cache/vbzkey}/zig-venv

cross_toolchain() {
  if ! [ -x /usr/bin/rustc ] || ! [ -d /usr/lib/rustlib/src/rust/library ] \
    || ! command -v qemu-arm >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    echo "[cross] installing rustc-web, cargo-web, rust-web-src, qemu-user"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      rustc-web cargo-web rust-web-src qemu-user >/dev/null
  fi
  if ! [ -x "$cross_venv/bin/cargo-zigbuild" ]; then
    echo "[cross] installing zig and cargo-zigbuild (PyPI) into $cross_venv"
    python3 -m venv "$cross_venv"
    "$cross_venv/bin/pip" install -q ziglang cargo-zigbuild
  fi
}

# cross_cargo TARGET-DIR SUBCOMMAND TARGET ARGS..: cargo-zigbuild with Debian's toolchain
# first on PATH; RUSTC_BOOTSTRAP lets its stable cargo use build-std.
cross_cargo() {
  local dir=$1 sub=$2 target=$3
  shift 3
  (cd "$cross_root" && PATH="$cross_venv/bin:/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_DIR="$dir" cargo-zigbuild "$sub" --quiet --locked --release --target "$target" \
    --config scripts/pi/cargo-config.toml "$@")
}

# CROSS_TARGET_DIR overrides the target directory (builds with other flags keep their own).
cross_build() {
  local target=$1
  shift
  cross_cargo "${CROSS_TARGET_DIR:-$cross_root/target/pi}" zigbuild "$target" "$@"
}

# The test harness needs `test` rebuilt too, and unwinding: a std of its own, in a target
# directory of its own (two std builds in one directory clash). The runner (qemu) comes from
# cargo-config.toml.
cross_test() {
  local target=$1
  shift
  cross_cargo "$cross_root/target/pi-test" test "$target" --config 'profile.release.panic="unwind"' \
    -Zbuild-std=std,panic_unwind,test "$@"
}
