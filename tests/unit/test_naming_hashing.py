from __future__ import annotations

import copy
from typing import Any

from stackops.render.hashing import content_hash, name_job_by_spec
from stackops.render.naming import common_labels, fit, object_name


def test_names_are_prefixed_by_the_cloud() -> None:
    assert object_name("demo", "keystone", "api") == "demo-keystone-api"


def test_long_names_are_cut_to_a_dns_label_and_stay_unique() -> None:
    a = fit("x" * 70 + "-a")
    b = fit("x" * 70 + "-b")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert fit("x" * 70 + "-a") == a  # stable


def test_common_labels() -> None:
    assert common_labels("demo", "keystone", "api") == {
        "app.kubernetes.io/name": "keystone",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "api",
        "app.kubernetes.io/part-of": "openstack",
        "app.kubernetes.io/managed-by": "stackops",
        "stackops.dev/cloud": "demo",
    }


def test_content_hash_ignores_key_order() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_job_name_carries_the_hash_of_its_spec() -> None:
    job: dict[str, Any] = {"metadata": {"name": "demo-keystone-db-sync"}, "spec": {"template": {"image": "a"}}}
    same = name_job_by_spec(copy.deepcopy(job))["metadata"]["name"]
    assert same == name_job_by_spec(copy.deepcopy(job))["metadata"]["name"]
    assert same.startswith("demo-keystone-db-sync-") and len(same) == len("demo-keystone-db-sync-") + 8
    job["spec"]["template"]["image"] = "b"
    assert name_job_by_spec(job)["metadata"]["name"] != same
