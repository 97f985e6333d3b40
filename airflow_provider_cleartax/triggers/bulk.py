"""Wait for many invoices with few calls: Get bulk (500 per call), one shared poller per connection.

ClearTax allows 10 Get bulk calls a minute per customer. Many deferred tasks waiting on the same
connection would each spend that budget; instead every :class:`ClearTaxInvoicesReportedTrigger`
of one connection (and hook parameters) in a triggerer process subscribes to one
:class:`SharedBulkPoller`. The poller asks for the union of the identities its subscribers still
wait for, 500 per call, paced by one rate limiter per connection, and hands every subscriber its
own statuses. Status reads are idempotent, so sharing them cannot change what any trigger sees.
The poller lives while it has subscribers (reference counting) and stops with the last one.

Event payload: ``{"status": "success" | "failed" | "timeout" | "error", "total": int,
"counts": {status: n}, "rejected": {uniqueId: [ErrorList entries]} (first 20), "pending":
[uniqueId] (first 20), "message": str}``, plus ``error_type`` and ``error_detail`` on ``error``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_cleartax.bulk.ratelimit import RateLimiter
from airflow_provider_cleartax.client import api
from airflow_provider_cleartax.client.pipeline import run_async
from airflow_provider_cleartax.client.statuses import FAILURE_STATUSES, SUCCESS_STATUSES
from airflow_provider_cleartax.exceptions import ClearTaxError, ClearTaxPermanentError

if TYPE_CHECKING:
    from airflow_provider_cleartax.client.results import BulkStatusItem

log = logging.getLogger(__name__)

_TERMINAL = SUCCESS_STATUSES | FAILURE_STATUSES
_LISTED = 20

#: Shared pollers by (connection id, hook parameters), and one Get bulk budget per connection.
_POLLERS: dict[tuple[str, str], SharedBulkPoller] = {}
_LIMITERS: dict[str, RateLimiter] = {}


def bulk_limiter(conn_id: str) -> RateLimiter:
    """Return the Get bulk rate limiter every poller of ``conn_id`` in this process shares.

    :param conn_id: Airflow connection id.
    """
    limiter = _LIMITERS.get(conn_id)
    if limiter is None:
        limiter = _LIMITERS[conn_id] = RateLimiter(limits={"get_bulk": api.BULK_CALLS_PER_MINUTE})
    return limiter


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; return whether it was set.

    Unlike ``asyncio.wait_for`` on Python < 3.12, a cancellation arriving just as the event is
    set is never swallowed, so a cancelled trigger always stops.

    :param event: the event to wait for.
    :param timeout: seconds, or ``None`` to wait without end.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)


class _Subscription:
    """One trigger's view: the statuses of its invoices, and a wake-up for each poll cycle."""

    def __init__(self, unique_ids: Sequence[str], poll_interval: float) -> None:
        self.statuses: dict[str, str | None] = dict.fromkeys(unique_ids)
        self.errors: dict[str, list[dict[str, Any]]] = {}
        self.poll_interval = poll_interval
        self.updated = asyncio.Event()
        self.failure: ClearTaxPermanentError | None = None
        self.transient: ClearTaxError | None = None

    def pending(self) -> list[str]:
        return [uid for uid, status in self.statuses.items() if status not in _TERMINAL]

    def update(self, items: Mapping[str, BulkStatusItem]) -> None:
        for uid in self.pending():
            item = items.get(uid)
            if item is None:
                continue
            self.statuses[uid] = item.einvoice_status
            if item.einvoice_status in FAILURE_STATUSES:
                self.errors[uid] = [entry.to_api() for entry in item.error_list]
        self.transient = None
        self.updated.set()


#: How long the final check at the deadline may take: one window of Get bulk's 10/min limit.
_FINAL_CHECK_SECONDS = 60.0


