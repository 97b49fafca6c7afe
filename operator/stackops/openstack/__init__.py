"""OpenStack API I/O through openstacksdk: registration in the catalog, and later health checks."""
