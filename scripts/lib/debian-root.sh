# Sourced by scripts/package-deb and tests/usb-vm/run.sh: a clean Debian 12 root file system
# (debootstrap minbase from Debian's mirror), made once and cached as a tarball, so a run
# costs an unpack (seconds) instead of a download (about two minutes).
#
#   debian_root_unpack DIR      a fresh copy of the root in DIR (made and cached if needed)
#
# It holds what both users need: systemd, udev and dbus (the USB VM boots it, as Raspberry Pi
# OS has them), sudo and minisign (the install guide's commands), kmod (modules in the VM).
# Nothing of vbzkey's.

DEBIAN_ROOT_SUITE=bookworm
DEBIAN_ROOT_PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,sudo,minisign
DEBIAN_ROOT_MIRROR=${VBZKEY_DEBIAN_MIRROR:-http://deb.debian.org/debian}

debian_root_tarball() {
  local cache=${VBZKEY_CACHE:-$HOME/.cache/vbzkey}/debian-root
  local key
  key=$(printf '%s %s' "$DEBIAN_ROOT_SUITE" "$DEBIAN_ROOT_PACKAGES" | sha256sum | cut -c1-12)
  DEBIAN_ROOT_TARBALL=$cache/$DEBIAN_ROOT_SUITE-minbase-$key.tar.gz
  [ -f "$DEBIAN_ROOT_TARBALL" ] && return 0
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  mkdir -p "$cache"
  local tmp
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  echo "[debian-root] debootstrap $DEBIAN_ROOT_SUITE (minbase + $DEBIAN_ROOT_PACKAGES), cached afterwards" >&2
  if ! debootstrap --variant=minbase --include="$DEBIAN_ROOT_PACKAGES" \
      "$DEBIAN_ROOT_SUITE" "$tmp/root" "$DEBIAN_ROOT_MIRROR" > "$tmp/log" 2>&1; then
    tail -n 20 "$tmp/log" >&2
    rm -rf "$tmp"
    return 1
  fi
  # What neither user needs: package lists and caches, documentation, translations.
  rm -rf "$tmp"/root/var/cache/apt/* "$tmp"/root/var/lib/apt/lists/* \
         "$tmp"/root/usr/share/{doc,man,info,locale}/*
  tar -C "$tmp/root" --numeric-owner -czf "$tmp/root.tar.gz" .
  mv "$tmp/root.tar.gz" "$DEBIAN_ROOT_TARBALL"
  rm -rf "$tmp"
}

debian_root_unpack() {
  debian_root_tarball || return 1
  mkdir -p "$1"
  tar -C "$1" --numeric-owner -xzf "$DEBIAN_ROOT_TARBALL"
}
