"""Submit thousands of invoices exactly once, at ClearTax's rate limit, resumably.

The engine streams its input, checks each invoice client-side, writes an in-flight marker to the
ledger (durably) before sending, sends through the hook's request pipeline with bounded
concurrency over one pooled ``httpx.AsyncClient`` and a shared :class:`RateLimiter`, and appends
each outcome to the ledger as it arrives. A second run over the same ledger skips what ClearTax
already holds and looks up every invoice whose outcome is unknown before sending it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import httpx

from airflow_provider_cleartax.bulk.ledger import (
    DONE_STATUSES,
    ERROR,
    FAILED,
    IN_FLIGHT_STATUSES,
    INVALID,
    REJECTED,
    RETRY,
    SENDING,
    SUCCESS_STATUSES,
    Ledger,
    utc_now,
)
from airflow_provider_cleartax.bulk.ratelimit import RateLimiter
from airflow_provider_cleartax.bulk.source import SourceItem, read_source
from airflow_provider_cleartax.client import api
from airflow_provider_cleartax.client.pipeline import Operation, Send, run_async
from airflow_provider_cleartax.client.results import FAILURE_STATUSES, InvoiceResult
from airflow_provider_cleartax.exceptions import (
    ClearTaxAuthError,
    ClearTaxConfigError,
    ClearTaxError,
    ClearTaxInvoiceRejectedError,
    ClearTaxNotFoundError,
    ClearTaxPermanentError,
    ClearTaxPermissionError,
)
from airflow_provider_cleartax.hooks.cleartax import client_options
from airflow_provider_cleartax.invoices import (
    InvoiceValidationError,
    invoice_from_row,
    invoice_identity,
    invoice_number_of,
    is_simplified,
    validate_invoice,
)

if TYPE_CHECKING:
    from airflow_provider_cleartax.client.api import Session
    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
    from airflow_provider_cleartax.invoices import InvoiceProblem, Seller

log = logging.getLogger(__name__)

Mode = Literal["sync", "async"]

#: In-flight requests by default: enough to keep 1000 requests a minute going at ClearTax's
#: usual generate latency, well below where httpx's async pool stops scaling.
DEFAULT_CONCURRENCY = 16
DEFAULT_ERRORS_IN_SUMMARY = 20
# Errors that every other invoice would meet too: the run stops instead of recording them per invoice.
_FATAL_ERRORS = (ClearTaxAuthError, ClearTaxPermissionError, ClearTaxConfigError)
_ENTRIES_PER_ERROR = 5


class _SlotClients:
    """One small HTTP client per in-flight slot, instead of one pool shared by all slots.

    httpx's async pool scans every connection on each request (encode/httpx#3215). Measured here
    with 16 requests in flight against the emulator: one client of 16 connections spent 2.7-3.6 ms
    of CPU per request, 16 clients of one connection each 1.1-1.5 ms.
    """

    def __init__(self, count: int, limits: httpx.Limits) -> None:
        self._idle = [httpx.AsyncClient(**client_options(limits)) for _ in range(count)]
        self._all = list(self._idle)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[httpx.AsyncClient]:
        """Lend an idle client; the slot semaphore guarantees one is free."""
        client = self._idle.pop()
        try:
            yield client
        finally:
            self._idle.append(client)

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self._all))


@dataclass
class BulkSummary:
    """What a bulk run did, small enough for XCom.

    :param ledger: where the ledger is.
    :param total: input items seen (lines or list entries).
    :param counts: items by final status (``CLEARED``, ``REPORTED``, ``PENDING``, ``INVALID``...).
    :param sent: invoices sent to ClearTax in this run.
    :param looked_up: invoices of an earlier, interrupted run that were looked up before sending.
    :param recovered: of those, how many ClearTax already had (not sent again).
    :param skipped: invoices an earlier run had completed.
    :param unresolved: invoices whose outcome is still unknown (a retry resumes them).
    :param errors: the first problems, each with line, invoice number, status and error entries.
    :param peak_in_memory: the most input items held at once (never more than the concurrency).
    """

    ledger: str
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    looked_up: int = 0
    recovered: int = 0
    skipped: int = 0
    unresolved: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    peak_in_memory: int = 0

    @property
    def failures(self) -> int:
        """Items that did not make it: invalid, unreadable, refused or rejected."""
        return sum(
            n
            for status, n in self.counts.items()
            if status not in SUCCESS_STATUSES and status not in IN_FLIGHT_STATUSES
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON."""
        return {
            "ledger": self.ledger,
            "total": self.total,
            "counts": dict(sorted(self.counts.items())),
            "sent": self.sent,
            "looked_up": self.looked_up,
            "recovered": self.recovered,
            "skipped": self.skipped,
            "unresolved": self.unresolved,
            "failures": self.failures,
            "errors": list(self.errors),
            "peak_in_memory": self.peak_in_memory,
        }


