"""Sliding-window rate limits, counted in this process's memory.

Each replica keeps its own counts: behind a load balancer that spreads requests over N replicas a client
may get up to N times the limit, and a restart forgets every count. For the link pages this is enough to
make guessing tokens hopeless and to stop one address's links being hammered; a shared store would only
be needed for exact limits across replicas.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from dispute_service.config import Settings


class SlidingWindow:
    """At most `limit` uses per key in any `window` seconds. Times are the caller's (the app's clock)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._uses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # sync routes run on a thread pool
        self._swept_at = -math.inf

    def wait(self, key: str, now: float) -> int | None:
        """Whole seconds until `key` may be used again, or None when it may be used now."""
        with self._lock:
            return self._wait(key, now)

    def use(self, key: str, now: float) -> int | None:
        """Count a use of `key`, unless it is over its limit: then count nothing and return the wait."""
        with self._lock:
            wait = self._wait(key, now)
            if wait is None:
                self._uses.setdefault(key, deque()).append(now)
            return wait

    def _wait(self, key: str, now: float) -> int | None:
        self._sweep(now)
        uses = self._uses.get(key)
        if uses is None:
            return None
        while uses and uses[0] <= now - self.window:
            uses.popleft()
        if len(uses) < self.limit:
            return None
        # The oldest use in the window leaves it first.
        return max(1, math.ceil(uses[0] + self.window - now))

    def _sweep(self, now: float) -> None:
        # Once a window, forget keys with no use left in it, so the table holds only recent clients.
        if now - self._swept_at < self.window:
            return
        self._swept_at = now
        for key in [k for k, uses in self._uses.items() if not uses or uses[-1] <= now - self.window]:
            del self._uses[key]


class SignInLimits:
    """Sign-in attempts per client (its IP address): each begins a round trip to the identity provider,
    and each refusal is a guess."""

    def __init__(self, settings: Settings) -> None:
        self.per_client = SlidingWindow(settings.sign_ins_per_client, settings.rate_limit_window_seconds)


class LinkLimits:
    """Uses of email links: per address (the link's person) and per client (its IP address)."""

    def __init__(self, settings: Settings) -> None:
        window = settings.rate_limit_window_seconds
        self.per_address = SlidingWindow(settings.link_uses_per_address, window)
        self.per_client = SlidingWindow(settings.link_uses_per_client, window)


# Codes and renewals each send an email to the address: counted by the hour, so that an address cannot be
# flooded, whatever the window of the link limits.
_HOUR = 3600.0


class LinkReadingLimits:
    """Asking for one-time codes and for fresh links: per address (the link's person, or the address typed
    at /links/renew) and per client (its IP address), the two kinds of request together per client."""

    def __init__(self, settings: Settings) -> None:
        self.codes_per_address = SlidingWindow(settings.link_codes_per_address, _HOUR)
        self.renewals_per_address = SlidingWindow(settings.link_renewals_per_address, _HOUR)
        self.per_client = SlidingWindow(settings.link_reading_per_client, settings.rate_limit_window_seconds)
