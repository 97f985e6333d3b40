"""Submit a whole batch of invoices in one task: streamed, rate limited, exactly once, resumable."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_cleartax.operators.cleartax import ClearTaxBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_cleartax.bulk.engine import BulkSummary
    from airflow_provider_cleartax.invoices import Seller

#: Configuration option (section ``cleartax``) holding the default base of ledger paths.
LEDGER_BASE_OPTION = "bulk_ledger_base"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def default_ledger_base() -> str:
    """Return ``[cleartax] bulk_ledger_base``, else ``$AIRFLOW_HOME/cleartax/ledgers``."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf  # type: ignore[no-redef]

    configured = conf.get("cleartax", LEDGER_BASE_OPTION, fallback=None)
    if configured:
        return configured
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return os.path.join(home, "cleartax", "ledgers")


def _segment(value: Any) -> str:
    return _UNSAFE.sub("_", str(value)).strip("_") or "_"


class ClearTaxSubmitInvoicesOperator(ClearTaxBaseOperator):
    """Submit many invoices to ClearTax exactly once, resuming from a durable ledger.

    The input is streamed (a JSON Lines file is read line by line; at most ``concurrency``
    invoices are held at once). Each invoice is checked client-side, marked in flight in the
    ledger, sent through the hook's request pipeline under a client-side rate limiter, and its
    outcome appended to the ledger. Invalid lines and invoices and business rejections are recorded
    and do not stop the batch. A retry (or a re-run with the same ledger) skips what is done and
    looks up every invoice whose outcome is unknown before sending it again.

    Returns (XCom) only ``{"ledger_path": ..., "summary": {...}}``; the per-invoice results
    (UUID, ICV, QR, ErrorList) are in the ledger.

    :param invoices: path, URL or ObjectStoragePath of a JSON Lines file, or a list of objects
        (e.g. from XCom), or the JSON text of such a list (templated). Items are E-Invoice
        objects, generate bodies (``{"EInvoice": ..., "CustomFields": ...}``) or, with ``seller``,
        flat ERP rows.
    :param seller: when given, items are ERP rows built with
        :func:`~airflow_provider_cleartax.invoices.invoice_from_row` for this seller (a
        :class:`~airflow_provider_cleartax.invoices.Seller` or its keyword arguments).
    :param mode: ``sync`` (generate: CLEARED / REPORTED) or ``async`` (simplified invoices go to
        generate/async and end PENDING; standard ones are still cleared synchronously) (templated).
    :param ledger_path: where the ledger lives (templated). Defaults to
        ``<ledger_base>/<dag_id>/<run_id>/<task_id>[/<map_index>]``, so a retry of the same
        run resumes. Name it after the business day (e.g. ``.../{{ ds }}``) to make a re-run of that
        day submit nothing twice, whatever its run id.
    :param ledger_base: base of the default ledger path (templated); defaults to the
        ``[cleartax] bulk_ledger_base`` option, else ``$AIRFLOW_HOME/cleartax/ledgers``.
    :param concurrency: invoices in flight at once.
    :param rate_limits: requests per ``rate_window`` by endpoint (``generate``, ``generate_async``,
        ``get_invoice``); defaults to ClearTax's documented per-minute limits.
    :param rate_window: seconds of the rate-limit window (ClearTax: 60).
    :param device_id: EGS device id; defaults to the connection's (templated).
    :param custom_fields: ClearTax ``CustomFields`` for every invoice (templated).
    :param fail_on_rejections: fail the task (without retries) when any invoice was invalid,
        unreadable or rejected; otherwise succeed and leave them in the summary and the ledger.
    :param errors_in_summary: how many problems the summary spells out.
    """

    template_fields: Sequence[str] = (
        *ClearTaxBaseOperator.template_fields,
        "invoices",
        "mode",
        "ledger_path",
        "ledger_base",
        "device_id",
        "custom_fields",
    )
    ui_color = "#cfe8d5"

    def __init__(
        self,
        *,
        invoices: Any,
        seller: Seller | Mapping[str, Any] | None = None,
        mode: str = "sync",
        ledger_path: Any = None,
        ledger_base: str | None = None,
        concurrency: int | None = None,
        rate_limits: Mapping[str, int] | None = None,
        rate_window: float = 60.0,
        device_id: str | None = None,
        custom_fields: dict[str, Any] | None = None,
        fail_on_rejections: bool = True,
        errors_in_summary: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoices = invoices
        self.seller = seller
        self.mode = mode
        self.ledger_path = ledger_path
        self.ledger_base = ledger_base
        self.concurrency = concurrency
        self.rate_limits = dict(rate_limits) if rate_limits is not None else None
        self.rate_window = rate_window
        self.device_id = device_id
        self.custom_fields = custom_fields
        self.fail_on_rejections = fail_on_rejections
        self.errors_in_summary = errors_in_summary

    def ledger_location(self, context: Context) -> str:
        """Return the ledger path: ``ledger_path``, or one derived from the run under ``ledger_base``."""
        if self.ledger_path:
            return str(self.ledger_path)
        ti = context["ti"]
        parts = [ti.dag_id, ti.run_id, ti.task_id]
        map_index = getattr(ti, "map_index", -1)
        if map_index is not None and map_index >= 0:
            parts.append(str(map_index))
        base = str(self.ledger_base or default_ledger_base()).rstrip("/")
        return "/".join([base, *(_segment(part) for part in parts)])

    def _source(self) -> Any:
        source = self.invoices
        if isinstance(source, str) and source.lstrip().startswith("["):
            return json.loads(source)  # a templated XCom list rendered as text
        return source

    def _seller(self) -> Seller | None:
        from airflow_provider_cleartax.invoices import Seller

        if self.seller is None or isinstance(self.seller, Seller):
            return self.seller
        return Seller(**self.seller)

    def execute(self, context: Context) -> dict[str, Any]:
        import asyncio

        from airflow_provider_cleartax.bulk.engine import DEFAULT_CONCURRENCY, BulkSubmitter
        from airflow_provider_cleartax.bulk.ratelimit import DEFAULT_RATE_LIMITS, RateLimiter

        location = self.ledger_location(context)
        self.hook.settings  # noqa: B018 - resolve the connection here, outside the event loop
        submitter = BulkSubmitter(
            hook=self.hook,
            ledger=location,
            mode=self.mode,  # type: ignore[arg-type]
            seller=self._seller(),
            concurrency=self.concurrency or DEFAULT_CONCURRENCY,
            rate_limiter=RateLimiter(
                limits=self.rate_limits if self.rate_limits is not None else DEFAULT_RATE_LIMITS,
                window=self.rate_window,
            ),
            device_id=self.device_id,
            custom_fields=self.custom_fields,
            errors_in_summary=self.errors_in_summary,
        )
        self.log.info("Submitting invoices; ledger at %s", location)
        summary = asyncio.run(submitter.run(self._source()))
        value = {"ledger_path": location, "summary": summary.to_dict()}
        self._log_summary(summary)
        self._raise_for(context, summary, value)
        return value

    def _log_summary(self, summary: BulkSummary) -> None:
        self.log.info(
            "Bulk submission: %s items, by status %s; sent %s, looked up %s (%s already at ClearTax), "
            "skipped %s done before, %s unresolved",
            summary.total,
            summary.counts,
            summary.sent,
            summary.looked_up,
            summary.recovered,
            summary.skipped,
            summary.unresolved,
        )
        for error in summary.errors:
            self.log.warning(
                "Line %s, invoice %s: %s %s",
                error["line"],
                error["invoice_number"],
                error["status"],
                error.get("errors") or error.get("error"),
            )

    def _raise_for(self, context: Context, summary: BulkSummary, value: dict[str, Any]) -> None:
        from airflow_provider_cleartax.exceptions import ClearTaxError, ClearTaxPermanentError

        if summary.unresolved:
            # The summary stays readable although the task fails.
            context["ti"].xcom_push(key="return_value", value=value)
            raise ClearTaxError(
                f"{summary.unresolved} invoice(s) still have an unknown outcome after the in-call retries; "
                f"a retry of this task looks them up and resumes (ledger {value['ledger_path']})",
                endpoint="generate",
            )
        if self.fail_on_rejections and summary.failures:
            context["ti"].xcom_push(key="return_value", value=value)
            raise ClearTaxPermanentError(
                f"{summary.failures} of {summary.total} invoice(s) were invalid, unreadable or rejected "
                f"(by status: {summary.counts}); see the ledger {value['ledger_path']}",
                endpoint="generate",
                errors=[entry for error in summary.errors[:5] for entry in error.get("errors", [])[:1]],
            )
