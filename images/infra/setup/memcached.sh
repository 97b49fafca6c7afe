# Where kolla_start puts the server's certificate, key and the cloud's CA (services/memcached.py,
# TLS_FILES), writable by memcached: the package makes no directory of its own under /etc.
install -d -o memcached -g memcached -m 0750 /etc/memcached
