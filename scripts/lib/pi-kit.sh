# Sourced by scripts/release-pi and tests/usb-vm/run.sh: the Pi kit tarball, the same layout
# whatever CPU the firmware binary is for (the USB VM test packs an x86-64 one and installs it
# with the guide's own commands).
#
#   pi_kit_pack ROOT BIN NAME OUTDIR    OUTDIR/NAME.tar.gz, unpacking to NAME/

# shellcheck source=usb-id.sh
. "$(dirname "${BASH_SOURCE[0]}")/usb-id.sh"

pi_kit_pack() {
  local root=$1 bin=$2 name=$3 out=$4
  local stage
  stage=$(mktemp -d)
  mkdir -p "$stage/$name" "$out"
  cp "$bin" "$stage/$name/vbzkey-firmware"
  cp "$root"/hardware/pi/{vbzkey-gadget.sh,vbzkey-otp.service,vbzkey-gadget.service,vbzkey-firmware.service,usb-id.conf,INSTALL.md} \
     "$stage/$name/"
  usb_id_udev_rule "$root" "$stage/$name/70-vbzkey.rules"
  # Integrity of the unpacked files on the Pi; authenticity is the signed SHA256SUMS published
  # beside the tarball (scripts/release-sign), never a file inside it.
  (cd "$stage/$name" && sha256sum -- * > SHA256SUMS)
  tar -C "$stage" --owner=0 --group=0 --sort=name -czf "$out/$name.tar.gz" "$name"
  rm -rf "$stage"
}
