"""The jinja2 environment: templates of Kubernetes objects, rendered to plain dicts.

Templates write YAML; structured values are inserted with `tojson` (JSON is YAML), so quoting never
depends on what a value contains. StrictUndefined turns a misspelt variable into an error.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2
import yaml

from stackops.render import kolla


class TemplateError(Exception):
    """A template that does not render or does not parse: a bug in stackops, never retried."""


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("stackops", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # YAML and INI, not HTML
    )
    env.filters["tojson"] = _tojson
    # the Kolla contract, written once: every Kolla container gets this env var and config mount
    env.globals["kolla_env"] = kolla.CONFIG_STRATEGY_ENV
    env.globals["kolla_config_mount"] = kolla.config_mount("config")
    return env


def render_text(template: str, **values: Any) -> str:
    try:
        return environment().get_template(template).render(**values)
    except jinja2.TemplateError as error:
        raise TemplateError(f"template {template}: {error}") from error


def render_objects(template: str, **values: Any) -> list[dict[str, Any]]:
    """Every YAML document a template renders, empty documents dropped."""
    text = render_text(template, **values)
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise TemplateError(f"template {template} rendered invalid YAML: {error}") from error
    objects = [d for d in documents if d is not None]
    for obj in objects:
        if not isinstance(obj, dict) or "kind" not in obj:
            raise TemplateError(f"template {template} rendered a document that is not a Kubernetes object")
    return objects
