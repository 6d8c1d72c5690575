#!/bin/bash
# Runs inside the USB test VM (tests/usb-vm/run.sh), as root, at the end of boot. The users:
# `admin` is the Pi's (as Raspberry Pi Imager creates one), `clerk` a staff member at the
# workstation (the VM is both), `stranger` another local user. Steps:
#
#   1. the VM's stand-ins for a Pi and for the two people (the Pi's admin, a staff member who
#      is also the shop's admin here: the two PIN files they would type with an editor);
#   2. the blocks of hardware/pi/INSTALL.md, as written: `pi` ones as the Pi's admin user
#      (from their home), `workstation` ones as clerk (from ~/Downloads, the PIN on
#      stdin), each in a fresh login; `real-pi-only` ones are counted, not run. Whenever a
#      block's admin tool says "Press the dongle's button", the button is pressed: a line
#      written to the firmware's presence FIFO (the VM's stand-in for the GPIO button);
#   3. checks of what the guide set up, and one admin operation (backup) over real USB without
#      a press (refused: exit 10) and with one (VBZKEY-WALK-RESULT);
#   4. usb-vm-probe on the real USB path (VBZKEY-USB-RESULT); then power off.
set -u -o pipefail
. /opt/vbzkey-walk/env
W=/opt/vbzkey-walk
declare -a RESULT=()
put() { RESULT+=("\"$1\":$2"); }
flag() { if "${@:2}" >/dev/null 2>&1; then put "$1" true; else put "$1" false; fi; }
log() { echo "[walk] $*"; }
as_clerk() { su - clerk -c "$1"; }
PROMPT="Press the dongle's button"
presses=0
# A finger on the button: one press, as root (the FIFO is the firmware's, mode 0600). Bounded:
# a FIFO nobody reads would block the writer.
press() { timeout 5 sh -c "echo press > $BUTTON" && presses=$((presses + 1)); }
# run_pressing IN LOG CMD...: CMD with stdin from IN and its output into LOG, the button
# pressed once each time CMD asks for it (after it asks, as a person would).
run_pressing() {
  local in=$1 log=$2 seen=0 n pid rc=0
  shift 2
  : > "$log"
  "$@" < "$in" > "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    n=$(grep -c "$PROMPT" "$log" || true)
    while [ "$seen" -lt "${n:-0}" ]; do press; seen=$((seen + 1)); done
    sleep 0.2
  done
  wait "$pid" || rc=$?
  return $rc
}

finish() {
  local ok=true kv
  for kv in "${RESULT[@]}"; do
    case "$kv" in *":false") ok=false ;; esac
  done
  local IFS=,
  echo "VBZKEY-WALK-RESULT {${RESULT[*]},\"ok\":$ok}"
}

