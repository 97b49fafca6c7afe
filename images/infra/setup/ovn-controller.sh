# ovn-controller's run directory and Open vSwitch's socket directory (shared with the chassis pod's
# openvswitch containers through a host path on a node, made here for a container on its own).
install -d -m 0755 /run/ovn /var/lib/ovn /var/log/ovn /run/openvswitch
