#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (MariaDB, RabbitMQ, OVN, BIND 9, memcached, LVM and NFS,
# namespaces, buildah, debootstrap, the real node's containerd, runc and CNI plugins, QEMU and syslinux for
# the guest), when they are missing.
set -euo pipefail

missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
# Galera (mariadb-server brings galera-4) copies a whole member to another with mariabackup (SST)
[ -f /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
command -v mariabackup >/dev/null 2>&1 || missing+=(mariadb-backup)
# the MariaDB container scripts run in a private mount and network namespace
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing+=(iproute2)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
# images: a Debian base made by debootstrap, built on with buildah (vfs storage, chroot isolation)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
# OVN: the tests run the rendered commands of its databases, northd and chassis (ovn-host brings Open vSwitch)
command -v ovn-northd >/dev/null 2>&1 || missing+=(ovn-central)
command -v ovn-controller >/dev/null 2>&1 || missing+=(ovn-host)
# BIND 9: the tests run designate's server from its rendered named.conf, and its worker's rndc
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || missing+=(bind9)
command -v rndc >/dev/null 2>&1 || [ -x /usr/sbin/rndc ] || missing+=(bind9-utils)
# manila's LVM driver: a volume group on a loop device, the shares exported over NFS (exportfs)
command -v vgcreate >/dev/null 2>&1 || [ -x /usr/sbin/vgcreate ] || missing+=(lvm2)
command -v exportfs >/dev/null 2>&1 || [ -x /usr/sbin/exportfs ] || missing+=(nfs-kernel-server)
# RabbitMQ: the tests boot the rendered rabbitmq.conf and run the messaging Jobs against it
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
# memcached: the horizon test shows the dashboard keeps nothing in the cloud's memcached
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || missing+=(memcached)
# the real node: containerd and runc run its pods, the CNI plugins give them addresses, kube-proxy
# programs iptables and conntrack, nsenter puts its daemons into the node's network namespace
command -v containerd >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
command -v conntrack >/dev/null 2>&1 || [ -x /usr/sbin/conntrack ] || missing+=(conntrack)
# kube-router's firewall enforces NetworkPolicies on the node with iptables and ipsets
command -v ipset >/dev/null 2>&1 || [ -x /usr/sbin/ipset ] || missing+=(ipset)
# the guest for servers (hack/guest/build.py): QEMU boots it, a FAT disk image with syslinux is written
# through mtools without a mount (its kernel and busybox are Debian packages it fetches with apt-get download)
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v syslinux >/dev/null 2>&1 || missing+=(syslinux)
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || missing+=(syslinux-common)
command -v mcopy >/dev/null 2>&1 || missing+=(mtools)
command -v mkfs.fat >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.fat ] || missing+=(dosfstools)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system server; stackops tests start their own on loopback.
$sudo systemctl disable --now mariadb >/dev/null 2>&1 || $sudo service mariadb stop >/dev/null 2>&1 || true
for unit in ovn-host ovn-central openvswitch-switch rabbitmq-server containerd named nfs-kernel-server rpcbind memcached; do
    $sudo systemctl disable --now "${unit}" >/dev/null 2>&1 || $sudo service "${unit}" stop >/dev/null 2>&1 || true
done