class SharedBulkPoller:
    """Poll Get bulk for the union of the invoices its subscribers wait for, and fan results out.

    :param key: the registry key (connection id and hook parameters).
    :param conn_id: Airflow connection id.
    :param hook_params: keyword arguments of the hook.
    """

    def __init__(self, *, key: tuple[str, str], conn_id: str, hook_params: Mapping[str, Any]) -> None:
        self.key = key
        self.conn_id = conn_id
        self.hook_params = dict(hook_params)
        self.subscriptions: list[_Subscription] = []
        self.cycles = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @classmethod
    def acquire(cls, conn_id: str, hook_params: Mapping[str, Any]) -> SharedBulkPoller:
        """Return the process's poller for this connection and hook parameters, creating it if needed.

        :param conn_id: Airflow connection id.
        :param hook_params: keyword arguments of the hook.
        """
        key = (conn_id, json.dumps(dict(hook_params), sort_keys=True, default=str))
        poller = _POLLERS.get(key)
        if poller is None:
            poller = _POLLERS[key] = cls(key=key, conn_id=conn_id, hook_params=hook_params)
        return poller

    def subscribe(self, subscription: _Subscription) -> None:
        """Add a subscriber and start polling if this is the first."""
        self.subscriptions.append(subscription)
        self._wake.set()  # poll soon for the newcomer instead of at the end of the current sleep
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def wake(self) -> None:
        """Poll now instead of at the end of the current sleep."""
        self._wake.set()

    def unsubscribe(self, subscription: _Subscription) -> None:
        """Remove a subscriber; the last one out stops the poller."""
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        if not self.subscriptions:
            if _POLLERS.get(self.key) is self:
                del _POLLERS[self.key]
            if self._task is not None:
                self._task.cancel()

    async def _run(self) -> None:
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        hook = ClearTaxHook(cleartax_conn_id=self.conn_id, **self.hook_params)
        try:
            session = await hook.asession()
            while self.subscriptions:
                self._wake.clear()
                await self._poll_once(hook, session)
                interval = min(sub.poll_interval for sub in self.subscriptions) if self.subscriptions else 0
                await wait_event(self._wake, interval)
        except ClearTaxPermanentError as error:
            self._fail(error)
        except Exception as error:  # e.g. the connection does not exist: no subscriber may hang on it
            self._fail(ClearTaxPermanentError(f"cannot poll ClearTax: {type(error).__name__}: {error}"))
        finally:
            await hook.aclose()

    def _fail(self, error: ClearTaxPermanentError) -> None:
        for sub in self.subscriptions:
            sub.failure = error
            sub.updated.set()

    async def _poll_once(self, hook: Any, session: api.Session) -> None:
        wanted = list(dict.fromkeys(uid for sub in self.subscriptions for uid in sub.pending()))
        if not wanted:
            return
        found: dict[str, BulkStatusItem] = {}
        try:
            for start in range(0, len(wanted), api.BULK_MAX_IDENTITIES):
                chunk = wanted[start : start + api.BULK_MAX_IDENTITIES]
                items = await run_async(
                    hook.async_client,
                    api.get_bulk_status(session, chunk),
                    throttle=bulk_limiter(self.conn_id),
                )
                found.update(zip(chunk, items))
        except ClearTaxPermanentError:
            raise
        except ClearTaxError as error:
            log.warning("ClearTax get-bulk failed (%s); trying again at the next cycle", error)
            for sub in self.subscriptions:
                sub.transient = error
            return
        self.cycles += 1
        for sub in list(self.subscriptions):
            sub.update(found)


class ClearTaxInvoicesReportedTrigger(BaseTrigger):
    """Wait until ZATCA has a final status for every invoice of a (large) list.

    :param cleartax_conn_id: Airflow connection id.
    :param invoices: unique ids (``<vat>_<number>_<type code>_<year>``).
    :param poll_interval: seconds between Get bulk cycles (a shared poller uses its subscribers'
        smallest interval; ClearTax allows 10 calls a minute of up to 500 invoices each).
    :param deadline: epoch seconds after which the trigger stops with ``timeout``; ``None`` waits
        without end.
    :param hook_params: keyword arguments of :class:`~airflow_provider_cleartax.hooks.cleartax.ClearTaxHook`.
    """

    def __init__(
        self,
        *,
        cleartax_conn_id: str,
        invoices: Sequence[str],
        poll_interval: float = 60,
        deadline: float | None = None,
        hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}")
        self.cleartax_conn_id = cleartax_conn_id
        self.invoices = list(dict.fromkeys(str(uid) for uid in invoices))
        self.poll_interval = float(poll_interval)
        self.deadline = None if deadline is None else float(deadline)
        self.hook_params = dict(hook_params or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the JSON-safe keyword arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "cleartax_conn_id": self.cleartax_conn_id,
                "invoices": list(self.invoices),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "hook_params": dict(self.hook_params),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Subscribe to the connection's shared poller and yield one event with the outcome."""
        subscription = _Subscription(self.invoices, self.poll_interval)
        poller = SharedBulkPoller.acquire(self.cleartax_conn_id, self.hook_params)
        poller.subscribe(subscription)
        try:
            payload = await self._wait(subscription, poller)
        finally:
            poller.unsubscribe(subscription)
        yield TriggerEvent(payload)

    async def _wait(self, subscription: _Subscription, poller: SharedBulkPoller) -> dict[str, Any]:
        final_check = False
        while subscription.pending():
            timeout = None if self.deadline is None else self.deadline - time.time()
            if timeout is not None and timeout <= 0:
                if final_check:
                    break
                # One last look at the deadline, so a status that just turned final is not missed.
                final_check = True
                poller.wake()
                timeout = _FINAL_CHECK_SECONDS
            if not await wait_event(subscription.updated, timeout):
                if final_check:
                    break
                continue
            subscription.updated.clear()
            if subscription.failure is not None:
                error = subscription.failure
                return {
                    **_payload(subscription, "error", str(error)),
                    "error_type": type(error).__name__,
                    "error_detail": {
                        "message": error.message,
                        "endpoint": error.endpoint,
                        "http_status": error.status,
                        "errors": error.errors,
                        "request_id": error.request_id,
                    },
                }
        pending = subscription.pending()
        if pending:
            message = f"{len(pending)} of {len(self.invoices)} invoice(s) not final at the deadline"
            if subscription.transient is not None:
                message += f"; the last check failed: {subscription.transient}"
            return _payload(subscription, "timeout", message)
        if subscription.errors:
            return _payload(
                subscription,
                "failed",
                f"ZATCA refused {len(subscription.errors)} of {len(self.invoices)} invoice(s)",
            )
        return _payload(subscription, "success", f"ZATCA accepted all {len(self.invoices)} invoice(s)")


def _payload(subscription: _Subscription, status: str, message: str) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for value in subscription.statuses.values():
        counts[value or "UNKNOWN"] = counts.get(value or "UNKNOWN", 0) + 1
    return {
        "status": status,
        "total": len(subscription.statuses),
        "counts": dict(sorted(counts.items())),
        "rejected": dict(list(subscription.errors.items())[:_LISTED]),
        "pending": subscription.pending()[:_LISTED],
        "message": message,
    }
