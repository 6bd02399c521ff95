"""Per-account request rate limits: a token bucket per account, as EC2 throttles."""

from __future__ import annotations

import threading
import time

from gureum.api.exceptions import RequestLimitExceeded


class RateLimiter:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, account_id: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(account_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[account_id] = (tokens, now)
                raise RequestLimitExceeded("Request limit exceeded.")
            self._buckets[account_id] = (tokens - 1, now)
