"""Wait for many PENDING (asynchronously submitted) invoices to be reported, with Get bulk."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_cleartax.client.statuses import FAILURE_STATUSES, SUCCESS_STATUSES

try:
    from airflow.sdk import BaseSensorOperator, PokeReturnValue
except ImportError:  # pragma: no cover - Airflow < 3.1 layouts
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue  # type: ignore[no-redef]

try:
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

_LISTED = 20


def pending_in_ledger(ledger_path: Any) -> list[str]:
    """Return the unique ids a bulk ledger records as ``PENDING`` (submitted asynchronously).

    :param ledger_path: the ledger's location (the ``ledger_path`` the bulk operator returned).
    """
    from airflow_provider_cleartax.bulk.ledger import Ledger

    return [key for key, record in Ledger(ledger_path).state().items() if record.get("status") == "PENDING"]


class ClearTaxInvoicesReportedSensor(BaseSensorOperator):
    """Wait until ZATCA has reported (or refused) every one of many invoices.

    The invoices come from a list of unique ids or from a bulk ledger (every invoice it records as
    ``PENDING``). Checks use Get bulk, 500 invoices per call within its 10 calls a minute; when
    deferred, every sensor of the same connection in a triggerer shares one poller. Pushes
    ``{"total", "counts", "rejected", "pending"}`` to XCom.

    :param invoices: unique ids to wait for (templated).
    :param ledger_path: a bulk ledger whose PENDING invoices to wait for (templated); used when
        ``invoices`` is not given.
    :param cleartax_conn_id: Airflow connection id.
    :param poll_interval: seconds between checks (also the default ``poke_interval``).
    :param fail_on_rejections: fail when ZATCA refused any invoice; otherwise succeed and list them.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param hook_params: further keyword arguments of the hook.
    """

    template_fields: Sequence[str] = ("invoices", "ledger_path")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        invoices: Sequence[str] | None = None,
        ledger_path: Any = None,
        cleartax_conn_id: str = "cleartax_default",
        poll_interval: float = 60,
        fail_on_rejections: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if invoices is None and ledger_path is None:
            raise ValueError("ClearTaxInvoicesReportedSensor needs invoices or a ledger_path")
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.invoices = invoices
        self.ledger_path = ledger_path
        self.cleartax_conn_id = cleartax_conn_id
        self.poll_interval = poll_interval
        self.fail_on_rejections = fail_on_rejections
        self.deferrable = deferrable
        self.hook_params = dict(hook_params or {})

    @cached_property
    def hook(self) -> ClearTaxHook:
        """The blocking hook of the poke checks."""
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        return ClearTaxHook(cleartax_conn_id=self.cleartax_conn_id, **self.hook_params)

    def _unique_ids(self) -> list[str]:
        if self.invoices is not None:
            return list(dict.fromkeys(str(uid) for uid in self.invoices))
        return pending_in_ledger(self.ledger_path)

    def execute(self, context: Context) -> Any:
        """Poke, or defer to the shared bulk trigger."""
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_cleartax.triggers.bulk import ClearTaxInvoicesReportedTrigger

        unique_ids = self._unique_ids()
        if not unique_ids:
            self.log.info("No invoices to wait for")
            return {"total": 0, "counts": {}, "rejected": {}, "pending": []}
        checked = self.poke(context)  # never defer for answers already in hand
        if checked.is_done:
            return checked.xcom_value
        self.log.info("Deferring until %s invoice(s) are final", len(unique_ids))
        self.defer(
            trigger=ClearTaxInvoicesReportedTrigger(
                cleartax_conn_id=self.cleartax_conn_id,
                invoices=unique_ids,
                poll_interval=self.poll_interval,
                deadline=time.time() + self.timeout,
                hook_params=self.hook_params,
            ),
            method_name="execute_complete",
            timeout=self.execution_timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """Check every invoice once with Get bulk."""
        from airflow_provider_cleartax.exceptions import ClearTaxError, ClearTaxPermanentError

        unique_ids = self._unique_ids()
        try:
            items = self.hook.get_bulk_status(unique_ids) if unique_ids else []
        except ClearTaxPermanentError:
            raise
        except ClearTaxError as error:
            self.log.warning("ClearTax check failed (%s); trying again at the next poke", error)
            return PokeReturnValue(is_done=False)
        statuses = {uid: item.einvoice_status for uid, item in zip(unique_ids, items)}
        rejected = {
            uid: [entry.to_api() for entry in item.error_list]
            for uid, item in zip(unique_ids, items)
            if item.einvoice_status in FAILURE_STATUSES
        }
        pending = [
            uid for uid, status in statuses.items() if status not in SUCCESS_STATUSES | FAILURE_STATUSES
        ]
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status or "UNKNOWN"] = counts.get(status or "UNKNOWN", 0) + 1
        if pending:
            self.log.info("Not final yet: %s", counts)
            return PokeReturnValue(is_done=False)
        result = {
            "total": len(statuses),
            "counts": dict(sorted(counts.items())),
            "rejected": dict(list(rejected.items())[:_LISTED]),
            "pending": [],
        }
        self._raise_for_rejections(result)
        return PokeReturnValue(is_done=True, xcom_value=result)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Turn the trigger's event into the task's result or error."""
        from airflow_provider_cleartax.exceptions import ClearTaxPermanentError
        from airflow_provider_cleartax.triggers.cleartax import error_from_event

        try:
            from airflow.sdk.exceptions import AirflowSensorTimeout
        except ImportError:  # Airflow 3.1
            from airflow.exceptions import AirflowSensorTimeout  # type: ignore[no-redef]

        status = event.get("status")
        result = {key: event.get(key) for key in ("total", "counts", "rejected", "pending")}
        if status == "error":
            raise error_from_event(event, conn_id=self.cleartax_conn_id)
        if status == "timeout":
            raise AirflowSensorTimeout(f"Sensor timed out: {event.get('message')}")
        if status not in ("success", "failed"):
            raise ClearTaxPermanentError(f"unexpected trigger event {event!r}")
        self.log.info("%s: %s", event.get("message"), result["counts"])
        self._raise_for_rejections(result)
        return result

    def _raise_for_rejections(self, result: Mapping[str, Any]) -> None:
        from airflow_provider_cleartax.exceptions import ClearTaxInvoiceRejectedError

        rejected = result["rejected"] or {}
        if rejected and self.fail_on_rejections:
            raise ClearTaxInvoiceRejectedError(
                f"ZATCA refused invoice(s) {', '.join(list(rejected)[:5])} (by status: {result['counts']})",
                endpoint="get_bulk",
                errors=[entry for entries in rejected.values() for entry in entries][:5],
                result=dict(result),
            )
