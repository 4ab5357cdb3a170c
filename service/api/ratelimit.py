"""Per-key rate limit: one token bucket per API key name.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens a second; each request
takes one. An empty bucket answers 429 ``rate_limited`` with ``Retry-After`` (whole seconds
until a token is back). Buckets are keyed by key *name* (the secret is never a dict key), so
their number is bounded by the configured keys; in open mode every caller shares the bucket
of ``anonymous``. The clock is monotonic; all calls run on the event loop, so no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.api.errors import ApiError

__all__ = ["RateLimited", "RateLimiter"]


class RateLimited(ApiError):
    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(429, "rate_limited", f"rate limit of key {name!r} exceeded; slow down")
        self.retry_after_s = retry_after_s


class RateLimiter:
    """``take(name)`` spends one token of ``name``'s bucket or raises :class:`RateLimited`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name → (tokens, last refill)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, name: str) -> None:
        if not self.enabled:
            return
        now = self._clock()
        tokens, last = self._buckets.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[name] = (tokens, now)
            raise RateLimited(name, (1.0 - tokens) / self.rate)
        self._buckets[name] = (tokens - 1.0, now)
