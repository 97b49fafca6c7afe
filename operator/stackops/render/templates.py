"""The jinja2 environment: templates of Kubernetes objects, rendered to plain dicts.

Templates write YAML; structured values are inserted with `tojson` (JSON is YAML), so quoting never
depends on what a value contains. StrictUndefined turns a misspelt variable into an error.
"""

from __future__ import annotations

import json
import os
import pickle
from functools import cache, lru_cache
from typing import Any

import jinja2
import yaml

from stackops.cache import cache_root
from stackops.render import kolla
from stackops.render.output import BOOL_TAG, INT_TAG, MAP_TAG, NULL_TAG, SEQ_TAG, STR_TAG

# libyaml's parser where PyYAML was built with it: parsing the templates' output is most of a render
# with the pure-Python one. Both give the same objects (tests/unit/test_render.py compares them).
_PARSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# a short plain scalar's tag (its text alone decides it), for texts that come back in every object
_SCALAR_TAGS: dict[tuple[str, tuple[bool, bool]], str] = {}


class _ObjectLoader(_PARSER):  # type: ignore[valid-type,misc]
    """The parser, building the plain tags (mappings, lists, strings, integers, booleans, nulls) in one
    recursive pass instead of the safe constructor's generators, which were half of a first render.

    Anything else (floats, timestamps, merge keys, a key that is not a string) goes to the safe
    constructor, so the objects are the same as PyYAML's safe_load gives.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        return self._build(node)

    # No path resolvers are registered: libyaml asks for each node all the same.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or not implicit[0] or len(value) > 64:
            return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]
        key = (value, implicit)
        tag = _SCALAR_TAGS.get(key)
        if tag is None:
            if len(_SCALAR_TAGS) > 100_000:
                _SCALAR_TAGS.clear()
            tag = _SCALAR_TAGS[key] = super().resolve(kind, value, implicit)
        return tag

    def _build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == STR_TAG:
            return node.value
        if tag == MAP_TAG:
            pairs = node.value
            if all(key.tag == STR_TAG for key, _ in pairs):
                return {key.value: self._build(value) for key, value in pairs}
        elif tag == SEQ_TAG:
            return [self._build(item) for item in node.value]
        elif tag == INT_TAG:
            return self.construct_yaml_int(node)
        elif tag == BOOL_TAG:
            return self.bool_values[node.value.lower()]
        elif tag == NULL_TAG:
            return None
        constructed = self.construct_object(node, deep=True)
        self.constructed_objects.clear()
        return constructed


LOADER: type[yaml.SafeLoader] = _ObjectLoader


class TemplateError(Exception):
    """A template that does not render or does not parse: a bug in stackops, never retried."""


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between processes: compiling them is a third of a `stackops render`.

    jinja2 keys each entry by the template's source checksum, so an edited template is compiled
    again. A cache that cannot be written (read-only home in a pod) only costs the compile.
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            self.directory_ready()
            super().dump_bytecode(bucket)
        except OSError:
            pass

    def directory_ready(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("stackops", "templates"),
        bytecode_cache=_BytecodeCache(str(cache_root() / "jinja2" / jinja2.__version__)),
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
    except (TypeError, AttributeError, KeyError, IndexError) as error:
        # a value a template or its filters cannot handle (tojson of an undefined): a bug in
        # stackops that no retry mends, so it is a TemplateError too (permanent, named)
        raise TemplateError(f"template {template}: {type(error).__name__}: {error}") from error


def render_objects(template: str, **values: Any) -> list[dict[str, Any]]:
    """Every YAML document a template renders, empty documents dropped."""
    text = render_text(template, **values)
    # fresh objects on every call: callers add annotations to what they get
    objects: list[dict[str, Any]] = pickle.loads(_parsed(template, text))
    for obj in objects:
        if not isinstance(obj, dict) or "kind" not in obj:
            raise TemplateError(f"template {template} rendered a document that is not a Kubernetes object")
    return objects


def forget_parses() -> None:
    """Drop what earlier renders left for the next (benchmarks measure a render without it)."""
    _parsed.cache_clear()
    _SCALAR_TAGS.clear()


@lru_cache(maxsize=1024)
def _parsed(template: str, text: str) -> bytes:
    """The documents a rendered text holds, pickled, kept for the next render of the same text.

    The operator renders every cloud again on each pass, mostly to the same texts; parsing them is
    most of a render, unpickling a copy a tenth of it. Bounded: about ten clouds' worth.
    """
    try:
        documents = list(yaml.load_all(text, Loader=LOADER))
    except yaml.YAMLError as error:
        raise TemplateError(f"template {template} rendered invalid YAML: {error}") from error
    return pickle.dumps([d for d in documents if d is not None], protocol=pickle.HIGHEST_PROTOCOL)
