#!/usr/bin/env bash
# A minimal Debian bookworm root filesystem, as a tarball: the base every stackops image starts from.
# No container registry is needed: debootstrap fetches the packages from a Debian mirror.
#
#   hack/images/debian-rootfs.sh OUT.tar
#
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
set -euo pipefail

out=${1:?usage: debian-rootfs.sh OUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# python3 and venv: the operator image and every OpenStack image run Python 3.11 from Debian.
include=python3,python3-venv,ca-certificates

root=$(mktemp -d "${TMPDIR:-/tmp}/stackops-rootfs.XXXXXX")
log="$root.log"
trap 'rm -rf "$root" "$log"' EXIT
chmod 0755 "$root" # apt's download sandbox user must reach the lists inside

# Runs a command with its output in the log, shown only when it fails.
quiet() {
    "$@" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
}

quiet debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror"

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
# Images carry no documentation, manual pages or translations, and install no recommended packages.
cat >"$root/etc/dpkg/dpkg.cfg.d/stackops-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
cat >"$root/etc/apt/apt.conf.d/90stackops" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
APT
# Security and point-release updates of what debootstrap installed.
quiet chroot "$root" apt-get update
quiet env DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y upgrade
quiet chroot "$root" apt-get clean
find "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" -mindepth 1 -delete 2>/dev/null || true
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/var/log/apt/*
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"

tar --numeric-owner --sort=name --xattrs -C "$root" -cf "$out.partial" .
mv "$out.partial" "$out"
