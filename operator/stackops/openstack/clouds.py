"""A cloud's admin credentials as an OpenStack clouds.yaml, the file `openstack --os-cloud NAME` reads."""

from __future__ import annotations

from typing import Any

from stackops.services.keystone import ADMIN_PASSWORD_KEY, ADMIN_PROJECT, ADMIN_USER


def clouds_yaml(name: str, auth_url: str, password: str, region: str) -> dict[str, Any]:
    """One entry, `name`, for the cloud's admin in the admin project, through the public interface."""
    return {
        "clouds": {
            name: {
                "auth": {
                    "auth_url": auth_url,
                    "username": ADMIN_USER,
                    "password": password,
                    "project_name": ADMIN_PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": region,
                "interface": "public",
                "identity_api_version": 3,
            }
        }
    }


__all__ = ["ADMIN_PASSWORD_KEY", "clouds_yaml"]
