# The server's socket and pid directory (made by the init script on a host), writable by mysql; the
# package's own config files would be read before ours: the rendered my.cnf is the only one.
install -d -o mysql -g mysql -m 0755 /run/mysqld
rm -rf /etc/mysql/mariadb.conf.d /etc/mysql/conf.d /etc/mysql/my.cnf /etc/mysql/mariadb.cnf
install -d -o mysql -g mysql -m 0750 /etc/mysql
