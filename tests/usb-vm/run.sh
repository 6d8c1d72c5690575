#!/usr/bin/env bash
# Real USB, no hardware, and the install guide walked through: one QEMU VM running Debian 12
# with systemd, whose kernel is both the USB gadget (configfs + FunctionFS on dummy_hcd's
# device side) and the USB host (dummy_hcd's host side, libusb).
#
# In the VM, walk.sh runs the command blocks of hardware/pi/INSTALL.md as written (those
# marked `<!-- walk: pi -->` as the Pi's admin user, `<!-- walk: workstation -->` as a staff
# user): the Pi kit installed from its tarball with the project's units (the firmware runs
# as user vbzkey under vbzkey-firmware.service's sandbox, FunctionFS mounted uid=/gid=, the UDC
# file chowned), the OTP secret programmed, the workstation's .deb packages installed (their
# postinst applies the udev rule to the already-plugged dongle), the dongle initialised. Then
# VM checks (unit settings in force, access by group, restart policy, "device secret
# missing") and usb-vm-probe (Hello, the Microsoft OS descriptors through libusb, a malformed
# frame, the bridge over HTTP, unplug/replug). The VM prints `VBZKEY-WALK-RESULT {json}` and
# `VBZKEY-USB-RESULT {json}`; this script asserts both.
#
#   tests/usb-vm/run.sh      (root on Debian 12; installs qemu-system-x86 and debootstrap)
#
# Steps (each a function below, in order):
#   1 host_tools   2 kernel (cached)   3 binaries   4 release (tarball, .debs, signed sums)
#   5 vm_root (Debian root, cached; modules; the VM's stand-ins for a Pi)   6 boot   7 check
#
# Downloads (Debian's amd64 kernel; a debootstrap'd Debian root) are cached under
# ${VBZKEY_CACHE:-~/.cache/vbzkey}. See ../shared notes and docs/TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
# shellcheck source=../../scripts/lib/debian-root.sh
. scripts/lib/debian-root.sh
# shellcheck source=../../scripts/lib/pi-kit.sh
. scripts/lib/pi-kit.sh

cache=${VBZKEY_CACHE:-$HOME/.cache/vbzkey}/usb-vm
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '[usb-vm %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

PIN=123456
ADMIN_PIN=vm-admin-2468
# The firmware's presence input in the VM: Debian's kernels have no GPIO simulator (gpio-sim,
# gpio-mockup), so the button is the firmware's FIFO input (docs/DECISIONS.md).
BUTTON=/run/vbzkey-vm/button
# The VM's stand-in for the serial number a Pi reports (hex, as /proc/cpuinfo prints it).
SERIAL=00000000c0ffee01
target=x86_64-unknown-linux-gnu
bin=$root/target/$target/debug

host_tools() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v minisign >/dev/null || missing+=(minisign)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  command -v depmod >/dev/null || missing+=(kmod)
  command -v cpio >/dev/null || missing+=(cpio)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Debian's amd64 kernel (not -cloud: it has no USB), booted uncompressed (PVH): unpacking
# XZ under emulation costs seconds.
kernel() {
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
  [ -n "$kpkg" ] || { apt-get update -qq; kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1); }
  if [ ! -f "$cache/$kpkg.v2.ok" ]; then
    say "downloading $kpkg"
    rm -rf "$cache/dl" "$cache/kernel" && mkdir -p "$cache/dl" "$cache/kernel"
    (cd "$cache/dl" && apt-get download "$kpkg" 2>/dev/null)
    dpkg-deb -x "$cache"/dl/linux-image-*.deb "$cache/kernel"
    python3 - "$cache"/kernel/boot/vmlinuz-* "$cache/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
off = data.find(b"\xfd7zXZ\x00")
assert off >= 0, "no XZ stream in vmlinuz"
open(sys.argv[2], "wb").write(lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:]))
PY
    kver=$(ls "$cache/kernel/lib/modules")
    depmod -b "$cache/kernel" "$kver"
    rm -rf "$cache/dl"
    touch "$cache/$kpkg.v2.ok"
  fi
  kver=$(ls "$cache/kernel/lib/modules")
}

# Static x86-64 builds (libusb vendored; static while libudev-dev is not installed).
binaries() {
  say "building static binaries"
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --locked --target $target \
    -p vbzkey-firmware -p vbzkey-host-bridge -p vbzkey-provisioning -p vbzkey-cli -p vbzkey-e2e --bins
  local b
  for b in vbzkey-firmware vbzkey-bridge vbzkey-admin vbzkey usb-vm-probe; do
    if readelf -d "$bin/$b" | grep -q NEEDED; then echo "usb-vm: $b is not static" >&2; exit 1; fi
  done
}

