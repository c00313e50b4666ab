"""One HTTP POST of a webhook, to an address the SSRF guard has checked.

urllib3 is told to connect to the checked IP address while the request
carries the URL's Host header and, for https, its server name (SNI) and
certificate check; resolving the name again here could return another,
private address. Redirects are not followed (a 3xx is a failure, as at
Stripe and Svix), and the whole attempt, answer included, has a deadline.
"""

import time
from dataclasses import dataclass

import certifi
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ConnectTimeoutError

from .ssrf import Target

RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "Northwind-CRM-Webhooks/1.0"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: float
    error: str | None = None
    response_body: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pool(target: Target, address: str, timeout: float):
    options = dict(
        host=address,
        port=target.port,
        timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        retries=False,
        maxsize=1,
    )
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            **options,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
    return urllib3.HTTPConnectionPool(**options)


def _read_excerpt(response, deadline: float) -> str:
    chunks, size = [], 0
    while size < RESPONSE_EXCERPT_BYTES and time.monotonic() < deadline:
        chunk = response.read(256)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Outcome:
    """POST ``body``; never raises for network trouble, which is an Outcome with ``error``."""
    started = time.monotonic()
    deadline = started + timeout
    headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000, 3)

    error = "no address to connect to"
    for address in target.addresses:
        pool = _pool(target, address, timeout)
        try:
            try:
                response = pool.urlopen(
                    "POST", target.path, body=body, headers=headers, redirect=False,
                    preload_content=False, assert_same_host=False, release_conn=False,
                )
            except (NewConnectionError, ConnectTimeoutError) as connect_error:
                error = f"cannot connect to {address}: {_reason(connect_error)}"
                continue  # the next address of the host, as a browser would
            except HTTPError as http_error:
                return Outcome(None, elapsed(), _reason(http_error))
            try:
                excerpt = _read_excerpt(response, deadline)
            except HTTPError as read_error:
                excerpt = f"(answer unreadable: {_reason(read_error)})"
            finally:
                response.release_conn()
            status_error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
            return Outcome(response.status, elapsed(), status_error, excerpt)
        finally:
            pool.close()
    return Outcome(None, elapsed(), error)


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    text = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
    return text[:300]
