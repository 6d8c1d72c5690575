#!/usr/bin/env bash
# Real USB, no hardware: one QEMU VM whose kernel is both the USB gadget (configfs +
# FunctionFS on dummy_hcd's device side) and the USB host (dummy_hcd's host side, libusb).
# Inside it: the project's gadget script, the real firmware serving FunctionFS, and the real
# bridge talking to it through libusb (driven by usb-vm-probe). The VM prints one line,
# `VBZKEY-USB-RESULT {json}`; this script asserts it.
#
#   tests/usb-vm/run.sh          (root on Debian 12; installs qemu-system-x86 if missing)
#
# Downloads (Debian's amd64 kernel and busybox-static) are cached in
# ${VBZKEY_CACHE:-~/.cache/vbzkey}/usb-vm. See ../shared notes and docs/TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

cache=${VBZKEY_CACHE:-$HOME/.cache/vbzkey}/usb-vm
mkdir -p "$cache"
work=$(mktemp -d)
fw_pid=""
cleanup() {
  [ -z "$fw_pid" ] || kill "$fw_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '[usb-vm %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if ! command -v qemu-system-x86_64 >/dev/null; then
  say "installing qemu-system-x86"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi

# 1. Debian's amd64 kernel (not -cloud: it has no USB) and busybox-static, cached.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
[ -n "$kpkg" ] || { apt-get update -qq; kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1); }
if [ ! -f "$cache/$kpkg.ok" ]; then
  say "downloading $kpkg and busybox-static"
  rm -rf "$cache/dl" && mkdir -p "$cache/dl"
  (cd "$cache/dl" && apt-get download "$kpkg" busybox-static 2>/dev/null)
  rm -rf "$cache/kernel" "$cache/busybox" && mkdir -p "$cache/kernel" "$cache/busybox"
  dpkg-deb -x "$cache"/dl/linux-image-*.deb "$cache/kernel"
  dpkg-deb -x "$cache"/dl/busybox-static_*.deb "$cache/busybox"
  # Boot the uncompressed kernel directly (PVH): unpacking XZ under emulation costs seconds.
  python3 - "$cache"/kernel/boot/vmlinuz-* "$cache/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
off = data.find(b"\xfd7zXZ\x00")
assert off >= 0, "no XZ stream in vmlinuz"
d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
open(sys.argv[2], "wb").write(d.decompress(data[off:]))
PY
  rm -rf "$cache/dl"
  touch "$cache/$kpkg.ok"
fi
kver=$(ls "$cache/kernel/lib/modules")
mods=$cache/kernel/lib/modules/$kver/kernel

# 2. Static x86_64 builds of the firmware, the bridge, the admin tool, the CLI and the probe.
#    (libusb is vendored; it stays static as long as libudev-dev is not installed.)
say "building static binaries"
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --locked --target $target \
  -p vbzkey-firmware -p vbzkey-host-bridge -p vbzkey-provisioning -p vbzkey-cli -p vbzkey-e2e --bins
bin=$root/target/$target/debug
for b in vbzkey-firmware vbzkey-bridge vbzkey-admin vbzkey usb-vm-probe; do
  if readelf -d "$bin/$b" | grep -q NEEDED; then echo "usb-vm: $b is not static" >&2; exit 1; fi
done

# 3. Outside the VM: initialise a dongle's state and seal records with the CLI to its key.
say "initialising the dongle state and sealing records outside the VM"
PIN=123456
serial=VMTEST0001
"$bin/vbzkey-firmware" serve --state-dir "$work/state" --transport "unix:$work/init.sock" \
  --identity "dangerous-fixed:$serial" --dangerous-weak-kdf 2>/dev/null &
fw_pid=$!
for _ in $(seq 1 100); do "$bin/vbzkey-admin" --dongle "unix:$work/init.sock" info >/dev/null 2>&1 && break; sleep 0.1; done
pub=$(printf '%s\n' "$PIN" | "$bin/vbzkey-admin" --dongle "unix:$work/init.sock" init --pin-file - 2>/dev/null)
kill "$fw_pid"; wait "$fw_pid" 2>/dev/null || true; fw_pid=""
echo "[" > "$work/records.json"
for i in $(seq 1 20); do
  ctx="cust_cards/$i/card_number"
  value="4111-1111-1111-$(printf %04d "$i")"
  rec=$(printf %s "$value" | "$bin/vbzkey" seal --to "$pub" --context "$ctx")
  sep=","; [ "$i" -eq 20 ] && sep=""
  printf '{"context":"%s","value":"%s","record":"%s"}%s\n' "$ctx" "$value" "$rec" "$sep" >> "$work/records.json"
