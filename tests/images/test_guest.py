"""The tiny guest for booting servers (hack/guest/build.py): a Debian kernel and a busybox initramfs,
and a whole disk that boots them, built from Debian packages and booted here in QEMU. The boots have
no network device, or QEMU's user-mode network with restrict=on, whose only way out is a metadata
responder that QEMU runs here: no packet leaves the machine.

TCG unless STACKOPS_GUEST_ACCEL=kvm: a stock guest boots in seconds on TCG, and some machines' /dev/kvm
(a paravirtual one, kvm_pvm) stop it with "KVM internal error. Suberror: 1" before its kernel runs.
"""

from __future__ import annotations

import gzip
import os
import re
import selectors
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.guest import ADDRESS_MARKER, MARKER, METADATA_MARKER, Guest, guest_build
from tests.support.progress import printer

BOOT_TIMEOUT = 180.0  # TCG boots in about 4 s on an idle machine; a CI run shares two cores
KVM = os.environ.get("STACKOPS_GUEST_ACCEL", "tcg") == "kvm"
INSTANCE_ID = "i-stackops-guest-test"
# QEMU runs this for each connection the guest makes to 169.254.169.254:80, on its stdin and stdout.
METADATA_RESPONDER = f"""import sys
while sys.stdin.buffer.readline() not in (b"\\r\\n", b"\\n", b""):
    pass
body = b"{INSTANCE_ID}"
sys.stdout.buffer.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
"""


@pytest.fixture(scope="module")
def guest(pytestconfig: pytest.Config) -> Guest:
    built: Guest = guest_build.build(log=printer(pytestconfig))
    return built


@pytest.fixture(scope="module")
def qemu() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        pytest.skip("qemu-system-x86_64 is missing: install Debian's qemu-system-x86 (hack/system-packages.sh)")
    return path


@pytest.fixture
def say(pytestconfig: pytest.Config) -> Callable[[str], None]:
    return printer(pytestconfig)


@dataclass(frozen=True)
class Console:
    text: str  # the serial console, \r\n made \n
    seconds: float  # from QEMU's start to the awaited line, or to its exit
    exited: bool

    def line(self, prefix: str) -> str:
        found = [line for line in self.text.splitlines() if line.startswith(prefix)]
        assert found, f"no line starting {prefix!r} on the console:\n{self.text[-4000:]}"
        return found[0]


def boot(command: list[str], until: str | None = None, timeout: float = BOOT_TIMEOUT) -> Console:
    """Run QEMU until its console has a whole line matching the regex `until` (or until it exits, when
    `until` is None), then stop it."""
    started = time.monotonic()
    output = b""
    pattern = re.compile(until.encode() + rb"[^\n]*\n") if until else None
    exited = False
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as qemu:
        assert qemu.stdout is not None
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(qemu.stdout, selectors.EVENT_READ)
                while (remaining := started + timeout - time.monotonic()) > 0:
                    if not selector.select(remaining):
                        continue
                    chunk = os.read(qemu.stdout.fileno(), 65536)
                    if not chunk:
                        exited = True
                        break
                    output += chunk
                    if pattern and pattern.search(output):
                        break
            seconds = time.monotonic() - started
        finally:
            qemu.kill()
    text = output.decode(errors="replace").replace("\r\n", "\n")
    if not (exited or (pattern and pattern.search(output))):
        pytest.fail(f"QEMU gave no {until or 'exit'} in {timeout:.0f}s: {' '.join(command)}\n{text[-4000:]}")
    return Console(text, seconds, exited)


