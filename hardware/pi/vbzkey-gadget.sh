#!/bin/sh
# Make (or remove) the vbzkey USB gadget with configfs: one configuration, one FunctionFS
# function "vbzkey" (vendor-specific interface, bulk IN + bulk OUT, described by the firmware
# itself when it starts). Binding the gadget to the USB controller is left to the firmware,
# because the kernel refuses to bind before the FunctionFS descriptors are written.
#
#   vbzkey-gadget.sh up     create the gadget and mount FunctionFS
#   vbzkey-gadget.sh down   unbind, unmount and remove it
#
# Environment (defaults in brackets):
#   VBZKEY_VID [0x1209]  VBZKEY_PID [0x0001]   pid.codes test VID:PID; use your own for a fleet
#   VBZKEY_SERIAL        [the Pi's serial number]
#   VBZKEY_FFS_DIR       [/dev/ffs-vbzkey]      where FunctionFS is mounted
#   VBZKEY_USER          [vbzkey]               who may open the endpoints and bind the UDC
#   CONFIGFS             [/sys/kernel/config]
# POSIX sh and busybox compatible (it also runs in the project's USB test VM).
set -eu

VID=${VBZKEY_VID:-0x1209}
PID=${VBZKEY_PID:-0x0001}
FFS=${VBZKEY_FFS_DIR:-/dev/ffs-vbzkey}
USER_NAME=${VBZKEY_USER:-vbzkey}
CONFIGFS=${CONFIGFS:-/sys/kernel/config}
G="$CONFIGFS/usb_gadget/vbzkey"

pi_serial() {
    if [ -r /proc/device-tree/serial-number ]; then
        tr -d '\000' < /proc/device-tree/serial-number
    else
        sed -n 's/^Serial[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo
    fi
}

up() {
    modprobe libcomposite 2>/dev/null || true
    grep -q " $CONFIGFS configfs " /proc/mounts || mount -t configfs none "$CONFIGFS"
    SERIAL=${VBZKEY_SERIAL:-$(pi_serial)}
    [ -n "$SERIAL" ] || { echo "vbzkey-gadget: no serial number found; set VBZKEY_SERIAL" >&2; exit 1; }

    mkdir -p "$G"
    echo "$VID" > "$G/idVendor"
    echo "$PID" > "$G/idProduct"
    echo 0x0200 > "$G/bcdUSB"
    echo 0x0100 > "$G/bcdDevice"
    mkdir -p "$G/strings/0x409"
    echo "$SERIAL" > "$G/strings/0x409/serialnumber"
    echo "vbzkey" > "$G/strings/0x409/manufacturer"
    echo "vbzkey hardware key" > "$G/strings/0x409/product"
    mkdir -p "$G/configs/c.1/strings/0x409"
    echo "vbzkey" > "$G/configs/c.1/strings/0x409/configuration"
    echo 100 > "$G/configs/c.1/MaxPower"
    mkdir -p "$G/functions/ffs.vbzkey"
    [ -e "$G/configs/c.1/ffs.vbzkey" ] || ln -s "$G/functions/ffs.vbzkey" "$G/configs/c.1/"

    mkdir -p "$FFS"
    if ! grep -q " $FFS functionfs " /proc/mounts; then
        # The mount source must equal the function's name after "ffs.".
        if id "$USER_NAME" >/dev/null 2>&1; then
            mount -t functionfs -o "uid=$(id -u "$USER_NAME"),gid=$(id -g "$USER_NAME")" vbzkey "$FFS"
            chown "$USER_NAME" "$G/UDC"
        else
            mount -t functionfs vbzkey "$FFS"
        fi
    fi
}

down() {
    [ -d "$G" ] || return 0
    [ -z "$(cat "$G/UDC" 2>/dev/null)" ] || echo "" > "$G/UDC"
    ! grep -q " $FFS functionfs " /proc/mounts || umount "$FFS"
    rm -f "$G/configs/c.1/ffs.vbzkey"
    rmdir "$G/configs/c.1/strings/0x409" "$G/configs/c.1" "$G/functions/ffs.vbzkey" "$G/strings/0x409" "$G"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