done
echo "]" >> "$work/records.json"

# 4. The initramfs: busybox, modules, the gadget script from hardware/pi, binaries, state.
say "packing the initramfs"
r=$work/root
mkdir -p "$r"/{bin,dev,proc,sys,tmp,lib/modules,state}
cp "$cache/busybox/bin/busybox" "$r/bin/"
for m in drivers/usb/common/usb-common drivers/usb/core/usbcore drivers/usb/gadget/udc/udc-core \
         drivers/usb/gadget/udc/dummy_hcd fs/configfs/configfs drivers/usb/gadget/libcomposite \
         drivers/usb/gadget/function/usb_f_fs; do
  cp "$mods/$m.ko" "$r/lib/modules/"
done
cp "$root/hardware/pi/vbzkey-gadget.sh" "$r/bin/"
for b in vbzkey-firmware vbzkey-bridge usb-vm-probe; do cp "$bin/$b" "$r/bin/"; done
cp -a "$work/state/." "$r/state/"
cp "$work/records.json" "$r/"
mknod "$r/dev/console" c 5 1
cat > "$r/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
ip link set lo up
for m in usb-common usbcore udc-core dummy_hcd configfs libcomposite usb_f_fs; do
  insmod /lib/modules/\$m.ko || echo "insmod \$m failed"
done
mount -t configfs none /sys/kernel/config
VBZKEY_SERIAL=$serial sh /bin/vbzkey-gadget.sh up
RUST_LOG=info vbzkey-firmware serve --state-dir /state --transport ffs:/dev/ffs-vbzkey \\
  --udc auto --gadget /sys/kernel/config/usb_gadget/vbzkey \\
  --identity dangerous-fixed:$serial --dangerous-weak-kdf 2>/tmp/firmware.log &
usb-vm-probe --bridge /bin/vbzkey-bridge --records /records.json \\
  --udc-file /sys/kernel/config/usb_gadget/vbzkey/UDC --udc dummy_udc.0 --pin $PIN 2>/tmp/probe.log \\
  || echo 'VBZKEY-USB-RESULT {"ok":false,"error":"probe crashed"}'
echo "--- firmware log (tail)"; tail -n 15 /tmp/firmware.log
echo "--- probe log (tail)"; tail -n 15 /tmp/probe.log
poweroff -f
INIT
chmod +x "$r/init"
(cd "$r" && find . | "$cache/busybox/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initramfs.cpio.gz")

# 5. Boot. KVM here is a paravirtual variant that hangs stock kernels: TCG, always bounded.
say "booting the VM (TCG)"
start=$(date +%s)
timeout 600 qemu-system-x86_64 -accel tcg -m 768 -smp 1 -kernel "$cache/vmlinux" \
  -initrd "$work/initramfs.cpio.gz" -append "console=ttyS0 panic=-1 quiet" \
  -nographic -no-reboot -nic none -nodefaults -serial stdio -display none > "$work/console.log" 2>&1 || true
say "VM done in $(( $(date +%s) - start )) s"
# Firmware output may share the line (SeaBIOS prints no newline): take the JSON only.
result=$(grep -a -o 'VBZKEY-USB-RESULT {.*}' "$work/console.log" | head -1 || true)
if [ -z "$result" ]; then
  echo "usb-vm: no result line; console:" >&2
  tail -n 60 "$work/console.log" >&2
  exit 1
fi
echo "$result"
if ! python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1].split(" ",1)[1]).get("ok") is True else 1)' "$result"; then
  echo "usb-vm: FAILED; console tail:" >&2
  tail -n 40 "$work/console.log" >&2
  exit 1
fi
say "real USB: ok (FunctionFS gadget <-> libusb host, unplug/replug recovered)"
