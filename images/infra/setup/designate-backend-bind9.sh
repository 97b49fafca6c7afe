# BIND 9 for designate: named runs as designate (Kolla's uid), with the config kolla_start copies into
# /etc/bind (the package's own files there would be read otherwise) and its zones in /var/lib/bind,
# the pod's volume.
rm -f /etc/bind/named.conf /etc/bind/named.conf.* /etc/bind/rndc.key /etc/bind/rndc.conf
chown -R designate:designate /etc/bind /var/lib/bind /var/cache/bind