# What an admin downloads: the Pi kit (the same layout as the ARMv6 release, with this
# machine's firmware binary), the .deb packages, SHA256SUMS signed with a throwaway key.
release() {
  say "packing the release: Pi kit, .deb packages, signed SHA256SUMS"
  local version
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  dl=$work/downloads
  mkdir -p "$dl"
  pi_kit_pack "$root" "$bin/vbzkey-firmware" "vbzkey-pi-$version-x86_64-vmtest" "$dl"
  scripts/package-deb --bin-dir "$bin" --out "$dl" >/dev/null
  scripts/release-sign "$dl" --check >/dev/null
  mv "$dl/THROWAWAY-TEST-KEY.pub" "$work/vbzkey-release.pub"
}

# The guide's blocks, in order, as files NN-ROLE.sh.
guide_blocks() {
  mkdir -p "$1"
  python3 - "$root/hardware/pi/INSTALL.md" "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"<!-- walk: ([a-z-]+) -->\s*```sh\n(.*?)```", text, re.S)
assert blocks, "no walk blocks in INSTALL.md"
for i, (role, body) in enumerate(blocks):
    open(f"{sys.argv[2]}/{i:02d}-{role}.sh", "w").write(body)
print(len(blocks), "blocks:", " ".join(r for r, _ in blocks))
PY
}

# The modules the VM needs, with their dependencies (from the kernel package's modules.dep).
vm_modules() {
  local r=$1 want=(dummy_hcd libcomposite usb_f_fs configfs virtio_pci virtio_blk ext4 crc32c_generic)
  local mdir=$cache/kernel/lib/modules/$kver
  local files
  files=$(for m in "${want[@]}"; do
    awk -v m="$m" -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n);
                          if (n == m) { print $1; print $2 } }' "$mdir/modules.dep" | tr ' ' '\n'
  done | sed '/^$/d' | sort -u)
  local f
  for f in $files; do install -D -m 0644 "$mdir/$f" "$r/lib/modules/$kver/$f"; done
  cp "$mdir"/modules.{order,builtin,builtin.modinfo} "$r/lib/modules/$kver/"
  depmod -b "$r" "$kver"
}

