"""Sensors that wait for ClearTax invoices and PCSID activities to reach a final state."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_cleartax.exceptions import ClearTaxConfigError, ClearTaxError, ClearTaxPermanentError
from airflow_provider_cleartax.triggers.cleartax import (
    ClearTaxInvoiceStatusTrigger,
    ClearTaxPcsidStatusTrigger,
    check_invoices,
    normalize_invoices,
    pcsid_failure,
    pcsid_message,
    pcsid_state,
    raise_for_event,
)

try:
    from airflow.sdk import BaseSensorOperator, PokeReturnValue
except ImportError:  # pragma: no cover - Airflow < 3.1 layouts
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue  # type: ignore[no-redef]

try:
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[no-redef]

try:
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
    from airflow_provider_cleartax.triggers.cleartax import InvoiceIdentity


class _ClearTaxSensor(BaseSensorOperator):
    """Poke with the blocking hook, or check once and defer to a trigger that polls asynchronously.

    Transient ClearTax errors (after the hook's own retries) count as "not yet", in poke and in
    deferrable mode alike, until the sensor's ``timeout``; permanent ones fail the task at once.
    """

    def __init__(
        self,
        *,
        cleartax_conn_id: str,
        vat: str | None,
        poll_interval: float,
        deferrable: bool,
        hook_params: Mapping[str, Any] | None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.cleartax_conn_id = cleartax_conn_id
        self.vat = vat
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.hook_params = dict(hook_params or {})

    def _hook_params(self) -> dict[str, Any]:
        return {**self.hook_params, "vat": self.vat} if self.vat else dict(self.hook_params)

    @cached_property
    def hook(self) -> ClearTaxHook:
        """The blocking hook of the poke checks."""
        from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

        return ClearTaxHook(cleartax_conn_id=self.cleartax_conn_id, **self._hook_params())

    def execute(self, context: Context) -> Any:
        """Wait for the final state: poke, or check once and defer while it is not final."""
        try:
            if not self.deferrable:
                return super().execute(context)
            started = time.time()
            try:
                done = self.poke(context)
            except ClearTaxPermanentError as error:
                if self.soft_fail or self.never_fail:
                    raise AirflowSkipException(f"Skipping: {error}") from error
                raise
            if done:
                self.log.info("Final state on the first check; not deferring")
                return done.xcom_value
            self.log.info("Not final yet; deferring until %s s from now", self.timeout)
            self.defer(
                trigger=self._trigger(deadline=started + self.timeout),
                method_name="execute_complete",
                timeout=self.execution_timeout,
            )
        finally:
            if "hook" in self.__dict__:
                self.hook.close()

    def poke(self, context: Context) -> PokeReturnValue:
        """Check once; done when final and successful, raise when refused."""
        try:
            return self._poke()
        except ClearTaxPermanentError:
            raise
        except ClearTaxError as error:
            self.log.warning("ClearTax check failed (%s); trying again at the next poke", error)
            return PokeReturnValue(is_done=False)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Turn the trigger's event into the task's result or error."""
        raise_for_event(event, conn_id=self.cleartax_conn_id)
        self.log.info("%s", event.get("message"))
        return self._success_xcom(event)

    def _poke(self) -> PokeReturnValue:
        raise NotImplementedError

    def _trigger(self, *, deadline: float) -> Any:
        raise NotImplementedError

    def _success_xcom(self, event: Mapping[str, Any]) -> Any:
        raise NotImplementedError


class ClearTaxInvoiceStatusSensor(_ClearTaxSensor):
    """Wait until ZATCA has cleared or reported every invoice; fail as soon as one is refused.

    Pushes ``{<uniqueId or invoiceNumber>: <InvoiceStatus>}`` to XCom. One invoice is checked
    with Get invoice, several with Get bulk (10 calls a minute at ClearTax: keep ``poll_interval``
    at 6 s or more).

    :param invoices: one ``uniqueId``, or a list of unique ids and dicts of ``invoiceNumber``,
        ``invoiceType``, ``issueDate`` and optionally ``vat`` (templated; an empty list succeeds
        at once).
    :param cleartax_conn_id: Airflow connection id.
    :param vat: seller VAT overriding the connection's (templated).
    :param poll_interval: seconds between checks (also the default ``poke_interval``).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param hook_params: further keyword arguments of the hook (``request_timeout``, ``max_retries``...).
    """

    template_fields: Sequence[str] = ("invoices", "vat")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        invoices: str | Sequence[str | Mapping[str, Any]],
        cleartax_conn_id: str = "cleartax_default",
        vat: str | None = None,
        poll_interval: float = 30,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            cleartax_conn_id=cleartax_conn_id,
            vat=vat,
            poll_interval=poll_interval,
            deferrable=deferrable,
            hook_params=hook_params,
            **kwargs,
        )
        self.invoices = invoices

    @cached_property
    def identities(self) -> list[InvoiceIdentity]:
        """The rendered invoices, normalized."""
        try:
            return normalize_invoices(self.invoices)
        except ValueError as error:
            raise ClearTaxConfigError(str(error)) from None

    def _poke(self) -> PokeReturnValue:
        if not self.identities:
            self.log.info("No invoices to wait for")
            return PokeReturnValue(is_done=True, xcom_value={})
        check = check_invoices(self.hook, self.identities)
        if check.state == "failed":
            raise check.rejection()
        if check.state == "success":
            self.log.info("ZATCA accepted all %s invoice(s): %s", len(self.identities), check.summary())
            return PokeReturnValue(is_done=True, xcom_value=dict(check.statuses))
        self.log.info("Not final yet: %s", check.summary())
        return PokeReturnValue(is_done=False)

    def _trigger(self, *, deadline: float) -> ClearTaxInvoiceStatusTrigger:
        return ClearTaxInvoiceStatusTrigger(
            cleartax_conn_id=self.cleartax_conn_id,
            invoices=self.identities,
            poll_interval=self.poll_interval,
            deadline=deadline,
            hook_params=self._hook_params(),
        )

    def _success_xcom(self, event: Mapping[str, Any]) -> dict[str, str | None]:
        return dict(event["invoices"])