@dataclass
class _Job:
    line: int
    key: str
    invoice_number: str
    vat: str
    invoice: dict[str, Any]
    custom_fields: dict[str, Any] | None
    mode: Mode
    prior: dict[str, Any] | None
    started: str = field(default_factory=utc_now)


def _problem_entries(problems: list[InvoiceProblem]) -> list[dict[str, Any]]:
    return [{"ErrorCode": p.code, "ErrorMessage": p.message, "Path": p.path} for p in problems]


def _api_entries(result: InvoiceResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [e.to_api() for e in result.error_list], [w.to_api() for w in result.warning_list]


def _result_status(result: InvoiceResult) -> str:
    if result.is_rejected:
        return result.invoice_status if result.invoice_status in FAILURE_STATUSES else REJECTED
    return result.invoice_status or REJECTED


def _counted(operation: Operation[Any], attempts: list[int]) -> Generator[Any, Any, Any]:
    """Pass ``operation``'s actions through, counting the requests it sends."""
    outcome: Any = None
    failure: Exception | None = None
    while True:
        try:
            action = operation.throw(failure) if failure is not None else operation.send(outcome)
        except StopIteration as stop:
            return stop.value
        if isinstance(action, Send):
            attempts[0] += 1
        outcome, failure = None, None
        try:
            outcome = yield action
        except Exception as error:  # transport errors thrown in by the driver go to the operation
            failure = error


class _GroupWriter:
    """Append records to the ledger in groups: whoever waits while a write runs joins the next one."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, records: list[dict[str, Any]]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.ledger.append, [r for records, _ in group for r in records])
            except Exception as error:
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, future in group:
                    if not future.done():
                        future.set_result(None)


class BulkSubmitter:
    """Submit a stream of invoices exactly once, resuming from its ledger.

    :param hook: the ClearTax hook (connection, VAT, timeouts and in-call retries come from it).
    :param ledger: the ledger, or its location (directory or object-store prefix).
    :param mode: ``sync`` sends every invoice to generate (CLEARED / REPORTED); ``async`` sends
        simplified invoices to generate/async (PENDING, reported later) and standard ones to
        generate, which is the only way to clear them.
    :param seller: when given, the input items are flat ERP rows built into invoices with
        :func:`~airflow_provider_cleartax.invoices.invoice_from_row` for this seller.
    :param concurrency: invoices in flight at once; also the most input items held in memory.
    :param rate_limiter: shared limiter; by default ClearTax's documented per-minute limits.
    :param device_id: EGS device id; defaults to the connection's.
    :param custom_fields: ClearTax ``CustomFields`` sent with every invoice (a generate body in
        the input may carry its own).
    :param errors_in_summary: how many problems the summary spells out.
    :param today: the date issue dates may not be after (defaults to today in Saudi Arabia).
    :param pool_limits: limits of each in-flight slot's HTTP client; by default one connection,
        kept alive.
    :param validate: check each invoice client-side first (invalid ones are recorded, not sent).
    """

    def __init__(
        self,
        *,
        hook: ClearTaxHook,
        ledger: Ledger | Any,
        mode: Mode = "sync",
        seller: Seller | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limiter: RateLimiter | None = None,
        device_id: str | None = None,
        custom_fields: Mapping[str, Any] | None = None,
        errors_in_summary: int = DEFAULT_ERRORS_IN_SUMMARY,
        today: date | None = None,
        pool_limits: httpx.Limits | None = None,
        validate: bool = True,
    ) -> None:
        if mode not in ("sync", "async"):
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        self.hook = hook
        self.ledger = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        self.mode: Mode = mode
        self.seller = seller
        self.concurrency = concurrency
        self.rate_limiter = rate_limiter if rate_limiter is not None else RateLimiter()
        self.device_id = device_id
        self.custom_fields = dict(custom_fields) if custom_fields else None
        self.errors_in_summary = errors_in_summary
        self.today = today
        self.validate = validate
        self.pool_limits = pool_limits or httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=30
        )
        self._summary = BulkSummary(ledger=str(self.ledger))
        self._held = 0
        self._fatal: ClearTaxError | None = None

    # ------------------------------------------------------------------------------ the run

    async def run(self, source: Any) -> BulkSummary:
        """Submit every invoice of ``source`` not yet done according to the ledger.

        :param source: path/URL/ObjectStoragePath of a JSON Lines file, or an iterable of objects.
        :return: the summary; check ``unresolved`` (retry later) and ``failures``.
        :raises ClearTaxAuthError: and other errors that every invoice would meet (nothing more is sent).
        """
        self._summary = BulkSummary(ledger=str(self.ledger))
        self._held = 0
        self._fatal = None
        state = await asyncio.to_thread(self.ledger.state)
        session = await self.hook.asession()
        writer = _GroupWriter(self.ledger)
        slots = asyncio.Semaphore(self.concurrency)
        seen: dict[str, int] = {}
        tasks: set[asyncio.Task[None]] = set()
        clients = _SlotClients(self.concurrency, self.pool_limits)
        try:
            batch: list[_Job] = []
            for item in read_source(source):
                await slots.acquire()
                if self._fatal is not None:
                    slots.release()
                    break
                self._hold(+1)
                self._summary.total += 1
                job_or_record = self._prepare(item, state, seen)
                if isinstance(job_or_record, _Job):
                    batch.append(job_or_record)
                    if not slots.locked():
                        continue  # read on while slots are free, to start the batch with one fsync
                    await self._launch(batch, writer, slots, tasks, clients, session)
                    batch = []
                    continue
                if job_or_record is not None:
                    await writer.write([job_or_record])
                self._hold(-1)
                slots.release()
            if batch and self._fatal is None:
                await self._launch(batch, writer, slots, tasks, clients, session)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await clients.aclose()
            await asyncio.to_thread(self.ledger.close)
        if self._fatal is not None:
            raise self._fatal
        return self._summary

    def _hold(self, change: int) -> None:
        self._held += change
        self._summary.peak_in_memory = max(self._summary.peak_in_memory, self._held)

    async def _launch(
        self,
        batch: list[_Job],
        writer: _GroupWriter,
        slots: asyncio.Semaphore,
        tasks: set[asyncio.Task[None]],
        clients: _SlotClients,
        session: Session,
    ) -> None:
        # The markers are durable before any of these invoices leaves: a crash from here on
        # leaves them "in flight", and the next run looks them up before sending.
        await writer.write(
            [
                self._record(job, SENDING, attempts=self._prior_attempts(job))
                for job in batch
                if job.prior is None or job.prior.get("status") != SENDING
            ]
        )
        for job in batch:
            task = asyncio.create_task(self._process(job, writer, slots, clients, session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    # ------------------------------------------------------------------------------ preparing

    def _prepare(
        self, item: SourceItem, state: Mapping[str, dict[str, Any]], seen: dict[str, int]
    ) -> _Job | dict[str, Any] | None:
        """Turn an input item into a job to send, a record to write (INVALID/ERROR), or ``None`` (done before)."""
        if item.data is None:
            return self._finish(
                {
                    "key": f"line:{item.line}",
                    "line": item.line,
                    "status": ERROR,
                    "errors": [
                        {"ErrorCode": "INPUT", "ErrorMessage": item.error, "Path": f"line {item.line}"}
                    ],
                }
            )
        data = item.data
        custom_fields = self.custom_fields
        if isinstance(data.get("EInvoice"), Mapping):  # a whole generate body
            custom_fields = data.get("CustomFields") or custom_fields
            data = dict(data["EInvoice"])
        if self.seller is not None:
            try:
                invoice = invoice_from_row(data, seller=self.seller, today=self.today)
            except InvoiceValidationError as error:
                return self._invalid(
                    item.line,
                    error.invoice_number or str(data.get("invoice_number") or ""),
                    list(error.problems),
                )
        else:
            invoice = data
        number = invoice_number_of(invoice)
        problems = validate_invoice(invoice, today=self.today) if self.validate else []
        if problems:
            return self._invalid(item.line, number, problems)
        try:
            identity = invoice_identity(invoice)
        except InvoiceValidationError as error:
            return self._invalid(item.line, number, list(error.problems))
        key = identity.unique_id
        if key in seen:
            return self._finish(
                {
                    "key": f"line:{item.line}",
                    "line": item.line,
                    "invoice_number": number,
                    "status": ERROR,
                    "errors": [
                        {
                            "ErrorCode": "DUPLICATE",
                            "ErrorMessage": f"the same invoice as line {seen[key]}",
                            "Path": "EInvoice.ID",
                        }
                    ],
                }
            )
        seen[key] = item.line
        prior = state.get(key)
        if prior is not None and prior.get("status") in DONE_STATUSES:
            self._summary.skipped += 1
            self._count(prior)
            return None
        mode: Mode = "async" if self.mode == "async" and is_simplified(invoice) else "sync"
        return _Job(
            line=item.line,
            key=key,
            invoice_number=number,
            vat=identity.vat,
            invoice=invoice,
            custom_fields=dict(custom_fields) if custom_fields else None,
            mode=mode,
            prior=prior,
        )

    def _invalid(self, line: int, number: str, problems: list[InvoiceProblem]) -> dict[str, Any]:
        return self._finish(
            {
                "key": f"line:{line}",
                "line": line,
                "invoice_number": number,
                "status": INVALID,
                "errors": _problem_entries(problems),
            }
        )

    # ------------------------------------------------------------------------------ sending

    @staticmethod
    def _prior_attempts(job: _Job) -> int:
        return int((job.prior or {}).get("attempts") or 0)

    async def _process(
        self,
        job: _Job,
        writer: _GroupWriter,
        slots: asyncio.Semaphore,
        clients: _SlotClients,
        session: Session,
    ) -> None:
        try:
            with clients.borrow() as client:
                record = await self._submit(job, client, session)
            await writer.write([self._finish(record)])
        except _FATAL_ERRORS as error:
            self._fatal = self._fatal or error
            self._summary.unresolved += 1
        finally:
            self._hold(-1)
            slots.release()

    async def _submit(self, job: _Job, client: httpx.AsyncClient, session: Session) -> dict[str, Any]:
        attempts = [self._prior_attempts(job)]
        if job.prior is not None and job.prior.get("status") not in (INVALID, ERROR, FAILED):
            # An earlier run may have sent it: ask ClearTax before sending it again.
            self._summary.looked_up += 1
            try:
                found = await run_async(
                    client,
                    _counted(api.get_invoice(session, unique_id=job.key, vat=job.vat), attempts),
                    throttle=self.rate_limiter,
                )
            except ClearTaxNotFoundError:
                found = None
            except _FATAL_ERRORS:
                raise
            except ClearTaxError as error:
                return self._record(job, RETRY, attempts=attempts[0], error=error)
            if found is not None:
                self._summary.recovered += 1
                return self._result_record(job, found, attempts=attempts[0], looked_up=True)
        operation = api.generate_invoice_async if job.mode == "async" else api.generate_invoice
        self._summary.sent += 1
        try:
            result = await run_async(
                client,
                _counted(
                    operation(
                        session,
                        job.invoice,
                        device_id=self.device_id,
                        custom_fields=job.custom_fields,
                        vat=job.vat,
                    ),
                    attempts,
                ),
                throttle=self.rate_limiter,
            )
        except ClearTaxInvoiceRejectedError as error:
            if isinstance(error.result, InvoiceResult):
                return self._result_record(job, error.result, attempts=attempts[0])
            return self._record(job, REJECTED, attempts=attempts[0], errors=error.errors)
        except _FATAL_ERRORS:
            raise
        except ClearTaxPermanentError as error:
            return self._record(
                job, FAILED, attempts=attempts[0], errors=error.errors or [{"ErrorMessage": error.message}]
            )
        except ClearTaxError as error:
            return self._record(job, RETRY, attempts=attempts[0], error=error)
        return self._result_record(job, result, attempts=attempts[0])

    # ------------------------------------------------------------------------------ records

    def _record(
        self,
        job: _Job,
        status: str,
        *,
        attempts: int,
        errors: list[dict[str, Any]] | None = None,
        error: ClearTaxError | None = None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "key": job.key,
            "line": job.line,
            "invoice_number": job.invoice_number,
            "unique_id": job.key,
            "mode": job.mode,
            "status": status,
            "attempts": attempts,
            "started": job.started,
        }
        if errors:
            record["errors"] = errors
        if error is not None:
            record["error"] = str(error)
        return record

    def _result_record(
        self, job: _Job, result: InvoiceResult, *, attempts: int, looked_up: bool = False
    ) -> dict[str, Any]:
        record = self._record(job, _result_status(result), attempts=attempts)
        errors, warnings = _api_entries(result)
        record |= {"uuid": result.uuid, "icv": result.icv, "qr": result.qr_code}
        if errors:
            record["errors"] = errors
        if warnings:
            record["warnings"] = warnings
        if looked_up:
            record["looked_up"] = True
        return record

    def _finish(self, record: dict[str, Any]) -> dict[str, Any]:
        """Stamp a final record and count it in the summary."""
        record.setdefault("started", utc_now())
        record["finished"] = utc_now()
        self._count(record)
        return record

    def _count(self, record: Mapping[str, Any]) -> None:
        status = record["status"]
        summary = self._summary
        summary.counts[status] = summary.counts.get(status, 0) + 1
        if status in IN_FLIGHT_STATUSES:
            summary.unresolved += 1
        if status not in SUCCESS_STATUSES and len(summary.errors) < self.errors_in_summary:
            entry = {key: record.get(key) for key in ("line", "invoice_number", "status")}
            entry["errors"] = list(record.get("errors") or [])[:_ENTRIES_PER_ERROR]
            if record.get("error"):
                entry["error"] = record["error"]
            summary.errors.append(entry)


def submit_invoices(source: Any, **options: Any) -> BulkSummary:
    """Run :class:`BulkSubmitter` to completion on a fresh event loop (outside async code).

    :param source: as for :meth:`BulkSubmitter.run`.
    :param options: keyword arguments of :class:`BulkSubmitter`.
    """
    return asyncio.run(BulkSubmitter(**options).run(source))


__all__ = ["DEFAULT_CONCURRENCY", "BulkSubmitter", "BulkSummary", "Mode", "submit_invoices"]
