# Sourced by the release, package and test scripts: the dongle's USB identity from its one
# place, hardware/pi/usb-id.conf, and the udev rule made from it.
#
#   usb_id_load ROOT            sets USB_VID and USB_PID (4 lowercase hex digits, no 0x)
#   usb_id_udev_rule ROOT OUT   writes 70-vbzkey.rules for that VID:PID to OUT
#   usb_id_is_test              true for pid.codes' shared test PID 1209:0001

usb_id_load() {
  local conf=$1/hardware/pi/usb-id.conf
  USB_VID=$(sed -n 's/^VBZKEY_VID=0x\([0-9a-fA-F]\{4\}\)$/\1/p' "$conf" | tr 'A-F' 'a-f')
  USB_PID=$(sed -n 's/^VBZKEY_PID=0x\([0-9a-fA-F]\{4\}\)$/\1/p' "$conf" | tr 'A-F' 'a-f')
  if [ -z "$USB_VID" ] || [ -z "$USB_PID" ]; then
    echo "usb-id: $conf must set VBZKEY_VID=0xNNNN and VBZKEY_PID=0xNNNN" >&2
    return 1
  fi
}

usb_id_is_test() {
  [ "$USB_VID:$USB_PID" = "1209:0001" ]
}

usb_id_udev_rule() {
  usb_id_load "$1" || return 1
  sed -e "s/@VID@/$USB_VID/g" -e "s/@PID@/$USB_PID/g" "$1/hardware/pi/70-vbzkey.rules.in" > "$2"
}