vm_root() {
  say "making the VM's Debian root"
  r=$work/root
  debian_root_unpack "$r"
  vm_modules "$r"
  # --- the VM's stand-ins for a Raspberry Pi (INSTALL.md, "What only a real Pi shows") ---
  # dummy_hcd for dwc2, loaded at boot as cmdline.txt's modules-load= does on the Pi.
  printf '%s\n' dummy_hcd libcomposite usb_f_fs > "$r/etc/modules-load.d/vbzkey-vm.conf"
  # vcgencmd / vcmailbox with "fuses" in a file that only gains bits.
  install -D -m 0755 firmware/tests/fake-vc/vcgencmd "$r/usr/local/lib/fake-vc/vcgencmd"
  install -D -m 0755 firmware/tests/fake-vc/vcmailbox "$r/usr/local/lib/fake-vc/vcmailbox"
  mkdir -p "$r/var/lib/fake-otp"
  printf '0x00000000\n%.0s' 1 2 3 4 5 6 7 8 > "$r/var/lib/fake-otp/fuses"
  local tool
  for tool in vcgencmd vcmailbox; do
    cat > "$r/usr/local/bin/$tool" <<EOF
#!/bin/sh
# VM stand-in: /var/lib/fake-otp/fail makes it fail like a board whose mailbox is unreachable.
[ ! -e /var/lib/fake-otp/fail ] || export VBZKEY_FAKE_OTP_FAIL=1
VBZKEY_FAKE_OTP=/var/lib/fake-otp/fuses exec /usr/local/lib/fake-vc/$tool "\$@"
EOF
    chmod 0755 "$r/usr/local/bin/$tool"
  done
  # /var/lib/vbzkey on a disk of its own (ext4 on virtio): the root here is RAM, which the
  # firmware refuses for its state, as it should (the guide's "read-write partition").
  echo "/dev/vda /var/lib/vbzkey ext4 defaults 0 2" >> "$r/etc/fstab"
  truncate -s 64M "$work/state.img"
  mkfs.ext4 -q -F "$work/state.img"
  echo vbzkey-vm > "$r/etc/hostname"
  echo "127.0.1.1 vbzkey-vm" >> "$r/etc/hosts"
  # The Pi's serial number as a `Serial` line of /proc/cpuinfo (where the firmware looks on a
  # Pi without a device tree): /init binds it over /proc/cpuinfo before systemd starts, and
  # as the firmware's sandbox mounts /proc afresh, a drop-in binds it there too (the unit's
  # own settings unchanged).
  cat > "$r/init" <<EOF
#!/bin/sh
mount -t proc proc /proc
{ cat /proc/cpuinfo; printf 'Serial\t\t: %s\n' "$SERIAL"; } > /cpuinfo-pi
mount --bind /cpuinfo-pi /proc/cpuinfo
exec /sbin/init
EOF
  chmod 0755 "$r/init"
  mkdir -p "$r/etc/systemd/system/vbzkey-firmware.service.d"
  printf '[Service]\nBindReadOnlyPaths=/cpuinfo-pi:/proc/cpuinfo\n' \
    > "$r/etc/systemd/system/vbzkey-firmware.service.d/vm-serial.conf"
  # The button: the unit's own ExecStart (as the guide installed it) plus the presence FIFO,
  # which a root step makes for the firmware's user alone (whoever can write it can press),
  # and a 10 s wait for a press instead of 30. Named to sort first, so a later drop-in's
  # ExecStart (the walk's broken-configuration check) still replaces this one.
  local exec_start
  exec_start=$(python3 - hardware/pi/vbzkey-firmware.service <<'PY'
import re, sys
unit = open(sys.argv[1]).read().replace("\\\n", " ")
print(" ".join(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()))
PY
)
  cat > "$r/etc/systemd/system/vbzkey-firmware.service.d/00-vm-button.conf" <<EOF
[Service]
ExecStartPre=+/bin/sh -c 'install -d -m 0755 $(dirname "$BUTTON") && { test -p $BUTTON || mkfifo -m 0600 $BUTTON; } && chown vbzkey:vbzkey $BUTTON'
ExecStart=
ExecStart=$exec_start --presence-fifo $BUTTON --presence-timeout-secs 10
EOF
  ln -sf /dev/null "$r/etc/systemd/system/serial-getty@ttyS0.service"
  ln -sf /dev/null "$r/etc/systemd/system/getty@tty1.service"
  # The walk: the guide's blocks, the downloads, the probe, and the unit that runs them.
  local w=$r/opt/vbzkey-walk
  mkdir -p "$w"
  guide_blocks "$w/blocks"
  cp -r "$work/downloads" "$w/downloads"
  cp "$work/vbzkey-release.pub" "$w/downloads/"
  cp "$bin/usb-vm-probe" "$r/usr/local/bin/"
  install -m 0755 tests/usb-vm/walk.sh "$w/walk.sh"
  printf 'PIN=%s\nADMIN_PIN=%s\nSERIAL=%s\nBUTTON=%s\n' "$PIN" "$ADMIN_PIN" "$SERIAL" "$BUTTON" > "$w/env"
  cat > "$r/etc/systemd/system/vbzkey-vm-walk.service" <<'EOF'
[Unit]
Description=vbzkey USB VM test: walk the install guide, then probe
After=basic.target local-fs.target systemd-udev-trigger.service systemd-modules-load.service

[Service]
Type=oneshot
ExecStart=/opt/vbzkey-walk/walk.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=1200
EOF
  ln -sf /etc/systemd/system/vbzkey-vm-walk.service "$r/etc/systemd/system/multi-user.target.wants/"
  (cd "$r" && find . | cpio -o -H newc --quiet | gzip -1 > "$work/initramfs.cpio.gz")
  say "initramfs: $(du -h "$work/initramfs.cpio.gz" | cut -f1)"
}

# KVM here is a paravirtual variant that hangs stock kernels: TCG, always bounded.
boot() {
  say "booting the VM (TCG)"
  local start
  start=$(date +%s)
  timeout 1500 qemu-system-x86_64 -accel tcg -m 1536 -smp 1 -kernel "$cache/vmlinux" \
    -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet systemd.show_status=0 rootfstype=tmpfs" \
    -drive "file=$work/state.img,if=virtio,format=raw" \
    -nographic -no-reboot -nic none -nodefaults -serial stdio -display none > "$work/console.log" 2>&1 || true
  say "VM done in $(( $(date +%s) - start )) s"
}

check() {
  local walk usb
  walk=$(grep -a -o 'VBZKEY-WALK-RESULT {.*}' "$work/console.log" | head -1 || true)
  usb=$(grep -a -o 'VBZKEY-USB-RESULT {.*}' "$work/console.log" | head -1 || true)
  echo "${walk:-VBZKEY-WALK-RESULT (none)}"
  echo "${usb:-VBZKEY-USB-RESULT (none)}"
  if ! python3 - "$walk" "$usb" <<'PY'
import json, sys
def parse(line):
    try:
        return json.loads(line.split(" ", 1)[1])
    except Exception:
        return {}
walk, usb = parse(sys.argv[1]), parse(sys.argv[2])
sys.exit(0 if walk.get("ok") is True and usb.get("ok") is True else 1)
PY
  then
    echo "usb-vm: FAILED; console tail:" >&2
    tail -n 80 "$work/console.log" >&2
    exit 1
  fi
  say "ok: the guide walked; the firmware as vbzkey under its units; a backup refused without the button and made with it; WinUSB descriptors; real USB with unplug/replug"
}

host_tools
kernel
binaries
release
vm_root
boot
check
