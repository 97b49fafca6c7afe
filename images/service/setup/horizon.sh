# horizon: the settings stackops renders live in /etc/openstack-dashboard, linked from where Django
# looks for them; the static files are collected and compressed at start (kolla_extend_start), with
# those settings, into site-packages/static, which the rendered uWSGI config serves at /static.
site=$(/var/lib/kolla/venv/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
install -d -o horizon -g horizon -m 0750 /etc/openstack-dashboard
install -d -o horizon -g horizon -m 0755 "$site/static"
ln -sf /etc/openstack-dashboard/local_settings.py "$site/openstack_dashboard/local/local_settings.py"
cat > /usr/local/bin/kolla_extend_start <<'START'
#!/bin/sh
# horizon's start step: static files for the settings this container was given
set -eu
manage="/var/lib/kolla/venv/bin/python3 -m django"
export DJANGO_SETTINGS_MODULE=openstack_dashboard.settings
$manage collectstatic --noinput --clear --verbosity 0
$manage compress --force --verbosity 0
START
chmod 0755 /usr/local/bin/kolla_extend_start
