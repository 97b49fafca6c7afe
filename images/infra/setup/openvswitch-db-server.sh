# Open vSwitch's directories (made by the init script on a host). The package's own database is not
# the node's: as Kolla's image does, the database server's container creates conf.db on its volume
# on the first start, and converts it when a newer image brings a newer schema.
install -d -m 0755 /run/openvswitch /var/lib/openvswitch /var/log/openvswitch /etc/openvswitch
rm -f /etc/openvswitch/conf.db /var/lib/openvswitch/conf.db
cat > /usr/local/bin/kolla_extend_start <<'START'
#!/bin/bash
set -euo pipefail
# only the database server's container (the image also runs ovs-vswitchd)
grep -q '"command": "ovsdb-server' /var/lib/kolla/config_files/config.json || exit 0
db=/var/lib/openvswitch/conf.db
schema=/usr/share/openvswitch/vswitch.ovsschema
if [ ! -e "${db}" ]; then
    ovsdb-tool create "${db}" "${schema}"
elif [ "$(ovsdb-tool needs-conversion "${db}" "${schema}")" = yes ]; then
    ovsdb-tool convert "${db}" "${schema}"
fi
START
chmod 0755 /usr/local/bin/kolla_extend_start