# --- 1. stand-ins -----------------------------------------------------------------------------
grep -q "^Serial.*$SERIAL" /proc/cpuinfo || log "no Serial line in /proc/cpuinfo (see /init)"
groupadd --system gpio                              # Raspberry Pi OS has it
mkdir -p /boot/firmware /media/clerk/bootfs           # the SD card's boot partition, as seen
mount --bind /boot/firmware /media/clerk/bootfs       # by the Pi and by the workstation
for u in admin clerk stranger; do useradd -m -s /bin/bash "$u"; done
echo 'admin ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/admin
echo 'clerk ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/clerk
chown clerk /boot/firmware
install -d -o clerk -g clerk /home/clerk/Downloads
cp "$W"/downloads/* /home/clerk/Downloads/
# What the admin types into an editor (INSTALL.md step 7), readable by clerk alone.
printf '%s\n' "$PIN" > /home/clerk/Downloads/staff-pin.txt
printf '%s\n' "$ADMIN_PIN" > /home/clerk/Downloads/admin-pin.txt
chmod 0600 /home/clerk/Downloads/staff-pin.txt /home/clerk/Downloads/admin-pin.txt
chown -R clerk:clerk /home/clerk/Downloads
printf '%s\n' "$PIN" > /run/walk-stdin

# --- 2. the guide -------------------------------------------------------------------------------
ran=0 skipped=0 failed=""
for block in "$W"/blocks/*.sh; do
  name=$(basename "$block" .sh)
  chmod 0644 "$block"
  case "$name" in
    *-real-pi-only) skipped=$((skipped + 1)); log "$name: real Pi only, not run"; continue ;;
    *-pi) cmd=(su - admin -c "bash -eo pipefail $block") ;;
    *-workstation) cmd=(su - clerk -c "cd ~/Downloads && bash -eo pipefail $block") ;;
    *) failed=$name; break ;;
  esac
  log "$name"
  sed 's/^/    $ /' "$block"
  block_ok=true
  run_pressing /run/walk-stdin /run/block.log "${cmd[@]}" || block_ok=false
  sed 's/^/    /' /run/block.log
  if [ "$block_ok" != true ]; then
    failed=$name
    log "$name FAILED"
    break
  fi
  ran=$((ran + 1))
done
put guide_blocks_run "$ran"
put guide_blocks_skipped "$skipped"
# init pairs the admin's computer, then the bridge is paired: a press each, asked and given.
put guide_button_presses "$presses"
put guide_pressed_for_both_pairings "$([ "$presses" = 2 ] && echo true || echo false)"
if [ -n "$failed" ]; then put guide_failed "\"$failed\""; put guide_ok false; else put guide_ok true; fi

# --- 3. what the guide set up ---------------------------------------------------------------------
pid=$(systemctl show -p MainPID --value vbzkey-firmware)
status=/proc/$pid/status
vbz_uid=$(id -u vbzkey 2>/dev/null || echo none)
flag firmware_active systemctl is-active --quiet vbzkey-firmware
uid_is() { awk -v u="$1" '/^Uid:/ { exit !($2 == u && $3 == u) }' "$status"; }
has_group() { awk -v g="$1" '/^Groups:/ { for (i = 2; i <= NF; i++) if ($i == g) f = 1 } END { exit !f }' "$status"; }
flag firmware_runs_as_vbzkey uid_is "$vbz_uid"
# The unit's sandbox in force: no new privileges, a seccomp filter, no capabilities.
flag firmware_no_new_privs grep -q '^NoNewPrivs:[[:space:]]*1$' "$status"
flag firmware_seccomp_filter grep -q '^Seccomp:[[:space:]]*2$' "$status"
flag firmware_no_capabilities grep -q '^CapEff:[[:space:]]*0*$' "$status"
flag firmware_in_gpio_group has_group "$(getent group gpio | cut -d: -f3)"
# Its memory locked against swap (mlockall; the unit's LimitMEMLOCK lets it grow locked).
flag firmware_memory_locked grep -Eq '^VmLck:[[:space:]]*[1-9]' "$status"
put ffs_owned_by_vbzkey "$([ "$(stat -c %U /dev/ffs-vbzkey/ep0)" = vbzkey ] && echo true || echo false)"
put udc_file_owned_by_vbzkey "$([ "$(stat -c %U /sys/kernel/config/usb_gadget/vbzkey/UDC)" = vbzkey ] && echo true || echo false)"
put state_on_its_partition "$(findmnt -n -o FSTYPE /var/lib/vbzkey | grep -qx ext4 && test -s /var/lib/vbzkey/keystore.v1 && echo true || echo false)"
flag keystore_sealed_to_otp sh -c 'vbzkey-firmware otp status | grep -q "keystore.v1 sealed to the OTP device secret"'
flag otp_locked test -e /var/lib/fake-otp/fuses.locked
# The udev rule (installed after the dongle was plugged in, applied by the package's trigger):
# the device node belongs to group vbzkey; clerk (in it) may open it, a stranger may not.
node=""
for d in /sys/bus/usb/devices/*; do
  if [ "$(cat "$d/idVendor" 2>/dev/null):$(cat "$d/idProduct" 2>/dev/null)" = "$(. /etc/vbzkey/usb-id.conf; echo "${VBZKEY_VID#0x}:${VBZKEY_PID#0x}")" ]; then
    node=$(printf '/dev/bus/usb/%03d/%03d' "$(cat "$d/busnum")" "$(cat "$d/devnum")")
  fi
done
put dongle_node_group_vbzkey "$([ -n "$node" ] && [ "$(stat -c '%G %a' "$node")" = "vbzkey 660" ] && echo true || echo false)"
flag clerk_opens_dongle as_clerk 'vbzkey-admin info'
if su - stranger -c 'vbzkey-admin info' >/dev/null 2>&1; then put stranger_refused false; else put stranger_refused true; fi

# RestartPreventExitStatus: a configuration error (exit 78) is not retried.
mkdir -p /run/systemd/system/vbzkey-firmware.service.d
cat > /run/systemd/system/vbzkey-firmware.service.d/broken.conf <<'EOF'
[Service]
ExecStart=
ExecStart=/usr/local/bin/vbzkey-firmware serve --state-dir /var/lib/vbzkey --transport bogus:x
EOF
systemctl daemon-reload
systemctl restart vbzkey-firmware 2>/dev/null
sleep 8   # longer than RestartSec
put config_error_not_retried "$([ "$(systemctl show -p NRestarts --value vbzkey-firmware)" = 0 ] && [ "$(systemctl show -p ExecMainStatus --value vbzkey-firmware)" = 78 ] && echo true || echo false)"
rm -r /run/systemd/system/vbzkey-firmware.service.d
systemctl daemon-reload
systemctl reset-failed vbzkey-firmware

wait_info() { # STATE: clerk's `vbzkey-admin info --json` until it shows STATE
  local i
  systemctl is-active --quiet vbzkey-firmware || return 1
  for i in $(seq 1 30); do
    as_clerk 'vbzkey-admin info --json' 2>/dev/null > /run/info.json &&
      grep -q "\"state\":\"$1\"" /run/info.json && return 0
    sleep 1
  done
  return 1
}
# The OTP rows cannot be read at boot: vbzkey-otp fails loudly, and the dongle says
# "device secret missing" and counts no PIN try.
touch /var/lib/fake-otp/fail
if systemctl restart vbzkey-otp 2>/dev/null; then put otp_unit_fails_loudly false; else
  put otp_unit_fails_loudly "$([ "$(systemctl is-failed vbzkey-otp)" = failed ] && echo true || echo false)"
fi
systemctl restart vbzkey-firmware
all_tries() { grep -q '"pin_tries_left":8' /run/info.json && grep -q '"admin_tries_left":8' /run/info.json; }
put device_secret_missing_reported "$(wait_info device_secret_missing && all_tries && echo true || echo false)"
# Neither PIN is checked nor counted meanwhile (the admin tool over USB, as the admin would try).
as_clerk 'cd ~/Downloads && vbzkey-admin --host-key ~/.config/vbzkey/admin.key --admin-pin-file admin-pin.txt rotate' \
  > /run/dsm.log 2>&1
dsm_rc=$?
sed 's/^/    /' /run/dsm.log
put device_secret_missing_admin_refused "$([ "$dsm_rc" = 5 ] && grep -q vbzkey-otp /run/dsm.log && echo true || echo false)"
rm /var/lib/fake-otp/fail
systemctl restart vbzkey-otp vbzkey-firmware
put secret_back_locked_with_all_tries "$(wait_info locked && all_tries && echo true || echo false)"
put button_reported "$(grep -q '"button":true' /run/info.json && echo true || echo false)"

# One admin operation over real USB through the gadget-side presence input: a backup needs the
# admin PIN and a press. Without the press the dongle waits (its timeout, 10 s here), refuses
# (NotConfirmed, exit 10) and deals no share; with it, the shares come out.
backup() { # DIR: the admin's backup into ~/Downloads/DIR
  echo "cd ~/Downloads && vbzkey-admin --host-key ~/.config/vbzkey/admin.key --admin-pin-file admin-pin.txt backup --threshold 2 --shares 3 -o $1"
}
shares_in() { find "/home/clerk/Downloads/$1" -name 'share-*' 2>/dev/null | wc -l; }
log "backup without a press"
as_clerk "$(backup shares-unpressed)" > /run/unpressed.log 2>&1
unpressed_rc=$?
sed 's/^/    /' /run/unpressed.log
put button_unpressed_exit "$unpressed_rc"
put button_unpressed_refused "$([ "$unpressed_rc" = 10 ] && grep -q "$PROMPT" /run/unpressed.log && grep -q 'button' /run/unpressed.log && [ "$(shares_in shares-unpressed)" = 0 ] && echo true || echo false)"
log "backup with a press"
pressed_rc=0
run_pressing /dev/null /run/pressed.log su - clerk -c "$(backup shares)" || pressed_rc=$?
sed 's/^/    /' /run/pressed.log
put button_pressed_exit "$pressed_rc"
put button_pressed_backup_ok "$([ "$pressed_rc" = 0 ] && [ "$(shares_in shares)" = 3 ] && echo true || echo false)"
# Both are in the dongle's audit log.
as_clerk 'cd ~/Downloads && vbzkey-admin --host-key ~/.config/vbzkey/admin.key audit export -o audit.log' >/dev/null 2>&1
put button_audited "$(grep -q ' presence-missing ' /home/clerk/Downloads/audit.log && grep -q ' backup ' /home/clerk/Downloads/audit.log && echo true || echo false)"
finish

# --- 4. the real USB path ------------------------------------------------------------------------
log "sealing 20 records with the installed CLI, then usb-vm-probe"
as_clerk 'cd ~/Downloads && for i in $(seq 1 20); do
  v=4111-1111-1111-$(printf %04d $i); c=cust_cards/$i/card_number
  r=$(printf %s "$v" | vbzkey seal --to store-public-key.txt --context "$c")
  printf "{\"context\":\"%s\",\"value\":\"%s\",\"record\":\"%s\"}\n" "$c" "$v" "$r"
done' | sed '1s/^/[/; $!s/$/,/; $s/$/]/' > /run/records.json
usb-vm-probe --bridge /usr/bin/vbzkey-bridge --records /run/records.json \
  --udc-file /sys/kernel/config/usb_gadget/vbzkey/UDC --udc dummy_udc.0 --pin "$PIN" \
  --serial "$SERIAL" --bridge-keys /home/clerk/Downloads/bridge-pairing.toml 2>/run/probe.log ||
  echo 'VBZKEY-USB-RESULT {"ok":false,"error":"probe crashed"}'
echo "--- probe log (tail)"; tail -n 15 /run/probe.log
echo "--- journal (vbzkey units, tail)"
journalctl --no-pager -o cat -u vbzkey-otp -u vbzkey-gadget -u vbzkey-firmware | tail -n 40
systemctl --force --force poweroff
