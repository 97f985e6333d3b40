"""Extra links from a task to the invoice or device it handled, in the ClearTax web portal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk import BaseOperatorLink
except ImportError:  # pragma: no cover - Airflow < 3.1 layouts
    from airflow.models.baseoperatorlink import BaseOperatorLink  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

#: XCom keys the operators push before calling ClearTax, so the links work after a failure too.
INVOICE_URL_XCOM_KEY = "cleartax_invoice_url"
DEVICE_URL_XCOM_KEY = "cleartax_device_url"


def _xcom_value(ti_key: TaskInstanceKey, key: str) -> Any:
    try:
        from airflow.sdk.execution_time.xcom import XCom
    except ImportError:  # pragma: no cover - Airflow 3.1 API server
        from airflow.models.xcom import XCom  # type: ignore[no-redef]
    return XCom.get_value(ti_key=ti_key, key=key)


class ClearTaxInvoiceLink(BaseOperatorLink):
    """Link to the invoice the task submitted or fetched."""

    name = "ClearTax invoice"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_value(ti_key, INVOICE_URL_XCOM_KEY) or ""


class ClearTaxDeviceLink(BaseOperatorLink):
    """Link to the EGS device the task onboarded."""

    name = "ClearTax device"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_value(ti_key, DEVICE_URL_XCOM_KEY) or ""
