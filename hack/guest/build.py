#!/usr/bin/env python3
"""Build a tiny guest for booting a server in OpenStack: a Debian kernel, a busybox initramfs and a
whole-disk image that boots them, from Debian packages only (`apt-get download`, nothing installed).

    python3 hack/guest/build.py                 # build into ~/.cache/stackops/guest, or reuse it
    python3 hack/guest/build.py --boot          # and boot it here in QEMU, no network device
    python3 hack/guest/build.py --boot --disk   # the same from disk.raw (SeaBIOS, syslinux)

What it is made of:

- the kernel: `vmlinuz` from the `linux-image-cloud-amd64` package's kernel (`--kernel linux-image-amd64`
  for the generic one), fetched with `apt-get download` and unpacked with `dpkg-deb -x`. The cloud
  kernel has virtio as modules (CONFIG_VIRTIO_PCI=m, CONFIG_VIRTIO_NET=m, CONFIG_VIRTIO_BLK=m), and its
  .deb has no modules.dep (depmod runs at install time), so the modules the guest needs (virtio_pci,
  virtio_net) are taken with their dependencies read from each module's .modinfo `depends=`; a module
  a kernel has built in (modules.builtin) is left out.
- `initrd.img`: a gzip'd newc cpio written here, holding busybox (the `busybox-static` package, unpacked
  the same way), those modules and an /init that mounts proc, sys and dev, prints
  `stackops-guest booted` on the console (ttyS0 when the command line says so), brings the first NIC up
  with udhcpc (30 s of asking; its router, classless static routes and MTU) and prints `stackops-guest address: ...`,
  then, with an address, fetches http://169.254.169.254/latest/meta-data/instance-id (asking for a minute)
  and prints `stackops-guest metadata: <id>` or `stackops-guest metadata: unreachable`, then sleeps.
  `stackops.shell` on the kernel command line puts a shell on the console instead; `stackops.poweroff`
  powers off (QEMU exits). The cpio is reproducible: same inputs, same bytes.
- `disk.raw`: a whole disk that a BIOS boots: an MBR (syslinux's mbr.bin) and one active FAT16
  partition at 1 MiB holding syslinux (installed through mtools, no loop mount), syslinux.cfg, vmlinuz
  and initrd.img; the command line is `console=tty0 console=ttyS0,115200 no_timer_check`. Building it
  needs the `syslinux`, `syslinux-common`, `mtools` and `dosfstools` packages on the host (`--no-disk`
  leaves it out). `qemu-img convert -O qcow2 disk.raw disk.qcow2` makes a qcow2 of it.

Which to give nova (libvirt driver, QEMU or KVM): the whole disk. One glance image, no properties:

    openstack image create --disk-format raw --container-format bare --file disk.raw stackops-guest

nova boots it the way it boots any cloud image: the root disk is a copy (or overlay) of it on the
default bus (virtio), the domain boots from that disk through SeaBIOS, and the kernel and initramfs are
read by syslinux through the BIOS, so the guest needs no disk driver at all, and nothing in it depends
on the disk's size or bus (a flavor's bigger root disk only adds space after the partition). The
markers go to ttyS0, the serial port nova logs: `openstack console log show` has them. UEFI is what it
cannot boot: an image or flavor asking for `hw_firmware_type=uefi` gets firmware that syslinux's BIOS
loader does not serve.

The AMI-style way works too but has more parts: `vmlinuz` as an `aki` image, `initrd.img` as an `ari`
image, and a machine image (anything, the initramfs never mounts it) whose `kernel_id` and `ramdisk_id`
properties name them. nova's compute API copies those properties onto the instance; the libvirt driver
(`_set_guest_for_inst_kernel` in nova/virt/libvirt/driver.py) then fetches both into the instance
directory and boots the domain with `<kernel>`, `<initrd>` and a command line of
`root=/dev/vda console=tty0 console=ttyS0 console=hvc0` (plus `no_timer_check` on virt_type=qemu),
or the machine image's `os_command_line` property if it has one. Three images whose ids must stay
consistent, and kernel/ramdisk files the driver has to carry along on migration and rescue: the
whole disk is simpler and sturdier.

QEMU here boots it with TCG in about 4 s (`--boot`, and tests/images/test_guest.py). With `--kvm` it
needs a /dev/kvm that runs a stock guest: a paravirtual one (the kvm_pvm module) stops SeaBIOS's
syslinux or the kernel with "KVM internal error. Suberror: 1", and so would nova's virt_type=kvm there.

Everything lives under ${STACKOPS_CACHE:-~/.cache/stackops}/guest (or --cache-dir): the outputs,
guest.json (what they were built from) and the downloaded .debs. The inputs' hash covers this script,
the options and the exact versions of the packages apt would fetch now; a build whose hash is unchanged
is reused as it is.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import io
import json
import lzma
import math
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve()
DEFAULT_KERNEL = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"
# What the guest loads, with what these need (read from each module's .modinfo), unless built in.
MODULES = ("virtio_pci", "virtio_net")
MARKER = "stackops-guest booted"
ADDRESS_MARKER = "stackops-guest address:"
METADATA_MARKER = "stackops-guest metadata:"
METADATA_URL = "http://169.254.169.254/latest/meta-data/instance-id"
DISK_CMDLINE = "console=tty0 console=ttyS0,115200 no_timer_check"
# The disk: one FAT16 partition from 1 MiB on; syslinux's MBR boots the active partition.
SECTOR = 512
PARTITION_START = 2048  # sectors
MBR_CODE = Path("/usr/lib/syslinux/mbr/mbr.bin")
DISK_TOOLS = {"mkfs.fat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux", str(MBR_CODE): "syslinux-common"}

INIT = f"""#!/bin/sh
# /init of the stackops guest (hack/guest/build.py): busybox only, everything in RAM.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
hostname stackops-guest
while read -r module; do
    insmod "/lib/modules/$module" || echo "stackops-guest: insmod $module failed"
