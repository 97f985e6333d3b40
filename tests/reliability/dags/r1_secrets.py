"""DAGs of the secrets test (R1): every ClearTax tool meeting 401, 403, 5xx and a rejection.

One DAG per (failure, token kind); each uses the connection of the same name, which the test
defines in the components' environment. The token is never in this file: the tasks only know
connection ids. Every task is expected to fail (``retries=0``) except ``hook_calls``, which
returns the text of every error it caught so the test can read it through the REST API.
"""

from __future__ import annotations

import copy
import json
import time
import traceback
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Variable, task

from airflow_provider_cleartax.operators.bulk import ClearTaxSubmitInvoicesOperator
from airflow_provider_cleartax.operators.cleartax import (
    ClearTaxGenerateInvoiceAsyncOperator,
    ClearTaxGenerateInvoiceOperator,
)
from airflow_provider_cleartax.sensors.cleartax import ClearTaxInvoiceStatusSensor

INVOICES = Path(__file__).resolve().parents[2] / "data" / "invoices"
STANDARD = json.loads((INVOICES / "standard_invoice.json").read_text(encoding="utf-8"))
SIMPLIFIED = json.loads((INVOICES / "simplified_invoice.json").read_text(encoding="utf-8"))
VAT = "300000000000003"
#: A VAT the account knows but the tokens may not use: ClearTax answers 403.
OTHER_VAT = "311111111111113"
FAILURES = ("401", "403", "5xx", "rejected")
TOKEN_KINDS = ("plain", "special")
#: A device the emulator does not know: ClearTax answers 200 with an ErrorList (a rejection).
UNKNOWN_DEVICE = "00000000-0000-4000-8000-00000000dead"


def _numbered(invoice: dict[str, Any], number: str, *, vat: str, **changes: Any) -> dict[str, Any]:
    numbered = copy.deepcopy(invoice)
    numbered["ID"] = {"en": number, "ar": None}
    numbered["AccountingSupplierParty"]["Party"]["PartyTaxScheme"]["CompanyID"] = vat
    return {**numbered, **changes}


def _unique_id(invoice: dict[str, Any]) -> str:
    vat = invoice["AccountingSupplierParty"]["Party"]["PartyTaxScheme"]["CompanyID"]
    return f"{vat}_{invoice['ID']['en']}_{invoice['InvoiceTypeCode']['value']}_{invoice['IssueDate'][:4]}"


class ClearTaxDeferAtOnceSensor(ClearTaxInvoiceStatusSensor):
    """Defer without the first check, so the triggerer meets the failure (as for a token revoked mid-wait)."""

    def execute(self, context: Any) -> Any:
        self.defer(
            trigger=self._trigger(deadline=time.time() + self.timeout),
            method_name="execute_complete",
        )


def _error_texts(error: BaseException) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        "attributes": repr(vars(error)),
        "traceback": "".join(traceback.format_exception(error)),
    }


for failure in FAILURES:
    for kind in TOKEN_KINDS:
        name = f"r1_{failure}_{kind}"
        rejected = failure == "rejected"
        # The bulk engine sends each invoice under its seller's VAT: for 403 the seller is the other VAT.
        vat = OTHER_VAT if failure == "403" else VAT
        standard = _numbered(
            STANDARD, f"R1-{failure}-{kind}-STD", vat=vat, **({"TaxCurrencyCode": "USD"} if rejected else {})
        )
        simplified = _numbered(
            SIMPLIFIED,
            f"R1/{failure}/{kind}/SIM",
            vat=vat,
            **({"TaxCurrencyCode": "USD"} if rejected else {}),
        )
        common = {"cleartax_conn_id": name, "retries": 0}
        with DAG(dag_id=name, schedule=None, catchup=False, tags=["r1"]):
            generate = ClearTaxGenerateInvoiceOperator(
                task_id="generate", invoice=standard, validate=not rejected, **common
            )
            generate_async = ClearTaxGenerateInvoiceAsyncOperator(
                task_id="generate_async",
                invoice=simplified,
                validate=not rejected,
                deferrable=True,
                poll_interval=1,
                **common,
            )
            wait = ClearTaxInvoiceStatusSensor(
                task_id="sensor",
                invoices=_unique_id(standard),
                deferrable=True,
                poll_interval=1,
                timeout=8,
                trigger_rule="all_done",
                **common,
            )
            wait_in_triggerer = ClearTaxDeferAtOnceSensor(
                task_id="sensor_in_triggerer",
                invoices=[_unique_id(standard), _unique_id(simplified)],
                deferrable=True,
                poll_interval=1,
                timeout=8,
                trigger_rule="all_done",
                **common,
            )
            generate >> wait
            [generate, generate_async] >> wait_in_triggerer
            ClearTaxSubmitInvoicesOperator(
                task_id="bulk",
                invoices=[
                    _numbered(STANDARD, f"R1-{failure}-{kind}-BULK-1", vat=vat),
                    _numbered(SIMPLIFIED, f"R1/{failure}/{kind}/BULK-2", vat=vat),
                ],
                device_id=UNKNOWN_DEVICE if rejected else None,
                concurrency=2,
                **common,
            )

            @task(task_id="hook_calls")
            def hook_calls(conn_id: str, invoice: dict[str, Any]) -> list[dict[str, Any]]:
                """Call the hook directly and return the texts of the errors it raised."""
                from airflow_provider_cleartax.exceptions import ClearTaxError
                from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook

                hook = ClearTaxHook(cleartax_conn_id=conn_id)
                caught = []
                for call in (
                    lambda: hook.get_invoice(unique_id=_unique_id(invoice)),
                    lambda: hook.generate_invoice(invoice),
                ):
                    try:
                        result = call()
                    except ClearTaxError as error:
                        caught.append(_error_texts(error))
                    else:
                        caught.append({"type": None, "result": repr(result)})
                return caught

            hook_calls(name, _numbered(STANDARD, f"R1-{failure}-{kind}-HOOK", vat=vat, TaxCurrencyCode="USD"))

with DAG(dag_id="r1_canary", schedule=None, catchup=False, tags=["r1"]):

    @task
    def canary() -> str:
        """Log and return a known marker, to show the test's search reaches logs and XCom."""
        value = Variable.get("r1_canary")
        print(f"canary: {value}")
        return value

    canary()
