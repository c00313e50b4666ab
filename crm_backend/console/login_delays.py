"""Growing waits after failed console sign-ins, per (e-mail, client address).

A lockout that counts failures per e-mail lets anyone lock an agent out by
typing their address five times. Here failures are counted per e-mail *and*
address: after ``CONSOLE_LOGIN_FREE_FAILURES`` of them, the next try from
that address waits 1 s, then 2, 4, ... up to ``CONSOLE_LOGIN_MAX_DELAY``; the
count is forgotten ``CONSOLE_LOGIN_FAILURE_WINDOW`` seconds after the first
failure, and at once after a success. The right password from another
address, or after the wait, signs in. Besides, one address may fail at
most ``CONSOLE_LOGIN_LIMIT`` times over all e-mails (guessing many accounts).

Counters live in the rate limiter's storage (crm_backend/rate_limits.py:
per process with ``memory://``, shared by every worker and machine with
Redis), counted with the ``limits`` library Flask-Limiter is built on. When
that storage fails, this process counts in its own memory meanwhile.
"""

import hashlib
import logging
import math
import time
from collections.abc import Callable

from flask import Flask
from flask_limiter import Limiter
from limits import parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)
ADDRESS_NAMESPACE = "console-login-address"


def _as_tuple(exceptions) -> tuple:
    return exceptions if isinstance(exceptions, tuple) else (exceptions,)


class LoginDelays:
    def __init__(self, limiter: Limiter, free_failures: int, max_delay: int, window: int, address_limit: str = ""):
        self.limiter = limiter
        self.free_failures = max(1, free_failures)
        self.max_delay = max(1, max_delay)
        self.window = max(1, window)
        self.address_limits = parse_many(address_limit) if address_limit.strip() else []
        self._local = MemoryStorage()

    def _with_storage(self, use: Callable[[Storage], object]):
        storage: Storage = self.limiter.limiter.storage
        try:
            return use(storage)
        except (StorageError, *_as_tuple(storage.base_exceptions)) as error:
            log.warning("sign-in delays: the shared counters do not answer (%s); counting here", type(error).__name__)
            return use(self._local)

    @staticmethod
    def _keys(email: str, address: str) -> tuple[str, str]:
        # Hashed: the storage (Redis) never holds an agent's e-mail.
        digest = hashlib.sha256(f"{email.strip().lower()}\n{address}".encode()).hexdigest()[:32]
        return f"console-login-failures/{digest}", f"console-login-wait/{digest}"

    def wait_seconds(self, email: str, address: str) -> int:
        """How long this e-mail must wait before trying again from this address (0: it may try now)."""
        _, wait_key = self._keys(email, address)

        def seconds(storage: Storage) -> float:
            waits = [storage.get_expiry(wait_key) if storage.get(wait_key) > 0 else 0.0]
            addresses = FixedWindowRateLimiter(storage)
            for item in self.address_limits:
                if not addresses.test(item, ADDRESS_NAMESPACE, address):
                    waits.append(addresses.get_window_stats(item, ADDRESS_NAMESPACE, address).reset_time)
            return max(waits) - time.time()

        remaining = self._with_storage(seconds)
        return max(1, math.ceil(remaining)) if remaining > 0 else 0

    def failed(self, email: str, address: str) -> int:
        """Count a failure; the wait it imposes on the next try of this e-mail from this address (0: none yet)."""
        failures_key, wait_key = self._keys(email, address)

        def count(storage: Storage) -> int:
            addresses = FixedWindowRateLimiter(storage)
            for item in self.address_limits:
                addresses.hit(item, ADDRESS_NAMESPACE, address)
            failures = storage.incr(failures_key, self.window)
            if failures < self.free_failures:
                return 0
            delay = min(self.max_delay, 2 ** min(failures - self.free_failures, 16))
            storage.clear(wait_key)
            storage.incr(wait_key, delay)
            return delay

        return self._with_storage(count)

    def succeeded(self, email: str, address: str) -> None:
        def forget(storage: Storage) -> None:
            for key in self._keys(email, address):
                storage.clear(key)

        self._with_storage(forget)


def init_app(app: Flask) -> LoginDelays:
    config = app.config
    delays = LoginDelays(
        app.extensions["crm_limiter"],
        free_failures=int(config["CONSOLE_LOGIN_FREE_FAILURES"]),
        max_delay=int(config["CONSOLE_LOGIN_MAX_DELAY"]),
        window=int(config["CONSOLE_LOGIN_FAILURE_WINDOW"]),
        address_limit=config["CONSOLE_LOGIN_LIMIT"],
    )
    app.extensions["console_login_delays"] = delays
    return delays
