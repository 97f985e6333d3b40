"""A client-side rate limiter: each endpoint stays under its per-window limit, and slows down on 429.

ClearTax counts requests per customer, endpoint and minute and answers 429 above the limit. The
limiter keeps a log of the send times of each endpoint over a sliding window (the same measure the
server applies), so at most ``limit`` requests of an endpoint start in any window. When the server
still answers 429 (another client shares the token, or the limit is lower than configured), the
allowance of that endpoint is halved; every accepted request then earns back a fraction of a slot
(additive increase, multiplicative decrease).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping

#: ClearTax's documented per-minute limits of the endpoints the bulk engine and triggers call.
DEFAULT_RATE_LIMITS: dict[str, int] = {
    "generate": 1000,
    "generate_async": 1000,
    "generate_with_file": 1000,
    "get_invoice": 1000,
    "get_bulk": 10,
    "embedded_pdf": 150,
    "email": 10,
    "print_pdf": 1000,
}


class _Endpoint:
    """The window log and the current allowance of one endpoint."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.allowance = float(limit)
        self.sent: collections.deque[float] = collections.deque()
        self.lock = asyncio.Lock()
        self.throttled = 0
        self.last_cut = float("-inf")


class RateLimiter:
    """Keep every endpoint under its request limit per window; back off when the server says 429.

    One limiter is meant to be shared by every request to one ClearTax account (it implements the
    pipeline's :class:`~airflow_provider_cleartax.client.pipeline.Throttle`).

    :param limits: requests per window by endpoint name; endpoints not named are not limited.
        Defaults to ClearTax's documented per-minute limits.
    :param window: length of the window in seconds (ClearTax: 60).
    :param slack: extra seconds a request stays counted after its window, because the server
        counts arrivals, which come a little later than sends.
    :param min_allowance: smallest allowance the 429 back-off can shrink an endpoint to.
    :param clock: monotonic clock, for tests.
    """

    def __init__(
        self,
        *,
        limits: Mapping[str, int] | None = None,
        window: float = 60.0,
        slack: float | None = None,
        min_allowance: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        chosen = DEFAULT_RATE_LIMITS if limits is None else limits
        for name, limit in chosen.items():
            if int(limit) < 1:
                raise ValueError(f"rate limit of {name!r} must be at least 1, got {limit!r}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window!r}")
        self.window = float(window)
        self.slack = self.window * 0.02 if slack is None else float(slack)
        self.min_allowance = float(min_allowance)
        self._clock = clock
        self._endpoints = {name: _Endpoint(int(limit)) for name, limit in chosen.items()}

    def __repr__(self) -> str:
        limits = {name: state.limit for name, state in self._endpoints.items()}
        return f"RateLimiter(limits={limits!r}, window={self.window!r})"

    def allowance(self, endpoint: str) -> float | None:
        """Return how many requests of ``endpoint`` may currently start per window (``None``: unlimited).

        :param endpoint: canonical endpoint name.
        """
        state = self._endpoints.get(endpoint)
        return None if state is None else state.allowance

    def throttled(self, endpoint: str) -> int:
        """Return how many 429 answers ``endpoint`` got so far.

        :param endpoint: canonical endpoint name.
        """
        state = self._endpoints.get(endpoint)
        return 0 if state is None else state.throttled

    async def acquire(self, endpoint: str) -> None:
        """Wait until one more request to ``endpoint`` fits in its window, and count it.

        :param endpoint: canonical endpoint name.
        """
        state = self._endpoints.get(endpoint)
        if state is None:
            return
        # One waiter at a time per endpoint keeps the order fair and the log consistent.
        async with state.lock:
            while True:
                now = self._clock()
                horizon = now - self.window - self.slack
                while state.sent and state.sent[0] <= horizon:
                    state.sent.popleft()
                if len(state.sent) < max(int(state.allowance), 1):
                    state.sent.append(now)
                    return
                # The allowance may have shrunk below the log: wait for enough entries to expire.
                excess = len(state.sent) - max(int(state.allowance), 1)
                await asyncio.sleep(max(state.sent[excess] - horizon, 0.001))

    def record(self, endpoint: str, status: int | None) -> None:
        """Adapt the allowance of ``endpoint`` to an answer: halve it on 429, grow it slowly otherwise.

        :param endpoint: canonical endpoint name.
        :param status: HTTP status of the answer, ``None`` when none came.
        """
        state = self._endpoints.get(endpoint)
        if state is None or status is None:
            return
        if status == 429:
            state.throttled += 1
            now = self._clock()
            # The requests in flight when the first 429 came all meet the same limit: cut once for them.
            if now - state.last_cut >= self.window / 10:
                state.last_cut = now
                state.allowance = max(state.allowance / 2, self.min_allowance)
        elif state.allowance < state.limit:
            # About one slot regained per window's worth of accepted requests.
            state.allowance = min(state.allowance + 1 / max(state.allowance, 1.0), float(state.limit))
