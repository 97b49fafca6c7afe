# OVN's run and database directories (made by the init scripts on a host): the rendered start scripts
# put pid files, control sockets and databases there.
install -d -m 0755 /run/ovn /var/lib/ovn /var/log/ovn
