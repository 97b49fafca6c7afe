# manila: its privileged calls (lvcreate, mount, exportfs) go through its privsep daemon, which
# manila.conf starts with `sudo manila-rootwrap ... privsep-helper` ([manila_sys_admin]
# helper_command): rootwrap lets exactly that command line through, with manila's config and its
# privsep context (manila ships no such filter); root-owned, as rootwrap filters must be
cat > /etc/manila/rootwrap.d/privsep.filters <<'FILTERS'
[Filters]
privsep-rootwrap-sys_admin: RegExpFilter, privsep-helper, root, privsep-helper, --config-file, /etc/manila/manila.conf, --privsep_context, manila.privsep.sys_admin_pctxt, --privsep_sock_path, /tmp/.*
FILTERS
