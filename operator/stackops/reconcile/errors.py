"""Every failure is classified once: permanent (a person must act) or temporary (retry with backoff).

Permanent errors become a condition and an Event and are not retried in a loop; the periodic
check looks again later, so a fix outside the spec (say, RBAC) is still picked up. Temporary
errors are retried with growing delays.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from stackops.api.validation import InvalidCloud
from stackops.credentials import MissingCredentialError
from stackops.kube.issuer import IssuerWithoutCA, WaitingForCertificates
from stackops.render.templates import TemplateError
from stackops.services.base import RenderError

MAX_DELAY = 60.0


@dataclass(frozen=True)
class Failure:
    permanent: bool
    reason: str  # CamelCase, for conditions and Events
    message: str


def backoff(retry: int, base: float = 2.0, cap: float = MAX_DELAY) -> float:
    return float(min(cap, base * (1.5 ** max(retry, 0))))


def classify(error: BaseException) -> Failure:
    if isinstance(error, InvalidCloud):
        return Failure(True, "InvalidSpec", "; ".join(error.problems))
    if isinstance(error, RenderError):
        return Failure(True, "InvalidSpec", str(error))
    if isinstance(error, TemplateError):
        return Failure(True, "TemplateError", str(error))
    if isinstance(error, MissingCredentialError):
        return Failure(True, "MissingCredential", str(error))
    if isinstance(error, WaitingForCertificates):  # cert-manager issues them in its own time
        return Failure(False, "WaitingForCertificates", str(error))
    if isinstance(error, IssuerWithoutCA):
        return Failure(True, "InvalidSpec", str(error))
    if isinstance(error, ApiException):
        status = error.status or 0
        if status in (409, 429) or status >= 500:
            return Failure(False, "ApiUnavailable", f"API server answered {status} {error.reason}")
        if status in (401, 403):
            return Failure(True, "Forbidden", f"API server refused: {status} {error.reason}")
        return Failure(True, "ApiRejected", f"API server rejected an object: {status} {_api_message(error)}")
    if isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | socket.timeout | TimeoutError):
        return Failure(False, "ApiUnreachable", f"API server not reachable: {type(error).__name__}")
    return Failure(False, "InternalError", f"{type(error).__name__}: {error}")


def _api_message(error: ApiException) -> str:
    import json

    try:
        return str(json.loads(error.body or "{}").get("message", error.reason))
    except ValueError:
        return str(error.reason)
