"""Typed answers of the ClearTax KSA API.

Fields are snake_case with ClearTax's spelling as alias; fields ClearTax adds later are kept
(``model_extra``) rather than dropped, and ``to_api()`` gives the answer back as ClearTax sent it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_cleartax.client.statuses import FAILURE_STATUSES, SUCCESS_STATUSES, TERMINAL_STATUSES


class ApiModel(BaseModel):
    """Base of every answer: tolerant of unknown fields and of ``null`` lists."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    def to_api(self) -> dict[str, Any]:
        """Return the answer in ClearTax's own field names."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class ApiErrorEntry(ApiModel):
    """One entry of ClearTax's ``ErrorList`` / ``WarningList``."""

    error_code: str | None = Field(None, alias="ErrorCode")
    error_message: str | None = Field(None, alias="ErrorMessage")
    error_source: str | None = Field(None, alias="ErrorSource")
    path: str | None = Field(None, alias="Path")

    @field_validator("error_code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"[{self.error_code}] {self.error_message}{where}"


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


class InvoiceResult(ApiModel):
    """Answer of generate (sync, async, from XML) and Get invoice."""

    device_id: str | None = Field(None, alias="DeviceId")
    status: str | None = Field(None, alias="Status")
    qr_code_status: str | None = Field(None, alias="QrCodeStatus")
    invoice_status: str | None = Field(None, alias="InvoiceStatus")
    uuid: str | None = Field(None, alias="UUID")
    icv: int | str | None = Field(None, alias="ICV")
    pih: str | None = Field(None, alias="PIH")
    invoice_hash: str | None = Field(None, alias="InvoiceHash")
    qr_code: str | None = Field(None, alias="QRCode")
    raw_qr_code: str | None = Field(None, alias="RawQRCode")
    invoice_xml: str | None = Field(None, alias="InvoiceXml", repr=False)
    issue_date: str | None = Field(None, alias="IssueDate")
    issue_time: str | None = Field(None, alias="IssueTime")
    generated_date: str | None = Field(None, alias="GeneratedDate")
    generated_time: str | None = Field(None, alias="GeneratedTime")
    seller_vat_number: str | None = Field(None, alias="SellerVatNumber")
    buyer_vat_number: str | None = Field(None, alias="BuyerVatNumber")
    error_list: list[ApiErrorEntry] = Field(default_factory=list, alias="ErrorList")
    warning_list: list[ApiErrorEntry] = Field(default_factory=list, alias="WarningList")
    message: str | None = Field(None, alias="Message")

    _empty_lists = field_validator("error_list", "warning_list", mode="before")(_none_as_empty)

    @property
    def is_terminal(self) -> bool:
        """Whether ZATCA has answered for good (cleared, reported, or refused)."""
        return self.invoice_status in TERMINAL_STATUSES

    @property
    def is_success(self) -> bool:
        """Whether the invoice is cleared or reported (possibly with warnings)."""
        return self.invoice_status in SUCCESS_STATUSES and not self.error_list

    @property
    def is_rejected(self) -> bool:
        """Whether ClearTax or ZATCA refused the invoice."""
        return (
            bool(self.error_list)
            or self.invoice_status in FAILURE_STATUSES
            or self.status
            in (
                "NOT_GENERATED",
                "GENERATION_FAILED",
            )
        )

    def summary(self) -> dict[str, Any]:
        """Return the small, XCom-friendly part: status, identity and chain fields, no XML."""
        return {
            "invoice_status": self.invoice_status,
            "status": self.status,
            "uuid": self.uuid,
            "icv": self.icv,
            "device_id": self.device_id,
            "issue_date": self.issue_date,
            "errors": [e.to_api() for e in self.error_list],
            "warnings": [e.to_api() for e in self.warning_list],
        }


class ZatcaMessage(ApiModel):
    """One ZATCA validation message of the signed-XML endpoint."""

    type: str | None = None
    code: str | None = None
    category: str | None = None
    message: str | None = None
    status: str | None = None


class ZatcaValidationResults(ApiModel):
    """ZATCA's ``validationResults`` block."""

    info_messages: list[ZatcaMessage] = Field(default_factory=list, alias="infoMessages")
    warning_messages: list[ZatcaMessage] = Field(default_factory=list, alias="warningMessages")
    error_messages: list[ZatcaMessage] = Field(default_factory=list, alias="errorMessages")
    status: str | None = None

    _empty_lists = field_validator("info_messages", "warning_messages", "error_messages", mode="before")(
        _none_as_empty
    )


class SignedXmlResult(ApiModel):
    """Answer of the signed-XML endpoint, in ZATCA's own shape."""

    validation_results: ZatcaValidationResults = Field(
        default_factory=ZatcaValidationResults, alias="validationResults"
    )
    cleared_invoice: str | None = Field(None, alias="clearedInvoice", repr=False)
    clearance_status: str | None = Field(None, alias="clearanceStatus")
    reporting_status: str | None = Field(None, alias="reportingStatus")

    @property
    def error_list(self) -> list[ApiErrorEntry]:
        """ZATCA's error messages, as ClearTax error entries."""
        return [
            ApiErrorEntry(ErrorCode=m.code, ErrorMessage=m.message, ErrorSource="ZATCA", Path=m.category)
            for m in self.validation_results.error_messages
        ]

    @property
    def is_rejected(self) -> bool:
        """Whether ZATCA refused the document."""
        return self.validation_results.status == "ERROR" or (
            self.clearance_status in FAILURE_STATUSES or self.reporting_status in FAILURE_STATUSES
        )


class BulkStatusItem(ApiModel):
    """Status of one invoice in a Get bulk answer."""

    invoice_number: str | None = Field(None, alias="invoiceNumber")
    unique_id: str | None = Field(None, alias="uniqueId")
    invoice_type: str | None = Field(None, alias="invoiceType")
    issue_date: str | None = Field(None, alias="issueDate")
    einvoice_status: str | None = Field(None, alias="einvoiceStatus")
    error_list: list[ApiErrorEntry] = Field(default_factory=list, alias="ErrorList")

    _empty_lists = field_validator("error_list", mode="before")(_none_as_empty)

    @property
    def is_known(self) -> bool:
        """Whether ClearTax knows the invoice (unknown ones come back with status ``null``)."""
        return self.einvoice_status is not None


class BulkStatusResult(ApiModel):
    """Answer of Get bulk: one item per identity asked for, in order."""

    invoices: list[BulkStatusItem] = Field(default_factory=list, alias="Invoices")

    _empty_lists = field_validator("invoices", mode="before")(_none_as_empty)


class DeviceResult(ApiModel):
    """Answer of register-device and generate-csr."""

    device_id: str | None = Field(None, alias="DeviceId")
    status: str | None = Field(None, alias="Status")
    error_list: list[ApiErrorEntry] = Field(default_factory=list, alias="ErrorList")

    _empty_lists = field_validator("error_list", mode="before")(_none_as_empty)


class CsidResult(DeviceResult):
    """Answer of generate-csid: the device's CSID and the PCSID activity to follow."""

    pcsid_generation_activity_id: str | None = Field(None, alias="PcsidGenerationActivityId")


class PcsidStatus(ApiModel):
    """Answer of pcsid-status (a FAILED activity comes back as HTTP 500 and is mapped here too)."""

    activity_type: str | None = Field(None, alias="ActivityType")
    status: str | None = Field(None, alias="Status")
    created_at: str | None = Field(None, alias="CreatedAt")
    updated_at: str | None = Field(None, alias="UpdatedAt")
    completed_at: str | None = Field(None, alias="CompletedAt")
    error_list: list[ApiErrorEntry] = Field(default_factory=list, alias="ErrorList")

    _empty_lists = field_validator("error_list", mode="before")(_none_as_empty)

    @property
    def is_terminal(self) -> bool:
        """Whether the activity has finished, one way or the other."""
        return self.status in ("SUCCEEDED", "FAILED")


class EmailResult(ApiModel):
    """Answer of the email endpoint (its fields are not documented: all are kept)."""


class PdfDownload(ApiModel):
    """Where a streamed PDF was written, and how big it is."""

    path: str
    size: int
    content_type: str | None = None
