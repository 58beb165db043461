"""Requests per key, a sliding window in the shared cache (Redis in production), with the
``RateLimit-*`` and ``Retry-After`` headers (set by ``PartnerAPIMixin``)."""

from __future__ import annotations

import math

from rest_framework.throttling import SimpleRateThrottle

from ._state import counter_decr, counter_incr
from .models import ApiKey


class ApiKeyThrottle(SimpleRateThrottle):
    """Requests per key (per staff user for sessions), in the shared cache.

    A sliding window estimated from two fixed-window counters (this window's and the
    previous one's, weighted by how much of it still overlaps the sliding window): one
    round trip per request whatever the rate (with Redis: increment one counter, read the
    other). DRF's own throttle keeps a list of every request time of the last window and
    rewrites it on every request."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window, self.elapsed = divmod(self.now, self.duration)
        current_name, previous_name = f"{self.key}:{int(window)}", f"{self.key}:{int(window) - 1}"
        # Count first, then look: two requests racing for the last place cannot both win.
        counts = counter_incr(current_name, previous_name, int(2 * self.duration) + 1)
        if counts is None:
            return True  # no counters without Redis: let it through (logged)
        self.current, self.previous = counts
        weight = 1 - self.elapsed / self.duration
        allowed = self.previous * weight + self.current <= self.num_requests
        if not allowed:  # a refused request does not count
            counter_decr(current_name)
            self.current -= 1
        used = self.previous * weight + self.current
        remaining = max(0, math.floor(self.num_requests - used))
        reset = max(0, math.ceil(self.duration - self.elapsed))
        request._ratelimit = (self.num_requests, remaining, reset)
        return allowed

    def wait(self):
        """Seconds until one more request fits in the sliding window."""
        limit = self.num_requests - 1
        if self.current > limit:
            # This window alone is full: wait for it to end, then for enough of it to slide
            # out of the next one.
            seconds = (self.duration - self.elapsed) + self.duration * (1 - limit / self.current)
        elif self.previous:
            seconds = self.duration * (1 - (limit - self.current) / self.previous) - self.elapsed
        else:
            seconds = self.duration - self.elapsed
        return max(1, math.ceil(seconds))