done </etc/modules
ip link set lo up
echo "{MARKER} (kernel $(uname -r), $(cut -d' ' -f1 /proc/uptime)s after start)"

nic=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    for path in /sys/class/net/*; do
        name="${{path##*/}}"
        if [ "$name" != lo ] && [ -e "$path/device" ]; then nic="$name"; break; fi
    done
    [ -n "$nic" ] && break
    # a NIC shows up while its driver probes; without one on the PCI bus there is nothing to wait for
    grep -qs 0x1af4 /sys/bus/pci/devices/*/vendor || break
    usleep 100000
done
if [ -z "$nic" ]; then
    echo "{ADDRESS_MARKER} none (no NIC)"
else
    ip link set "$nic" up
    # 30 s of asking, as a cloud image would wait: a loaded hypervisor may claim the port late
    udhcpc -i "$nic" -s /etc/udhcpc.script -b -t 15 -T 2 -O staticroutes -O mtu -x hostname:stackops-guest \\
        >/dev/null 2>&1
    address="$(ip -4 -o addr show dev "$nic" | awk '{{print $4; exit}}')"
    if [ -z "$address" ]; then
        echo "{ADDRESS_MARKER} none (no DHCP lease on $nic)"
    else
        echo "{ADDRESS_MARKER} $nic $address"
        # a minute of asking: the metadata proxy of a new network is set up as the port comes up
        id=""
        tries=0
        while [ -z "$id" ] && [ "$tries" -lt 12 ]; do
            id="$(timeout 5 wget -q -O - {METADATA_URL} 2>/dev/null)" || sleep 1
            tries=$((tries + 1))
        done
        echo "{METADATA_MARKER} ${{id:-unreachable}}"
    fi
fi

if grep -qw stackops.poweroff /proc/cmdline; then
    poweroff -f
fi
if grep -qw stackops.shell /proc/cmdline; then
    while :; do setsid cttyhack sh -l; done
fi
while :; do sleep 3600; done
"""

# udhcpc's event script: the lease's address, then RFC 3442 routes if given (the metadata route on an
# OVN network comes that way), else the default route, then the MTU and DNS servers.
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then
                ip route replace "$1" dev "$interface"
            else
                ip route replace "$1" via "$2" dev "$interface"
            fi
            shift 2
        done
    else
        for gateway in $router; do
            ip route replace default via "$gateway" dev "$interface"
            break
        done
    fi
    : >/etc/resolv.conf
    for server in $dns; do echo "nameserver $server" >>/etc/resolv.conf; done
    ;;
esac
exit 0
"""

SYSLINUX_CFG = f"""SERIAL 0 115200
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND {DISK_CMDLINE}
"""


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


@dataclass(frozen=True)
class Guest:
    """A built guest: its files in `directory`, and what they were built from."""

    directory: Path
    kernel: Package
    busybox: Package
    kernel_release: str
    modules: tuple[str, ...]
    inputs: str

    @property
    def vmlinuz(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def disk(self) -> Path:
        return self.directory / "disk.raw"

    @property
    def config(self) -> Path:
        """The kernel's build configuration (CONFIG_VIRTIO_NET and the like)."""
        return self.directory / "config"


class BuildError(Exception):
    pass


def cache_root() -> Path:
    """stackops' cache (stackops.cache.cache_root, without importing the package)."""
    return Path(os.environ.get("STACKOPS_CACHE") or Path.home() / ".cache" / "stackops")


def default_directory() -> Path:
    return cache_root() / "guest"


def run(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv)} exited {result.returncode}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


# Debian packages


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def candidate(name: str) -> dict[str, str]:
    """The fields of the version of `name` that `apt-get download` would fetch. As root, apt's lists
    are fetched once when they do not know the package (a fresh machine has none)."""
    argv = ["apt-cache", "show", "--no-all-versions", name]
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if (result.returncode != 0 or not result.stdout.strip()) and os.geteuid() == 0:
        run(["apt-get", "update", "-qq"])
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildError(f"apt knows no package {name} (run apt-get update): {result.stderr.strip()}")
    return _fields(result.stdout.split("\n\n")[0])


def resolve_kernel(name: str) -> Package:
    """The kernel package itself: a metapackage such as linux-image-cloud-amd64 names it in Depends."""
    fields = candidate(name)
    if re.match(r"linux-image-[0-9]", name):
        return Package(name, fields["Version"])
    for dependency in fields.get("Depends", "").split(","):
        dependency = dependency.split("|")[0].strip().split(" ")[0]
        if re.match(r"linux-image-[0-9]", dependency) and not dependency.endswith("-dbg"):
            return resolve_kernel(dependency)
    raise BuildError(f"{name} is no kernel package and depends on none: {fields.get('Depends', '')}")


def resolve(name: str) -> Package:
    return Package(name, candidate(name)["Version"])


def download(package: Package, debs: Path) -> Path:
    """The package's .deb from `debs/<name>/`, fetched with `apt-get download` unless the one there is
    this version."""
    directory = debs / package.name
    for deb in directory.glob("*.deb"):
        if run(["dpkg-deb", "-f", str(deb), "Version"]).strip() == package.version:
            return deb
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    run(["apt-get", "download", "-q", str(package)], cwd=directory)
    found = sorted(directory.glob("*.deb"))
    if len(found) != 1:
        raise BuildError(f"apt-get download {package} left {[p.name for p in found]} in {directory}")
    return found[0]


def unpack(deb: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(target)])
    return target


# kernel modules


def modinfo(data: bytes) -> dict[str, str]:
    """The .modinfo section of a kernel module (a 64-bit little-endian ELF relocatable)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise BuildError("not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size

    _, names_offset, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        end = data.index(b"\0", names_offset + name)
        if data[names_offset + name : end] == b".modinfo":
            info: dict[str, str] = {}
            for entry in data[offset : offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    raise BuildError("no .modinfo section")


def module_name(path: Path | str) -> str:
    name = Path(path).name.split(".ko")[0]
    return name.replace("-", "_")


def read_module(path: Path) -> bytes:
    """A module's ELF bytes: Debian ships them plain (bookworm) or xz-compressed (trixie on)."""
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise BuildError(f"{path.name}: a compression this script does not read")


def modules_in_load_order(modules_dir: Path, wanted: Iterable[str]) -> list[tuple[str, bytes]]:
    """`wanted` and what they depend on, dependencies first, as (name, ELF bytes); modules the kernel
    has built in are left out."""
    builtin_file = modules_dir / "modules.builtin"
    builtin = {module_name(line) for line in builtin_file.read_text().split()} if builtin_file.exists() else set()
    files = {module_name(p): p for p in (modules_dir / "kernel").rglob("*.ko*")}
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        if name in chain:
            raise BuildError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        if name not in files:
            raise BuildError(f"the kernel has no module {name} and does not build it in")
        data = read_module(files[name])
        for dependency in filter(None, modinfo(data).get("depends", "").split(",")):
            visit(dependency, (*chain, name))
        seen.add(name)
        ordered.append((name, data))

    for name in wanted:
        visit(name, ())
    return ordered


def kernel_config(config: Path, *options: str) -> dict[str, str]:
    """`CONFIG_X` -> 'y', 'm' or 'n' (not set) from a kernel's config file."""
    values: dict[str, str] = {}
    for line in config.read_text().splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return {option: values.get(option, "n") for option in options}


# the initramfs


class Cpio:
    """A newc cpio archive, the initramfs format, with every file owned by root and dated 0."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 0

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self._out.write(b"070701" + b"".join(b"%08x" % field for field in fields) + encoded)
        self._out.write(b"\0" * (-(110 + len(encoded)) % 4))
        self._out.write(data + b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        data = self._out.getvalue()
        return data + b"\0" * (-len(data) % 512)


def initramfs(busybox: bytes, release: str, modules: Sequence[tuple[str, bytes]]) -> bytes:
    archive = Cpio()
    for directory in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run", "etc"):
        archive.directory(directory)
    # the kernel opens /dev/console for /init before anything is mounted
    archive.char_device("dev/console", 5, 1)
    archive.file("bin/busybox", busybox, 0o755)
    archive.symlink("bin/sh", "busybox")
    archive.file("init", INIT.encode(), 0o755)
    archive.file("etc/udhcpc.script", UDHCPC_SCRIPT.encode(), 0o755)
    archive.directory("lib")
    archive.directory("lib/modules")
    archive.directory(f"lib/modules/{release}")
    for name, data in modules:
        archive.file(f"lib/modules/{release}/{name}.ko", data)
    archive.file("etc/modules", "".join(f"{release}/{name}.ko\n" for name, _ in modules).encode())
    return gzip.compress(archive.finish(), compresslevel=9, mtime=0)


# the disk


def _chs(lba: int) -> bytes:
    """An MBR CHS address for `lba` (255 heads, 63 sectors per track), the 1023-cylinder cap past 8 GB."""
    cylinder, rest = divmod(lba, 255 * 63)
    head, sector = divmod(rest, 63)
    if cylinder > 1023:
        cylinder, head, sector = 1023, 254, 62
    return bytes((head, ((cylinder >> 2) & 0xC0) | (sector + 1), cylinder & 0xFF))


def master_boot_record(code: bytes, start: int, sectors: int, partition_type: int) -> bytes:
    """Boot code, a fixed disk signature and one active partition."""
    if len(code) > 440:
        raise BuildError(f"MBR boot code of {len(code)} bytes (at most 440)")
    entry = b"\x80" + _chs(start) + bytes((partition_type,)) + _chs(start + sectors - 1)
    entry += struct.pack("<II", start, sectors)
    record = code.ljust(440, b"\0") + b"STKO" + b"\0\0" + entry + b"\0" * 48 + b"\x55\xaa"
    assert len(record) == SECTOR
    return record


def missing_disk_tools() -> list[str]:
    return sorted({package for tool, package in DISK_TOOLS.items() if not (shutil.which(tool) or Path(tool).exists())})


def make_disk(path: Path, files: dict[str, Path], work: Path) -> None:
    """A BIOS-bootable disk: syslinux's MBR, one active FAT16 partition with syslinux and `files`,
    written through mtools and the tools' offsets, no mount."""
    missing = missing_disk_tools()
    if missing:
        raise BuildError(f"the disk image needs Debian packages {' '.join(missing)} (or build with --no-disk)")
    config = work / "syslinux.cfg"
    config.write_text(SYSLINUX_CFG)
    content = sum(p.stat().st_size for p in files.values())
    partition_mib = max(16, math.ceil(content / 2**20) + 4)
    sectors = partition_mib * 2**20 // SECTOR
    offset = PARTITION_START * SECTOR
    with path.open("wb") as disk:
        disk.truncate(offset + sectors * SECTOR)
    run(
        [
            "mkfs.fat",
            "-F",
            "16",
            "-n",
            "STACKOPS",
            "-i",
            "5354414b",
            "-h",
            str(PARTITION_START),
            "--mbr=n",
            f"--offset={PARTITION_START}",
            str(path),
            str(sectors * SECTOR // 1024),
        ]
    )
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "1"}
    image = f"{path}@@{offset}"
    for name, source in {**files, "syslinux.cfg": config}.items():
        run(["mcopy", "-o", "-i", image, str(source), f"::/{name}"], env=env)
    run(["syslinux", "--install", "--offset", str(offset), str(path)], env=env)
    with path.open("r+b") as disk:
        disk.write(master_boot_record(MBR_CODE.read_bytes(), PARTITION_START, sectors, 0x0E))


# the build


def inputs_hash(kernel: Package, busybox: Package, disk: bool) -> str:
    digest = hashlib.sha256()
    digest.update(SCRIPT.read_bytes())
    digest.update(json.dumps([str(kernel), str(busybox), MODULES, disk]).encode())
    return digest.hexdigest()[:16]


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _cached(directory: Path, inputs: str, disk: bool) -> Guest | None:
    try:
        manifest = json.loads((directory / "guest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("inputs") != inputs:
        return None
    guest = Guest(
        directory,
        Package(*manifest["kernel"]),
        Package(*manifest["busybox"]),
        manifest["kernel_release"],
        tuple(manifest["modules"]),
        inputs,
    )
    outputs = [guest.vmlinuz, guest.initrd, guest.config] + ([guest.disk] if disk else [])
    return guest if all(p.exists() for p in outputs) else None


def build(
    directory: Path | None = None,
    *,
    kernel: str = DEFAULT_KERNEL,
    disk: bool = True,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Guest:
    """The guest in `directory` (default: the cache's guest/), built unless a build from the same
    inputs is there."""
    directory = directory or default_directory()
    kernel_package = resolve_kernel(kernel)
    busybox_package = resolve(BUSYBOX)
    inputs = inputs_hash(kernel_package, busybox_package, disk)
    with _locked(directory):
        if not force and (guest := _cached(directory, inputs, disk)):
            log(f"guest: reusing {directory} ({kernel_package}, {busybox_package})")
            return guest
        started = time.monotonic()
        log(f"guest: building {directory} from {kernel_package} and {busybox_package}")
        debs = directory / "debs"
        with tempfile.TemporaryDirectory(prefix=".build-", dir=directory) as temporary:
            work = Path(temporary)
            kernel_root = unpack(download(kernel_package, debs), work / "kernel")
            busybox_root = unpack(download(busybox_package, debs), work / "busybox")
            vmlinuz = _one(kernel_root / "boot", "vmlinuz-*")
            release = vmlinuz.name.removeprefix("vmlinuz-")
            modules = modules_in_load_order(kernel_root / "lib" / "modules" / release, MODULES)
            busybox_binary = _first_existing(busybox_root / "bin" / "busybox", busybox_root / "usr/bin/busybox")
            out = work / "out"
            out.mkdir()
            shutil.copyfile(vmlinuz, out / "vmlinuz")
            shutil.copyfile(kernel_root / "boot" / f"config-{release}", out / "config")
            (out / "initrd.img").write_bytes(initramfs(busybox_binary.read_bytes(), release, modules))
            if disk:
                make_disk(out / "disk.raw", {"vmlinuz": out / "vmlinuz", "initrd.img": out / "initrd.img"}, work)
            guest = Guest(
                directory, kernel_package, busybox_package, release, tuple(name for name, _ in modules), inputs
            )
            manifest = {
                "inputs": inputs,
                "kernel": [kernel_package.name, kernel_package.version],
                "busybox": [busybox_package.name, busybox_package.version],
                "kernel_release": release,
                "modules": list(guest.modules),
                "cmdline": DISK_CMDLINE,
                "sizes": {p.name: p.stat().st_size for p in sorted(out.iterdir())},
            }
            (out / "guest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            (directory / "guest.json").unlink(missing_ok=True)  # no stale manifest over new files
            for name in ("vmlinuz", "initrd.img", "config", "disk.raw"):
                (directory / name).unlink(missing_ok=True)
            for produced in out.iterdir():
                produced.replace(directory / produced.name)
        log(f"guest: built in {time.monotonic() - started:.1f}s: {', '.join(guest.modules) or 'no modules'}")
        return guest


def _one(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        raise BuildError(f"expected one {pattern} in {directory}, found {[p.name for p in found]}")
    return found[0]


def _first_existing(*paths: Path) -> Path:
    for path in paths:
        if path.exists():
            return path
    raise BuildError(f"none of {', '.join(map(str, paths))}")


# booting it here


def qemu_command(
    guest: Guest,
    *,
    disk: bool = False,
    kvm: bool = False,
    append: str = "",
    network: Sequence[str] = ("-nic", "none"),
    memory_mib: int = 256,
) -> list[str]:
    """QEMU booting the guest with its serial console on stdout and no network device unless `network`
    says otherwise; TCG unless `kvm`. From the disk, the command line is syslinux.cfg's and `append` is
    not used; otherwise it is nova's for virt_type=qemu (console=ttyS0 no_timer_check) and `append`."""
    argv = ["qemu-system-x86_64", "-accel", "kvm" if kvm else "tcg", "-m", str(memory_mib)]
    argv += ["-nographic", "-no-reboot", *network]
    if disk:
        return [*argv, "-drive", f"file={guest.disk},format=raw,if=virtio,snapshot=on"]
    cmdline = f"console=ttyS0 no_timer_check {append}".strip()
    return [*argv, "-kernel", str(guest.vmlinuz), "-initrd", str(guest.initrd), "-append", cmdline]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: ~/.cache/stackops/guest")
    parser.add_argument("--kernel", default=DEFAULT_KERNEL, help="a linux-image package (default: %(default)s)")
    parser.add_argument("--no-disk", action="store_true", help="only vmlinuz and initrd.img")
    parser.add_argument("--force", action="store_true", help="build even if the inputs are unchanged")
    parser.add_argument("--boot", action="store_true", help="then boot it in QEMU here (no network device)")
    parser.add_argument("--disk", action="store_true", help="with --boot: from disk.raw")
    parser.add_argument("--kvm", action="store_true", help="with --boot: with KVM (default: TCG)")
    args = parser.parse_args(argv)
    try:
        guest = build(args.cache_dir, kernel=args.kernel, disk=not args.no_disk, force=args.force)
    except BuildError as error:
        print(f"guest: {error}", file=sys.stderr)
        return 1
    config = kernel_config(guest.config, "CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_NET", "CONFIG_VIRTIO_BLK")
    print(f"{guest.directory} ({guest.kernel_release}; {' '.join(f'{k}={v}' for k, v in config.items())})")
    for path in (guest.vmlinuz, guest.initrd, guest.disk):
        if path.exists():
            print(f"  {path.name}: {path.stat().st_size / 2**20:.1f} MiB")
    if args.boot:
        command = qemu_command(guest, disk=args.disk, kvm=args.kvm)
        print(shlex.join(command), flush=True)
        os.execvp(command[0], command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
