"""Rasa's HTTP calls to the action server serialise their JSON with ujson.

For every custom action (and every form validation) Rasa posts the whole
tracker state and the domain to the action server (35–60 KB of JSON),
serialised on its event loop by aiohttp with ``json.dumps``: 7 % of the Rasa
process's busy time under load (docs/benchmarks.md, "Conversations",
2026-12-02). ``ujson`` (already installed: Sanic depends on it) writes the
same JSON document in about 40 % of the time; the action server reads the
same values (ujson escapes ``/`` as ``\\/``, which every JSON parser reads
back as ``/``; NaN is written as ``NaN``, as ``json.dumps`` does). Anything
ujson refuses falls back to ``json.dumps``, so what worked before still
works, and what failed before fails with the same error.

``install`` makes ``rasa.utils.endpoints.EndpointConfig.session`` (the
session Rasa opens per action-server, NLG or model-server request) use it.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import ujson
from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.utils.endpoints import EndpointConfig


def dumps(value: Any) -> str:
    try:
        return ujson.dumps(value, ensure_ascii=True)
    except (OverflowError, TypeError, ValueError):
        return json.dumps(value)


def _session(self: EndpointConfig) -> aiohttp.ClientSession:
    """Rasa 3.6's ``EndpointConfig.session``, with ``json_serialize=dumps``."""
    if self.basic_auth:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
    else:
        auth = None
    return aiohttp.ClientSession(
        headers=self.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        json_serialize=dumps,
    )


def install() -> None:
    EndpointConfig.session = _session
