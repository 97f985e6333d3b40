"""Triggers that wait for ClearTax invoices and PCSID activities to reach a final state.

Each trigger polls with the hook's async methods and yields exactly one event, whose payload is
plain JSON:

- :class:`ClearTaxInvoiceStatusTrigger`: ``{"status": "success" | "failed" | "timeout" | "error",
  "invoices": {<uniqueId or invoiceNumber>: <InvoiceStatus or None>}, "errors": {<id>:
  [ErrorList entries]}, "message": str}``, plus ``"error_type"`` and ``"error_detail"`` when the
  status is ``error``.
- :class:`ClearTaxPcsidStatusTrigger`: ``{"status", "activity_id", "pcsid_status", "errors":
  [ErrorList entries], "message"}``, plus ``"error_type"`` and ``"error_detail"`` on ``error``.

:func:`raise_for_event` turns an event back into the exception it reports (``error_from_event``
rebuilds the very exception an ``error`` event's trigger met).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_cleartax import exceptions
from airflow_provider_cleartax.client.statuses import FAILURE_STATUSES, SUCCESS_STATUSES
from airflow_provider_cleartax.exceptions import (
    ClearTaxAuthError,
    ClearTaxError,
    ClearTaxInvoiceRejectedError,
    ClearTaxNotFoundError,
    ClearTaxPermanentError,
    ClearTaxResponseError,
)

if TYPE_CHECKING:
    from airflow_provider_cleartax.client.results import BulkStatusItem, InvoiceResult, PcsidStatus
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

#: An invoice as the sensors and triggers name it: a ``uniqueId``, or its number, type and issue date.
InvoiceIdentity = str | dict[str, str]

_IDENTITY_FIELDS = ("invoiceNumber", "invoiceType", "issueDate")
# How many invoices a message spells out; the payload always has them all.
_SHOWN = 5


def normalize_invoices(invoices: str | Sequence[str | Mapping[str, Any]]) -> list[InvoiceIdentity]:
    """Return the invoices as a list of unique ids and identity dicts, without duplicates.

    :param invoices: one ``uniqueId``, or a list of unique ids and dicts of ``invoiceNumber``,
        ``invoiceType``, ``issueDate`` and optionally ``vat``.
    :raises ValueError: an entry is empty or misses part of its identity.
    """
    entries: Sequence[Any] = [invoices] if isinstance(invoices, str) else invoices
    if not isinstance(entries, Sequence):
        raise ValueError(f"invoices must be a uniqueId or a list, got {type(invoices).__name__}")
    normalized: dict[str, InvoiceIdentity] = {}
    for entry in entries:
        identity: InvoiceIdentity
        if isinstance(entry, str):
            identity = entry.strip()
            if not identity:
                raise ValueError("an invoice uniqueId is empty")
        elif isinstance(entry, Mapping):
            missing = [name for name in _IDENTITY_FIELDS if not entry.get(name)]
            if missing:
                raise ValueError(f"invoice {dict(entry)!r} lacks {', '.join(missing)}")
            identity = {name: str(entry[name]) for name in (*_IDENTITY_FIELDS, "vat") if entry.get(name)}
        else:
            raise ValueError(f"an invoice must be a uniqueId or a dict, got {type(entry).__name__}")
        normalized.setdefault(invoice_key(identity), identity)
    return list(normalized.values())


def invoice_key(identity: InvoiceIdentity) -> str:
    """Return the key an invoice has in event payloads and XComs: its uniqueId or its number.

    :param identity: a ``uniqueId`` or an identity dict.
    """
    return identity if isinstance(identity, str) else identity["invoiceNumber"]


def _invoice_query(identity: InvoiceIdentity) -> dict[str, Any]:
    if isinstance(identity, str):
        return {"unique_id": identity}
    return {
        "invoice_number": identity["invoiceNumber"],
        "invoice_type": identity["invoiceType"],
        "issue_date": identity["issueDate"],
        "vat": identity.get("vat"),
    }


def _describe_errors(entries: Sequence[Mapping[str, Any]]) -> str:
    described = []
    for entry in entries[:_SHOWN]:
        text = f"[{entry.get('ErrorCode')}] {entry.get('ErrorMessage') or ''}".strip()
        described.append(f"{text} at {entry['Path']}" if entry.get("Path") else text)
    return "; ".join(described)


def _listing(items: Sequence[str]) -> str:
    more = len(items) - _SHOWN
    return ", ".join(items[:_SHOWN]) + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True)
class InvoiceCheck:
    """The statuses of a set of invoices at one moment.

    :param statuses: ``InvoiceStatus`` by invoice key (``None`` while unknown).
    :param errors: non-empty ``ErrorList`` entries by invoice key.
    """

    statuses: dict[str, str | None]
    errors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def unknown(cls, identities: Sequence[InvoiceIdentity]) -> InvoiceCheck:
        """Return a check that knows no status yet.

        :param identities: the invoices.
        """
        return cls({invoice_key(identity): None for identity in identities})

    @classmethod
    def from_invoice(cls, identity: InvoiceIdentity, result: InvoiceResult) -> InvoiceCheck:
        """Read one Get invoice answer.

        :param identity: the invoice asked for.
        :param result: ClearTax's answer.
        """
        key = invoice_key(identity)
        errors = [entry.to_api() for entry in result.error_list]
        return cls({key: result.invoice_status}, {key: errors} if errors else {})

    @classmethod
    def from_bulk(
        cls, identities: Sequence[InvoiceIdentity], items: Sequence[BulkStatusItem]
    ) -> InvoiceCheck:
        """Read a Get bulk answer, whose items follow the order of the identities asked for.

        :param identities: the invoices asked for.
        :param items: ClearTax's answer.
        :raises ClearTaxNotFoundError: ClearTax knows some of the invoices not.
        """
        if len(items) != len(identities):
            raise ClearTaxResponseError(
                f"asked for {len(identities)} invoices, got {len(items)} statuses", endpoint="get_bulk"
            )
        answered = dict(zip((invoice_key(identity) for identity in identities), items, strict=True))
        unknown = {key: item for key, item in answered.items() if not item.is_known}
        if unknown:
            raise ClearTaxNotFoundError(
                f"ClearTax does not know invoice(s) {_listing(list(unknown))}",
                endpoint="get_bulk",
                errors=[entry.to_api() for item in unknown.values() for entry in item.error_list],
            )
        statuses = {key: item.einvoice_status for key, item in answered.items()}
        errors = {
            key: [e.to_api() for e in item.error_list] for key, item in answered.items() if item.error_list
        }
        return cls(statuses, errors)

    @property
    def rejected(self) -> list[str]:
        """Keys of the invoices ZATCA refused (NOT_CLEARED, NOT_REPORTED)."""
        return [key for key, status in self.statuses.items() if status in FAILURE_STATUSES]

    @property
    def pending(self) -> list[str]:
        """Keys of the invoices without a final status yet."""
        return [
            key
            for key, status in self.statuses.items()
            if status not in SUCCESS_STATUSES and status not in FAILURE_STATUSES
        ]

    @property
    def state(self) -> str | None:
        """``failed`` if any invoice was refused, ``success`` if all were accepted, else ``None``."""
        if self.rejected:
            return "failed"
        return None if self.pending else "success"

    def rejection(self) -> ClearTaxInvoiceRejectedError:
        """Return the error that reports the refused invoices with their ``ErrorList``."""
        rejected = self.rejected
        listed = [f"{key} {self.statuses[key]}" for key in rejected]
        return ClearTaxInvoiceRejectedError(
            f"ZATCA refused {len(rejected)} of {len(self.statuses)} invoice(s): {_listing(listed)}",
            endpoint="get_bulk" if len(self.statuses) > 1 else "get_invoice",
            errors=[entry for key in rejected for entry in self.errors.get(key, [])],
            result={"invoices": dict(self.statuses), "errors": dict(self.errors)},
        )

    def summary(self) -> str:
        """Describe the statuses in one line."""
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status or "unknown"] = counts.get(status or "unknown", 0) + 1
        return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


def _unknown_invoice(identity: InvoiceIdentity, error: ClearTaxNotFoundError) -> ClearTaxNotFoundError:
    return ClearTaxNotFoundError(
        f"ClearTax does not know invoice {invoice_key(identity)}",
        endpoint=error.endpoint,
        status=error.status,
        errors=error.errors,
        request_id=error.request_id,
    )


def check_invoices(hook: ClearTaxHook, identities: Sequence[InvoiceIdentity]) -> InvoiceCheck:
    """Ask ClearTax once for the statuses of the invoices: Get invoice for one, Get bulk for more.

    :param hook: the hook to ask with.
    :param identities: normalized invoices (see :func:`normalize_invoices`).
    :raises ClearTaxNotFoundError: ClearTax knows an invoice not.
    """
    if len(identities) != 1:
        return InvoiceCheck.from_bulk(identities, hook.get_bulk_status(identities))
    (identity,) = identities
    try:
        return InvoiceCheck.from_invoice(identity, hook.get_invoice(**_invoice_query(identity)))
    except ClearTaxNotFoundError as error:
        raise _unknown_invoice(identity, error) from error


async def acheck_invoices(hook: ClearTaxHook, identities: Sequence[InvoiceIdentity]) -> InvoiceCheck:
    """Async variant of :func:`check_invoices`."""
    if len(identities) != 1:
        return InvoiceCheck.from_bulk(identities, await hook.aget_bulk_status(identities))
    (identity,) = identities
    try:
        return InvoiceCheck.from_invoice(identity, await hook.aget_invoice(**_invoice_query(identity)))
    except ClearTaxNotFoundError as error:
        raise _unknown_invoice(identity, error) from error


def pcsid_state(status: str | None) -> str | None:
    """Map a PCSID activity status to ``success``, ``failed`` or ``None`` (still running).

    :param status: the activity's ``Status``.
    """
    return {"SUCCEEDED": "success", "FAILED": "failed"}.get(status or "")


def pcsid_message(activity_id: str, status: str | None, errors: Sequence[Mapping[str, Any]]) -> str:
    """Describe a finished PCSID activity in one line.

    :param activity_id: the activity.
    :param status: its final ``Status``.
    :param errors: its ``ErrorList``.
    """
    message = f"PCSID activity {activity_id} {status}"
    return f"{message}: {_describe_errors(errors)}" if errors else message


def error_from_event(event: Mapping[str, Any], *, conn_id: str) -> ClearTaxError:
    """Rebuild the permanent error an ``error`` event of these triggers reports.

    :param event: the event payload.
    :param conn_id: the connection the trigger used (named by authentication errors).
    """
    detail = event.get("error_detail") or {}
    context = {
        "endpoint": detail.get("endpoint"),
        "status": detail.get("http_status"),
        "errors": detail.get("errors") or (),
        "request_id": detail.get("request_id"),
    }
    kind = getattr(exceptions, str(event.get("error_type")), None)
    if kind is ClearTaxAuthError:
        return ClearTaxAuthError(conn_id=conn_id, **context)
    if not (isinstance(kind, type) and issubclass(kind, ClearTaxPermanentError)):
        kind = ClearTaxPermanentError
    return kind(detail.get("message") or str(event.get("message")), **context)


def pcsid_failure(activity_id: str, status: str | None, errors: Sequence[Mapping[str, Any]]) -> ClearTaxError:
    """Return the error that reports a FAILED PCSID activity.

    :param activity_id: the activity.
    :param status: its final ``Status``.
    :param errors: its ``ErrorList``.
    """
    return ClearTaxPermanentError(
        pcsid_message(activity_id, status, []), endpoint="pcsid_status", errors=errors
    )


def raise_for_event(event: Mapping[str, Any], *, conn_id: str) -> None:
    """Raise what a non-success event of these triggers reports; return quietly on success.

    Shared by the sensors and by the operators that defer to these triggers.

    :param event: the event payload.
    :param conn_id: the connection the trigger used (named by authentication errors).
    """
    status = event.get("status")
    if status == "success":
        return
    if status == "failed":
        if "activity_id" in event:
            raise pcsid_failure(event["activity_id"], event.get("pcsid_status"), event.get("errors") or ())
        raise InvoiceCheck(dict(event["invoices"]), dict(event.get("errors") or {})).rejection()
    if status == "timeout":
        try:
            from airflow.sdk.exceptions import AirflowSensorTimeout
        except ImportError:  # Airflow 3.1
            from airflow.exceptions import AirflowSensorTimeout  # type: ignore[no-redef]
        raise AirflowSensorTimeout(f"Timed out: {event.get('message')}")
    if status == "error":
        raise error_from_event(event, conn_id=conn_id)
    raise ClearTaxPermanentError(f"unexpected trigger event {event!r}")


class _ClearTaxPollingTrigger(BaseTrigger):
    """Poll until a final answer, the deadline or a permanent error; yield one event.

    Transient ClearTax errors (after the hook's own retries) are retried with jittered exponential
    backoff, from ``poll_interval`` up to four times it, until the deadline.
    """

    def __init__(
        self,
        *,
        cleartax_conn_id: str,
        poll_interval: float,
        deadline: float | None,
        hook_params: Mapping[str, Any] | None,
    ) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}")
        self.cleartax_conn_id = cleartax_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = None if deadline is None else float(deadline)
        self.hook_params = dict(hook_params or {})

    def _kwargs(self, **specific: Any) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "cleartax_conn_id": self.cleartax_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "hook_params": dict(self.hook_params),
                **specific,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll ClearTax and yield one event with the outcome."""
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        hook = ClearTaxHook(cleartax_conn_id=self.cleartax_conn_id, **self.hook_params)
        try:
            payload = await self._wait(hook)
        finally:
            await hook.aclose()
        yield TriggerEvent(payload)

    async def _wait(self, hook: ClearTaxHook) -> dict[str, Any]:
        failures = 0
        transient: ClearTaxError | None = None
        while True:
            try:
                state = await self._check(hook)
            except ClearTaxPermanentError as error:
                return {**self._payload("error", str(error)), **_error_fields(error)}
            except ClearTaxError as error:
                failures += 1
                transient = error
                delay = self._backoff(failures)
                self.log.warning("ClearTax check failed (%s); trying again in %.1f s", error, delay)
            else:
                if state is not None:
                    return self._payload(state, self._final_message(state))
                failures, transient = 0, None
                delay = self.poll_interval
            if self.deadline is not None:
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    message = self._timeout_message()
                    if transient is not None:
                        message += f"; the last check failed: {transient}"
                    return self._payload("timeout", message)
                # The last check lands on the deadline itself, not a poll interval before it.
                delay = min(delay, remaining)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.poll_interval * 4, self.poll_interval * 2 ** (failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _check(self, hook: ClearTaxHook) -> str | None:
        """Ask ClearTax once; return ``success``, ``failed`` or ``None`` while not final."""
        raise NotImplementedError

    def _payload(self, status: str, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def _final_message(self, state: str) -> str:
        raise NotImplementedError

    def _timeout_message(self) -> str:
        raise NotImplementedError


def _error_fields(error: ClearTaxError) -> dict[str, Any]:
    return {
        "error_type": type(error).__name__,
        "error_detail": {
            "message": error.message,
            "endpoint": error.endpoint,
            "http_status": error.status,
            "errors": error.errors,
            "request_id": error.request_id,
        },
    }


class ClearTaxInvoiceStatusTrigger(_ClearTaxPollingTrigger):
    """Wait until ZATCA has accepted every invoice, or has refused one of them.

    One invoice is polled with Get invoice, several with Get bulk (500 per call; ClearTax allows
    10 bulk calls a minute, so keep ``poll_interval`` at 6 s or more per sensor in production).

    :param cleartax_conn_id: Airflow connection id.
    :param invoices: unique ids, or dicts of ``invoiceNumber``, ``invoiceType``, ``issueDate``
        and optionally ``vat``.
    :param poll_interval: seconds between checks.
    :param deadline: epoch seconds after which the trigger stops with ``timeout``, after a last
        check at the deadline; ``None`` waits without end.
    :param hook_params: keyword arguments of :class:`~airflow_provider_cleartax.hooks.cleartax.ClearTaxHook`.
    """

    def __init__(
        self,
        *,
        cleartax_conn_id: str,
        invoices: Sequence[str | Mapping[str, Any]],
        poll_interval: float = 30,
        deadline: float | None = None,
        hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            cleartax_conn_id=cleartax_conn_id,
            poll_interval=poll_interval,
            deadline=deadline,
            hook_params=hook_params,
        )
        self.invoices = normalize_invoices(invoices)
        if not self.invoices:
            raise ValueError("ClearTaxInvoiceStatusTrigger needs at least one invoice")
        self._last = InvoiceCheck.unknown(self.invoices)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the JSON-safe keyword arguments."""
        return self._kwargs(invoices=[i if isinstance(i, str) else dict(i) for i in self.invoices])

    async def _check(self, hook: ClearTaxHook) -> str | None:
        self._last = await acheck_invoices(hook, self.invoices)
        self.log.debug("ClearTax invoice statuses: %s", self._last.summary())
        return self._last.state

    def _payload(self, status: str, message: str) -> dict[str, Any]:
        return {
            "status": status,
            "invoices": dict(self._last.statuses),
            "errors": dict(self._last.errors),
            "message": message,
        }

    def _final_message(self, state: str) -> str:
        if state == "failed":
            return str(self._last.rejection())
        return f"ZATCA accepted all {len(self.invoices)} invoice(s): {self._last.summary()}"

    def _timeout_message(self) -> str:
        pending = [f"{key} {self._last.statuses[key] or 'unknown'}" for key in self._last.pending]
        total = len(self.invoices)
        return f"{len(pending)} of {total} invoice(s) not final at the deadline: {_listing(pending)}"


class ClearTaxPcsidStatusTrigger(_ClearTaxPollingTrigger):
    """Wait until a PCSID generation activity has SUCCEEDED or FAILED.

    :param cleartax_conn_id: Airflow connection id.
    :param activity_id: the ``PcsidGenerationActivityId`` of generate-csid.
    :param poll_interval: seconds between checks.
    :param deadline: epoch seconds after which the trigger stops with ``timeout``, after a last
        check at the deadline; ``None`` waits without end.
    :param hook_params: keyword arguments of :class:`~airflow_provider_cleartax.hooks.cleartax.ClearTaxHook`.
    """

    def __init__(
        self,
        *,
        cleartax_conn_id: str,
        activity_id: str,
        poll_interval: float = 10,
        deadline: float | None = None,
        hook_params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            cleartax_conn_id=cleartax_conn_id,
            poll_interval=poll_interval,
            deadline=deadline,
            hook_params=hook_params,
        )
        if not isinstance(activity_id, str) or not activity_id.strip():
            raise ValueError(f"ClearTaxPcsidStatusTrigger needs an activity_id, got {activity_id!r}")
        self.activity_id = activity_id.strip()
        self._last: PcsidStatus | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the JSON-safe keyword arguments."""
        return self._kwargs(activity_id=self.activity_id)

    async def _check(self, hook: ClearTaxHook) -> str | None:
        self._last = await hook.aget_pcsid_status(self.activity_id)
        self.log.debug("ClearTax PCSID activity %s: %s", self.activity_id, self._last.status)
        return pcsid_state(self._last.status)

    def _payload(self, status: str, message: str) -> dict[str, Any]:
        last = self._last
        return {
            "status": status,
            "activity_id": self.activity_id,
            "pcsid_status": last.status if last else None,
            "errors": [entry.to_api() for entry in last.error_list] if last else [],
            "message": message,
        }

    def _final_message(self, state: str) -> str:
        assert self._last is not None
        return pcsid_message(self.activity_id, self._last.status, [e.to_api() for e in self._last.error_list])

    def _timeout_message(self) -> str:
        status = self._last.status if self._last else "unknown"
        return f"PCSID activity {self.activity_id} still {status} at the deadline"
