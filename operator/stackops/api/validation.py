"""Turning user input into an OpenStackCloud, with one plain line per problem.

Users see these lines from `stackops validate`, `stackops render` and in the cloud's status, so each
names the field (as a dotted path, the way it is written in YAML) and says what is wrong.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from stackops.api.models import OpenStackCloud
from stackops.api.releases import SUPPORTED_RELEASES

# pydantic names the member of a union it tried in the error location; users never wrote those.
_UNION_MEMBERS = {"int", "str", "float", "bool", "function-after", "function-before"}


class InvalidCloud(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if str(p) not in _UNION_MEMBERS]
    return ".".join(parts) or "(document)"


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error" and error["loc"][-1:] == ("release",):
        return f"unsupported release {error['input']!r} (supported: {', '.join(SUPPORTED_RELEASES)})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def problems_of(error: ValidationError) -> list[str]:
    return [f"{_path(e['loc'])}: {_message(dict(e))}" for e in error.errors(include_url=False)]


def parse_cloud(document: Any) -> OpenStackCloud:
    """Validate one parsed YAML/JSON document; raises InvalidCloud listing every problem."""
    if not isinstance(document, dict):
        raise InvalidCloud([f"(document): expected an OpenStackCloud mapping, got {type(document).__name__}"])
    try:
        return OpenStackCloud.model_validate(document)
    except ValidationError as error:
        raise InvalidCloud(problems_of(error)) from None


def load_cloud_text(text: str) -> OpenStackCloud:
    """Parse YAML holding exactly one OpenStackCloud."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InvalidCloud([f"(document): {where}YAML does not parse: {problem}"]) from None
    if len(documents) != 1:
        raise InvalidCloud([f"(document): expected exactly one OpenStackCloud, found {len(documents)} documents"])
    return parse_cloud(documents[0])
