"""The images a service runs, declared in its module: what rendering names them by, the Kolla user
they run as, and what stackops' own images install (hack/images/build.py builds them from these).

Two kinds: an OpenStack service's images hold its Python package, the release's requirement
(stackops.api.releases), on top of openstack-base; infrastructure images (databases, OVN, libvirt)
hold Debian's packages on top of base.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KollaUser:
    """A user of Kolla's images. The uid is Kolla's, so that pods run as it and own their volumes
    (runAsUser, fsGroup) on Kolla's images and stackops' alike."""

    name: str
    uid: int
    home: str = "/"


ROOT = KollaUser("root", 0)


@dataclass(frozen=True)
class OpenStackImage:
    """One image of an OpenStack service: what it installs beyond the service's package."""

    name: str
    apt: tuple[str, ...] = ()  # Debian packages
    pip: tuple[str, ...] = ()  # PyPI packages of this image alone (nova-compute's libvirt binding)
    build_deps: tuple[str, ...] = ()  # Debian packages needed only to build `pip`, removed after
    # Acts as root through sudo and the service's rootwrap, as Kolla's agents do (namespaces,
    # mounts, privsep daemons): the image gets sudo and Kolla's sudoers rule for `<service>-rootwrap`.
    root_helper: bool = False


@dataclass(frozen=True)
class OpenStackImages:
    """An OpenStack service's images, all running as its Kolla user. With more than one, the
    service's package is installed once, in an image of their own they all build on."""

    user: KollaUser
    images: tuple[OpenStackImage, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(image.name for image in self.images)


@dataclass(frozen=True)
class DebianImage:
    """An infrastructure image, made of Debian's packages alone. `aliases` are more names of the
    same build: Kolla has one image per process where one set of packages serves several (OVN's
    databases and northd)."""

    name: str
    apt: tuple[str, ...]
    user: KollaUser = ROOT
    aliases: tuple[str, ...] = ()
    # users of other images whose files this one's processes use as theirs: libvirt runs guests as
    # nova (qemu.conf), on instance disks nova-compute writes
    peers: tuple[KollaUser, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)