def cpio_members(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, content) of a newc cpio archive."""
    members: dict[str, tuple[int, bytes]] = {}
    offset = 0
    while True:
        assert archive[offset : offset + 6] == b"070701", f"no newc header at {offset}"
        fields = [int(archive[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = archive[offset + 110 : offset + 110 + namesize - 1].decode()
        start = offset + 110 + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return members
        members[name] = (mode, archive[start : start + size])
        offset = start + size + (-size % 4)


def test_kernel_has_virtio_and_the_initramfs_loads_what_it_does_not_build_in(guest: Guest) -> None:
    config = guest_build.kernel_config(guest.config, "CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_NET", "CONFIG_VIRTIO_BLK")
    assert set(config.values()) <= {"y", "m"}, config
    modules = {"CONFIG_VIRTIO_PCI": "virtio_pci", "CONFIG_VIRTIO_NET": "virtio_net"}
    for option, module in modules.items():
        assert (module in guest.modules) == (config[option] == "m"), (option, config[option], guest.modules)

    members = cpio_members(gzip.decompress(guest.initrd.read_bytes()))
    assert members["init"][0] == 0o100755
    assert members["bin/busybox"][1][:4] == b"\x7fELF"
    assert members["dev/console"][0] == 0o020600
    order = members["etc/modules"][1].decode().split()
    assert order == [f"{guest.kernel_release}/{name}.ko" for name in guest.modules]
    for name in guest.modules:  # each after what it depends on
        info = guest_build.modinfo(members[f"lib/modules/{guest.kernel_release}/{name}.ko"][1])
        for dependency in filter(None, info.get("depends", "").split(",")):
            if dependency in guest.modules:
                assert guest.modules.index(dependency) < guest.modules.index(name)


def test_the_initramfs_is_reproducible(guest: Guest, tmp_path: Path) -> None:
    members = cpio_members(gzip.decompress(guest.initrd.read_bytes()))
    release = guest.kernel_release
    modules = [(name, members[f"lib/modules/{release}/{name}.ko"][1]) for name in guest.modules]
    again = guest_build.initramfs(members["bin/busybox"][1], release, modules)
    assert again == guest.initrd.read_bytes()


def test_disk_has_one_active_fat16_partition_that_syslinux_boots(guest: Guest) -> None:
    disk = guest.disk.read_bytes()
    mbr = disk[:512]
    assert mbr[510:] == b"\x55\xaa"
    assert mbr[:440].rstrip(b"\0") == guest_build.MBR_CODE.read_bytes().rstrip(b"\0")
    status, kind = mbr[446], mbr[450]
    start, sectors = struct.unpack_from("<II", mbr, 454)
    assert (status, kind, start) == (0x80, 0x0E, guest_build.PARTITION_START)
    assert (start + sectors) * 512 == len(disk)
    boot_sector = disk[start * 512 : start * 512 + 512]
    assert boot_sector[3:11] == b"SYSLINUX"  # syslinux's boot code is in the partition's boot sector
    assert boot_sector[0x36:0x3E] == b"FAT16   "
    assert struct.unpack_from("<I", boot_sector, 0x1C)[0] == start  # hidden sectors: where it starts


def test_guest_boots_from_kernel_and_initramfs_without_a_network_device(
    guest: Guest, qemu: str, say: Callable[[str], None]
) -> None:
    command = guest_build.qemu_command(guest, kvm=KVM, append="stackops.poweroff")
    assert command[command.index("-nic") + 1] == "none"
    console = boot(command)  # the guest powers off: QEMU exits
    assert console.exited
    say(f"guest: kernel and initramfs on {'KVM' if KVM else 'TCG'}: powered off after {console.seconds:.1f}s")
    assert console.line(MARKER).startswith(f"{MARKER} (kernel {guest.kernel_release},")
    assert console.line(ADDRESS_MARKER) == f"{ADDRESS_MARKER} none (no NIC)"
    assert "insmod" not in console.text, console.text
    assert "Kernel panic" not in console.text


def test_guest_boots_from_the_whole_disk(guest: Guest, qemu: str, say: Callable[[str], None]) -> None:
    console = boot(guest_build.qemu_command(guest, disk=True, kvm=KVM), until=re.escape(ADDRESS_MARKER))
    say(f"guest: whole disk on {'KVM' if KVM else 'TCG'}: booted after {console.seconds:.1f}s")
    assert "SYSLINUX" in console.text
    # syslinux.cfg's command line, with syslinux's BOOT_IMAGE= before it and initrd= after
    assert guest_build.DISK_CMDLINE in console.line("[    0.000000] Command line:")
    assert console.line(MARKER)
    assert console.line(ADDRESS_MARKER) == f"{ADDRESS_MARKER} none (no NIC)"


def test_guest_takes_an_address_by_dhcp_and_reads_its_instance_id(
    guest: Guest, qemu: str, tmp_path: Path, say: Callable[[str], None]
) -> None:
    """QEMU's user-mode network, restricted: its DHCP server on 169.254.169.0/24 and, for the metadata
    address, a responder that QEMU runs here; restrict=on drops everything else."""
    responder = tmp_path / "metadata.py"
    responder.write_text(METADATA_RESPONDER)
    assert "," not in f"{sys.executable} {responder}"
    netdev = (
        "user,id=net0,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dhcpstart=169.254.169.15,"
        f"guestfwd=tcp:169.254.169.254:80-cmd:{sys.executable} {responder}"
    )
    network = ("-netdev", netdev, "-device", "virtio-net-pci,netdev=net0")
    console = boot(guest_build.qemu_command(guest, kvm=KVM, append="stackops.poweroff", network=network))
    say(f"guest: DHCP and metadata on {'KVM' if KVM else 'TCG'}: powered off after {console.seconds:.1f}s")
    assert console.line(MARKER)
    assert console.line(ADDRESS_MARKER) == f"{ADDRESS_MARKER} eth0 169.254.169.15/24"
    assert console.line(METADATA_MARKER) == f"{METADATA_MARKER} {INSTANCE_ID}"
