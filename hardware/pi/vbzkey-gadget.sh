#!/bin/sh
# Make (or remove) the vbzkey USB gadget with configfs: one configuration, one FunctionFS
# function "vbzkey" (vendor-specific interface, bulk IN + bulk OUT, described by the firmware
# itself when it starts). Binding the gadget to the USB controller is left to the firmware,
# because the kernel refuses to bind before the FunctionFS descriptors are written.
#
#   vbzkey-gadget.sh up     create the gadget and mount FunctionFS
#   vbzkey-gadget.sh down   unbind, unmount and remove it
#
# The USB identity (VID:PID) comes from one file, usb-id.conf, installed to /etc/vbzkey/.
# The gadget also carries Microsoft OS 1.0 descriptors (the firmware supplies the WinUSB
# compatible ID; this script turns `os_desc` on), so Windows binds WinUSB by itself.
#
# Environment (defaults in brackets):
#   VBZKEY_USB_ID        [/etc/vbzkey/usb-id.conf]  the VID:PID file
#   VBZKEY_SERIAL        [the Pi's serial number]
#   VBZKEY_FFS_DIR       [/dev/ffs-vbzkey]      where FunctionFS is mounted
#   VBZKEY_USER          [vbzkey]               who may open the endpoints and bind the UDC
#   CONFIGFS             [/sys/kernel/config]
# POSIX sh and busybox compatible (it also runs in the project's USB test VM).
set -eu

USB_ID=${VBZKEY_USB_ID:-/etc/vbzkey/usb-id.conf}
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

# Bus power: the Pi Zero W and Zero 2 W draw well over the 100 mA default; 500 mA is the USB 2.0
# maximum, so the host budgets its port for what the board can really take.
MAX_POWER_MA=500
# Any vendor request code works: the dongle defines no vendor requests of its own.
MS_OS_VENDOR_CODE=0xcd

usb_id() {
    [ -r "$USB_ID" ] || { echo "vbzkey-gadget: $USB_ID is missing: the dongle's USB identity (see INSTALL.md)" >&2; exit 1; }
    VID=$(sed -n 's/^VBZKEY_VID=\(0x[0-9a-fA-F]\{4\}\)$/\1/p' "$USB_ID")
    PID=$(sed -n 's/^VBZKEY_PID=\(0x[0-9a-fA-F]\{4\}\)$/\1/p' "$USB_ID")
    if [ -z "$VID" ] || [ -z "$PID" ]; then
        echo "vbzkey-gadget: $USB_ID must set VBZKEY_VID=0xNNNN and VBZKEY_PID=0xNNNN" >&2
        exit 1
    fi
    [ "$VID:$PID" != "0x1209:0x0001" ] ||
        echo "vbzkey-gadget: 1209:0001 is pid.codes' shared test PID (tests and demos only)" >&2
}

# The OTG controller (dwc2) can appear late on a slow first boot: wait for it rather than let
# the firmware fail and restart.
UDC_WAIT_SECS=60

wait_for_udc() {
    i=0
    while [ -z "$(ls /sys/class/udc 2>/dev/null)" ]; do
        if [ "$i" -ge "$UDC_WAIT_SECS" ]; then
            echo "vbzkey-gadget: no USB device controller after $UDC_WAIT_SECS s: is dtoverlay=dwc2 in config.txt and modules-load=dwc2 in cmdline.txt?" >&2
            exit 1
        fi
        sleep 1
        i=$((i + 1))
    done
}

up() {
    usb_id
    modprobe libcomposite 2>/dev/null || true
    wait_for_udc
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
    echo "$MAX_POWER_MA" > "$G/configs/c.1/MaxPower"
    mkdir -p "$G/functions/ffs.vbzkey"
    [ -e "$G/configs/c.1/ffs.vbzkey" ] || ln -s "$G/functions/ffs.vbzkey" "$G/configs/c.1/"
    # Microsoft OS descriptors: answer Windows' "MSFT100" string query and its vendor requests
    # for this configuration (the function's own OS descriptors name WinUSB).
    echo 1 > "$G/os_desc/use"
    echo "$MS_OS_VENDOR_CODE" > "$G/os_desc/b_vendor_code"
    echo MSFT100 > "$G/os_desc/qw_sign"
    [ -e "$G/os_desc/c.1" ] || ln -s "$G/configs/c.1" "$G/os_desc/"

    mkdir -p "$FFS"
    if ! grep -q " $FFS functionfs " /proc/mounts; then
        # The mount source must equal the function's name after "ffs.". The endpoints and the
        # UDC file belong to the firmware's user, so it needs no root.
        id "$USER_NAME" >/dev/null 2>&1 ||
            { echo "vbzkey-gadget: no user $USER_NAME (create it first, see INSTALL.md)" >&2; exit 1; }
        mount -t functionfs -o "uid=$(id -u "$USER_NAME"),gid=$(id -g "$USER_NAME")" vbzkey "$FFS"
    fi
    chown "$USER_NAME" "$G/UDC"
}

down() {
    [ -d "$G" ] || return 0
    [ -z "$(cat "$G/UDC" 2>/dev/null)" ] || echo "" > "$G/UDC"
    ! grep -q " $FFS functionfs " /proc/mounts || umount "$FFS"
    rm -f "$G/os_desc/c.1" "$G/configs/c.1/ffs.vbzkey"
    rmdir "$G/configs/c.1/strings/0x409" "$G/configs/c.1" "$G/functions/ffs.vbzkey" "$G/strings/0x409" "$G"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