class ClearTaxPcsidStatusSensor(_ClearTaxSensor):
    """Wait until a PCSID generation activity has SUCCEEDED; fail when it FAILED.

    Pushes ``{"activity_id": ..., "pcsid_status": "SUCCEEDED"}`` to XCom.

    :param activity_id: the ``PcsidGenerationActivityId`` of generate-csid (templated).
    :param cleartax_conn_id: Airflow connection id.
    :param vat: seller VAT overriding the connection's (templated).
    :param poll_interval: seconds between checks (also the default ``poke_interval``).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param hook_params: further keyword arguments of the hook (``request_timeout``, ``max_retries``...).
    """

    template_fields: Sequence[str] = ("activity_id", "vat")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        activity_id: str,
        cleartax_conn_id: str = "cleartax_default",
        vat: str | None = None,
        poll_interval: float = 10,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        hook_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            cleartax_conn_id=cleartax_conn_id,
            vat=vat,
            poll_interval=poll_interval,
            deferrable=deferrable,
            hook_params=hook_params,
            **kwargs,
        )
        self.activity_id = activity_id

    def _activity_id(self) -> str:
        if not isinstance(self.activity_id, str) or not self.activity_id.strip():
            raise ClearTaxConfigError(f"activity_id must be a PCSID activity id, got {self.activity_id!r}")
        return self.activity_id.strip()

    def _poke(self) -> PokeReturnValue:
        activity_id = self._activity_id()
        result = self.hook.get_pcsid_status(activity_id)
        state = pcsid_state(result.status)
        errors = [entry.to_api() for entry in result.error_list]
        if state == "failed":
            raise pcsid_failure(activity_id, result.status, errors)
        if state == "success":
            self.log.info("%s", pcsid_message(activity_id, result.status, errors))
            return PokeReturnValue(
                is_done=True, xcom_value={"activity_id": activity_id, "pcsid_status": result.status}
            )
        self.log.info("PCSID activity %s is %s", activity_id, result.status)
        return PokeReturnValue(is_done=False)

    def _trigger(self, *, deadline: float) -> ClearTaxPcsidStatusTrigger:
        return ClearTaxPcsidStatusTrigger(
            cleartax_conn_id=self.cleartax_conn_id,
            activity_id=self._activity_id(),
            poll_interval=self.poll_interval,
            deadline=deadline,
            hook_params=self._hook_params(),
        )

    def _success_xcom(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return {"activity_id": event["activity_id"], "pcsid_status": event["pcsid_status"]}
