"""Pydantic models of ClearTax's KSA E-Invoice object and of the request bodies that carry it.

Every model accepts snake_case names or ClearTax's own spelling, keeps unknown fields, and
``to_api()`` gives back exactly what was read: same keys, same key order, same JSON number types.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    Tag,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import PydanticCustomError

PROFILE_ID = "reporting:1.0"
TAX_CURRENCY = "SAR"

#: ``InvoiceTypeCode.value`` -> document type used by the query endpoints.
DOCUMENT_TYPES: dict[str, str] = {"388": "INV", "381": "CRN", "383": "DBN", "386": "RECEIPT"}
#: Type codes of documents that correct an earlier invoice and so need a reference and a reason.
NOTE_TYPE_CODES = frozenset({"381", "383"})

#: VAT rate (percent) of each tax category; ``Z``, ``E`` and ``O`` carry no tax.
TAX_CATEGORY_PERCENT: dict[str, Decimal] = {
    "S": Decimal(15),
    "Z": Decimal(0),
    "E": Decimal(0),
    "O": Decimal(0),
}
EXEMPTION_REASON_CODES = frozenset(
    {
        "VATEX-SA-29",
        "VATEX-SA-29-7",
        "VATEX-SA-30",
        "VATEX-SA-32",
        "VATEX-SA-33",
        "VATEX-SA-34-1",
        "VATEX-SA-34-2",
        "VATEX-SA-34-3",
        "VATEX-SA-34-4",
        "VATEX-SA-34-5",
        "VATEX-SA-35",
        "VATEX-SA-36",
        "VATEX-SA-EDU",
        "VATEX-SA-HEA",
        "VATEX-SA-MLTRY",
        "VATEX-SA-OOS",
    }
)
#: Identification schemes a buyer without a VAT number may be known by.
BUYER_ID_SCHEMES = frozenset({"TIN", "CRN", "MOM", "MLS", "700", "SAG", "NAT", "GCC", "IQA", "PAS", "OTH"})

#: Union tags that pydantic puts into error locations; they are not part of the JSON path.
UNION_TAGS = frozenset({"text", "bilingual", "one", "many"})
#: Numbers beyond these are absurd for an invoice and would exceed the precision the checks compute with.
NUMBER_LIMIT = Decimal("1e18")
NUMBER_DIGITS = 40
_SHOWN_CHARS = 40


def _json_number(value: Any) -> int | float | str:
    """Accept a JSON number (or a numeric string) and keep it exactly as given.

    :param value: the raw input value.
    """
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "expected a number, got a boolean")
    if isinstance(value, int):
        _check_range(Decimal(value))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("number_type", "expected a finite number")
        _check_range(Decimal(str(value)))
        return value
    if isinstance(value, Decimal):
        # Decimals only come from Python callers; floats serialise as JSON numbers.
        if not value.is_finite():
            raise PydanticCustomError("number_type", "expected a finite number")
        _check_range(value)
        return int(value) if value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            parsed = None
        if parsed is None or not parsed.is_finite():
            shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."
            raise PydanticCustomError("number_type", "expected a number, got {value!r}", {"value": shown})
        _check_range(parsed)
        return value
    raise PydanticCustomError("number_type", "expected a number, got {kind}", {"kind": type(value).__name__})


def _in_range(number: Decimal) -> bool:
    if not number.is_finite():
        return False
    return abs(number) < NUMBER_LIMIT and len(number.as_tuple().digits) <= NUMBER_DIGITS


def _check_range(number: Decimal) -> None:
    if not _in_range(number):
        raise PydanticCustomError(
            "number_range",
            "number out of range: at most {digits} digits and less than {limit} in size",
            {"digits": NUMBER_DIGITS, "limit": "1e18"},
        )


def _json_code(value: Any) -> str | int:
    """Accept a code given as a string or an integer and keep it as given.

    :param value: the raw input value.
    """
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise PydanticCustomError(
        "code_type", "expected a string or an integer, got {kind}", {"kind": type(value).__name__}
    )


#: A JSON number, kept as int, float or numeric string exactly as the caller wrote it.
Number = Annotated[int | float | str, PlainValidator(_json_number)]
#: A code such as ``PaymentMeansCode`` or a line ``ID`` that ClearTax accepts as text or integer.
Code = Annotated[str | int, PlainValidator(_json_code)]


def to_decimal(value: Any) -> Decimal | None:
    """Return a JSON number (int, float or numeric string) as a Decimal, or None if it is not one.

    :param value: the value to convert.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        # str() first so that 0.1 becomes Decimal("0.1"), not its binary expansion.
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if _in_range(result) else None


class ApiModel(BaseModel):
    """Base of every ClearTax body: alias-aware, open to unknown fields, order-preserving."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    _input_keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_key_order(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        instance = handler(data)
        if isinstance(data, Mapping) and instance is not data:
            instance._input_keys = tuple(data)
        return instance

    def to_api(self) -> dict[str, Any]:
        """Return the body as ClearTax spells it: only the fields that were given, in their input order.

        ``model_dump(by_alias=True, exclude_unset=True)`` gives the same content; this also restores
        the order of keys, so that the JSON text of a payload read and written again is unchanged.
        """
        return _in_input_order(self, self.model_dump(by_alias=True, exclude_unset=True))


def _in_input_order(value: Any, dumped: Any) -> Any:
    """Reorder the keys of a dumped model (recursively) as they came in."""
    if isinstance(value, list) and isinstance(dumped, list):
        return [_in_input_order(item, item_dumped) for item, item_dumped in zip(value, dumped, strict=True)]
    if not isinstance(value, ApiModel) or not isinstance(dumped, dict):
        return dumped
    model = type(value)
    for name, key in _dumped_keys(model):
        if key in dumped:
            dumped[key] = _in_input_order(value.__dict__[name], dumped[key])
    # Read the private attribute directly: pydantic's __getattr__ is slow on hot paths.
    input_keys = value.__pydantic_private__["_input_keys"]
    if not input_keys:
        return dumped
    canonical = _canonical_names(model)
    rank = {canonical.get(key, key): index for index, key in enumerate(input_keys)}
    unseen = len(rank)
    ordered = sorted(dumped, key=lambda key: rank.get(canonical.get(key, key), unseen))
    return {key: dumped[key] for key in ordered}


@cache
def _dumped_keys(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """Return (Python name, JSON key) of every field of a model."""
    return tuple((name, field.alias or name) for name, field in model.model_fields.items())


@cache
def _canonical_names(model: type[BaseModel]) -> dict[str, str]:
    """Map both the alias and the Python name of every field to the Python name."""
    names: dict[str, str] = {}
    for name, key in _dumped_keys(model):
        names[name] = name
        names[key] = name
    return names


class _BodyWithDefaults(ApiModel):
    """A request body whose non-None defaults (``printTemplateId`` "39", ...) are always sent."""

    @model_validator(mode="after")
    def _send_defaults(self) -> _BodyWithDefaults:
        for name, field in type(self).model_fields.items():
            if not field.is_required() and field.default is not None:
                self.__pydantic_fields_set__.add(name)
        return self


def _text_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping | Bilingual):
        return "bilingual"
    return None


def _note_kind(value: Any) -> str | None:
    return "many" if isinstance(value, list | tuple) else _text_kind(value)


def _one_or_many_kind(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return "many"
    if isinstance(value, Mapping | BaseModel):
        return "one"
    return None


class Bilingual(ApiModel):
    """Text in English and Arabic; either may be null."""

    en: str | None = None
    ar: str | None = None

    def text(self) -> str | None:
        """Return the English text, else the Arabic one."""
        return self.en or self.ar


#: Free text: a plain string or ``{"en": ..., "ar": ...}``.
Text = Annotated[
    Annotated[str, Tag("text")] | Annotated[Bilingual, Tag("bilingual")],
    Discriminator(
        _text_kind,
        custom_error_type="text_type",
        custom_error_message="expected a string or a bilingual object {en, ar}",
    ),
]


#: Free text that UBL lets repeat: a ``Text`` or a list of strings.
Notes = Annotated[
    Annotated[str, Tag("text")] | Annotated[Bilingual, Tag("bilingual")] | Annotated[list[str], Tag("many")],
    Discriminator(
        _note_kind,
        custom_error_type="text_type",
        custom_error_message="expected a string, a bilingual object {en, ar} or a list of strings",
    ),
]


class Amount(ApiModel):
    """A monetary amount: ``{"currencyID": "SAR", "value": 100.0}``."""

    currency_id: str = Field(alias="currencyID")
    value: Number

    @property
    def amount(self) -> Decimal:
        """Return the value as a Decimal."""
        return Decimal(str(self.value))


class Quantity(ApiModel):
    """An invoiced quantity: ``{"unitCode": "PCE", "value": 2}``."""

    unit_code: str | None = Field(default=None, alias="unitCode")
    value: Number


class Identifier(ApiModel):
    """An identifier with its scheme: ``{"schemeID": "CRN", "value": "1010010000"}``."""

    scheme_id: str | None = Field(default=None, alias="schemeID")
    value: str


class PartyIdentification(ApiModel):
    """``PartyIdentification``: the party's non-VAT identifier."""

    id: Identifier = Field(alias="ID")


class Country(ApiModel):
    """``Country`` of a postal address."""

    identification_code: str = Field(alias="IdentificationCode")


class PostalAddress(ApiModel):
    """A party's postal address (national address for Saudi parties)."""

    street_name: Text | None = Field(default=None, alias="StreetName")
    additional_street_name: Text | None = Field(default=None, alias="AdditionalStreetName")
    building_number: str | None = Field(default=None, alias="BuildingNumber")
    plot_identification: str | None = Field(default=None, alias="PlotIdentification")
    city_name: Text | None = Field(default=None, alias="CityName")
    city_subdivision_name: Text | None = Field(default=None, alias="CitySubdivisionName")
    postal_zone: str | None = Field(default=None, alias="PostalZone")
    country_subentity: Text | None = Field(default=None, alias="CountrySubentity")
    country: Country | None = Field(default=None, alias="Country")


class TaxScheme(ApiModel):
    """``TaxScheme``: always ``{"ID": "VAT"}`` in KSA."""

    id: str = Field(alias="ID")


class PartyTaxScheme(ApiModel):
    """``PartyTaxScheme``: the party's VAT (or VAT group) number."""

    company_id: str | None = Field(default=None, alias="CompanyID")
    tax_scheme: TaxScheme | None = Field(default=None, alias="TaxScheme")


class PartyLegalEntity(ApiModel):
    """``PartyLegalEntity``: the registered name."""

    registration_name: Text = Field(alias="RegistrationName")


class Party(ApiModel):
    """A trading party; every part is optional because a simplified invoice's buyer may be anonymous."""

    party_identification: PartyIdentification | None = Field(default=None, alias="PartyIdentification")
    postal_address: PostalAddress | None = Field(default=None, alias="PostalAddress")
    party_tax_scheme: PartyTaxScheme | None = Field(default=None, alias="PartyTaxScheme")
    party_legal_entity: PartyLegalEntity | None = Field(default=None, alias="PartyLegalEntity")


class SellerParty(Party):
    """The seller: address, VAT registration and legal name are mandatory."""

    postal_address: PostalAddress = Field(alias="PostalAddress")
    party_tax_scheme: PartyTaxScheme = Field(alias="PartyTaxScheme")
    party_legal_entity: PartyLegalEntity = Field(alias="PartyLegalEntity")


class SupplierParty(ApiModel):
    """``AccountingSupplierParty``."""

    party: SellerParty = Field(alias="Party")


class CustomerParty(ApiModel):
    """``AccountingCustomerParty``."""

    party: Party = Field(alias="Party")


class InvoiceTypeCode(ApiModel):
    """``InvoiceTypeCode``: ``value`` 388/381/383/386 and the 7-digit transaction ``name``."""

    name: str
    value: str


class DocumentReference(ApiModel):
    """A reference to another document by its number."""

    id: Text = Field(alias="ID")


class BillingReference(ApiModel):
    """``BillingReference``: the invoice a credit or debit note corrects."""

    invoice_document_reference: DocumentReference = Field(alias="InvoiceDocumentReference")


class Delivery(ApiModel):
    """``Delivery``: supply date and supply end date."""

    actual_delivery_date: str | None = Field(default=None, alias="ActualDeliveryDate")
    latest_delivery_date: str | None = Field(default=None, alias="LatestDeliveryDate")


class PaymentMeans(ApiModel):
    """``PaymentMeans``; on credit and debit notes ``InstructionNote`` carries the reason."""

    payment_means_code: Code | None = Field(default=None, alias="PaymentMeansCode")
    instruction_note: Notes | None = Field(default=None, alias="InstructionNote")


class TaxCategory(ApiModel):
    """``TaxCategory`` / ``ClassifiedTaxCategory``: S, Z, E or O with its percent and exemption."""

    id: str = Field(alias="ID")
    percent: Number | None = Field(default=None, alias="Percent")
    tax_scheme: TaxScheme | None = Field(default=None, alias="TaxScheme")
    tax_exemption_reason_code: str | None = Field(default=None, alias="TaxExemptionReasonCode")
    tax_exemption_reason: Text | None = Field(default=None, alias="TaxExemptionReason")


#: One tax category, or a list of them as UBL allows on allowances and charges.
TaxCategories = Annotated[
    Annotated[TaxCategory, Tag("one")] | Annotated[list[TaxCategory], Tag("many")],
    Discriminator(
        _one_or_many_kind,
        custom_error_type="tax_category_type",
        custom_error_message="expected a tax category object or a list of them",
    ),
]


class AllowanceCharge(ApiModel):
    """``AllowanceCharge``: a discount (``ChargeIndicator`` false) or a charge (true)."""

    charge_indicator: bool = Field(alias="ChargeIndicator")
    allowance_charge_reason_code: Code | None = Field(default=None, alias="AllowanceChargeReasonCode")
    allowance_charge_reason: Text | None = Field(default=None, alias="AllowanceChargeReason")
    multiplier_factor_numeric: Number | None = Field(default=None, alias="MultiplierFactorNumeric")
    amount: Amount = Field(alias="Amount")
    base_amount: Amount | None = Field(default=None, alias="BaseAmount")
    tax_category: TaxCategories | None = Field(default=None, alias="TaxCategory")


#: One allowance or charge, or a list of them.
AllowanceCharges = Annotated[
    Annotated[AllowanceCharge, Tag("one")] | Annotated[list[AllowanceCharge], Tag("many")],
    Discriminator(
        _one_or_many_kind,
        custom_error_type="allowance_charge_type",
        custom_error_message="expected an allowance/charge object or a list of them",
    ),
]


class TaxSubtotal(ApiModel):
    """``TaxSubtotal``: the taxable amount and tax of one tax category."""

    taxable_amount: Amount = Field(alias="TaxableAmount")
    tax_amount: Amount = Field(alias="TaxAmount")
    tax_category: TaxCategory = Field(alias="TaxCategory")


class TaxTotal(ApiModel):
    """Document ``TaxTotal``: the tax amount and (in the document currency) its breakdown."""

    tax_amount: Amount = Field(alias="TaxAmount")
    rounding_amount: Amount | None = Field(default=None, alias="RoundingAmount")
    tax_subtotal: list[TaxSubtotal] | None = Field(default=None, alias="TaxSubtotal")


class LineTaxTotal(ApiModel):
    """Line ``TaxTotal``: the line's VAT and its VAT-inclusive amount."""

    tax_amount: Amount = Field(alias="TaxAmount")
    rounding_amount: Amount | None = Field(default=None, alias="RoundingAmount")


class LegalMonetaryTotal(ApiModel):
    """``LegalMonetaryTotal``: the document totals."""

    line_extension_amount: Amount = Field(alias="LineExtensionAmount")
    tax_exclusive_amount: Amount = Field(alias="TaxExclusiveAmount")
    tax_inclusive_amount: Amount = Field(alias="TaxInclusiveAmount")
    allowance_total_amount: Amount | None = Field(default=None, alias="AllowanceTotalAmount")
    charge_total_amount: Amount | None = Field(default=None, alias="ChargeTotalAmount")
    prepaid_amount: Amount | None = Field(default=None, alias="PrepaidAmount")
    payable_rounding_amount: Amount | None = Field(default=None, alias="PayableRoundingAmount")
    payable_amount: Amount = Field(alias="PayableAmount")


class ItemIdentification(ApiModel):
    """Buyer's, seller's or standard item identification."""

    id: Text = Field(alias="ID")


class Item(ApiModel):
    """``Item``: what is sold and how it is taxed."""

    name: Text = Field(alias="Name")
    buyers_item_identification: ItemIdentification | None = Field(
        default=None, alias="BuyersItemIdentification"
    )
    sellers_item_identification: ItemIdentification | None = Field(
        default=None, alias="SellersItemIdentification"
    )
    standard_item_identification: ItemIdentification | None = Field(
        default=None, alias="StandardItemIdentification"
    )
    classified_tax_category: TaxCategory = Field(alias="ClassifiedTaxCategory")


class Price(ApiModel):
    """``Price``: net unit price, with an optional price discount."""

    price_amount: Amount = Field(alias="PriceAmount")
    base_quantity: Quantity | None = Field(default=None, alias="BaseQuantity")
    allowance_charge: AllowanceCharges | None = Field(default=None, alias="AllowanceCharge")


class InvoiceLine(ApiModel):
    """``InvoiceLine``."""

    id: Code = Field(alias="ID")
    invoiced_quantity: Quantity = Field(alias="InvoicedQuantity")
    line_extension_amount: Amount = Field(alias="LineExtensionAmount")
    allowance_charge: list[AllowanceCharge] | None = Field(default=None, alias="AllowanceCharge")
    tax_total: LineTaxTotal | None = Field(default=None, alias="TaxTotal")
    item: Item = Field(alias="Item")
    price: Price = Field(alias="Price")


class EInvoice(ApiModel):
    """The E-Invoice object of ClearTax's generate endpoints (a ZATCA UBL 2.1 invoice as JSON).

    Read-only fields ClearTax computes (``ICV``, ``PIH``, ``InvoiceHash``, ``Signature``,
    ``RawQRCode``) and any other unknown field are kept as extra fields and sent back unchanged.
    """

    profile_id: str = Field(alias="ProfileID")
    id: Bilingual = Field(alias="ID")
    uuid: str | None = Field(default=None, alias="UUID")
    invoice_type_code: InvoiceTypeCode = Field(alias="InvoiceTypeCode")
    issue_date: str = Field(alias="IssueDate")
    issue_time: str = Field(alias="IssueTime")
    delivery: list[Delivery] | None = Field(default=None, alias="Delivery")
    billing_reference: list[BillingReference] | None = Field(default=None, alias="BillingReference")
    order_reference: DocumentReference | None = Field(default=None, alias="OrderReference")
    contract_document_reference: list[DocumentReference] | None = Field(
        default=None, alias="ContractDocumentReference"
    )
    document_currency_code: str | None = Field(default=None, alias="DocumentCurrencyCode")
    tax_currency_code: str | None = Field(default=None, alias="TaxCurrencyCode")
    accounting_supplier_party: SupplierParty = Field(alias="AccountingSupplierParty")
    accounting_customer_party: CustomerParty | None = Field(default=None, alias="AccountingCustomerParty")
    payment_means: list[PaymentMeans] | None = Field(default=None, alias="PaymentMeans")
    allowance_charge: list[AllowanceCharge] | None = Field(default=None, alias="AllowanceCharge")
    tax_total: list[TaxTotal] = Field(alias="TaxTotal", min_length=1)
    legal_monetary_total: LegalMonetaryTotal = Field(alias="LegalMonetaryTotal")
    invoice_line: list[InvoiceLine] = Field(alias="InvoiceLine", min_length=1)

    @property
    def invoice_number(self) -> str:
        """Return the invoice number (English form, else Arabic)."""
        return self.id.text() or ""

    @property
    def type_code(self) -> str:
        """Return ``InvoiceTypeCode.value`` (388, 381, 383 or 386)."""
        return self.invoice_type_code.value

    @property
    def seller_vat(self) -> str | None:
        """Return the seller's VAT number."""
        return self.accounting_supplier_party.party.party_tax_scheme.company_id


class GenerateRequest(ApiModel):
    """Body of the generate endpoints: ``{DeviceId, EInvoice, CustomFields?}``."""

    device_id: str = Field(alias="DeviceId")
    e_invoice: EInvoice = Field(alias="EInvoice")
    custom_fields: dict[str, Any] | None = Field(default=None, alias="CustomFields")


EGS_SERIAL_PATTERN = r"^1-[a-zA-Z0-9]+\|2-[a-zA-Z0-9]+\|3-[a-zA-Z0-9]+$"
OTP_PATTERN = r"^\d{6}$"


class DeviceDetails(ApiModel):
    """``DeviceDetails`` of an EGS unit; fields other than the serial number pass through as given."""

    egs_serial_number: str = Field(alias="EgsSerialNumber", pattern=EGS_SERIAL_PATTERN)


class OrganizationDetails(ApiModel):
    """``OrganizationDetails`` of the taxpayer; its fields pass through as ClearTax spells them."""


class GenerateCsrRequest(ApiModel):
    """Body of ``generate-csr`` (legacy): ``{DeviceDetails, OrganizationDetails}``."""

    device_details: DeviceDetails = Field(alias="DeviceDetails")
    organization_details: OrganizationDetails = Field(alias="OrganizationDetails")


class RegisterDeviceRequest(GenerateCsrRequest):
    """Body of ``register-device``: ``{DeviceDetails, OrganizationDetails, Otp}``."""

    otp: str = Field(alias="Otp", pattern=OTP_PATTERN)


class GenerateCsidRequest(ApiModel):
    """Body of ``generate-csid`` (legacy): ``{DeviceId, Otp}``."""

    device_id: str = Field(alias="DeviceId")
    otp: str = Field(alias="Otp", pattern=OTP_PATTERN)


class EmailDocument(ApiModel):
    """One invoice to attach to an email."""

    invoice_number: str = Field(alias="InvoiceNumber")
    issue_date: str = Field(alias="IssueDate")
    invoice_type: Literal["INV", "CRN", "DBN"] = Field(alias="InvoiceType")
    vat: str = Field(alias="Vat")


class EmailAttachments(_BodyWithDefaults):
    """``Attachments`` of an email: the invoices and the print template."""

    document_details: list[EmailDocument] = Field(alias="documentDetails", min_length=1)
    print_template_id: str = Field(default="39", alias="printTemplateId")
    document_type: str = Field(default="EINVOICE", alias="documentType")


class EmailTemplate(ApiModel):
    """``Template`` of an email."""

    type: Literal["INVOICE_GENERATED", "INVOICE_PAYMENT_REMINDER"] = Field(alias="Type")


class EmailContact(_BodyWithDefaults):
    """One recipient."""

    email: str = Field(alias="Email")
    email_recipient_type: Literal["TO", "CC"] = Field(default="TO", alias="EmailRecipientType")


class EmailCounterParty(ApiModel):
    """One counter-party and its recipients."""

    contacts: list[EmailContact] = Field(alias="Contacts", min_length=1)


class EmailPreviewDetails(ApiModel):
    """``PreviewDetails``: template and recipients."""

    template: EmailTemplate = Field(alias="Template")
    counter_parties: list[EmailCounterParty] = Field(alias="CounterParties", min_length=1)


class InvoiceReference(Protocol):
    """Anything that names an invoice the way the query endpoints do (e.g. ``InvoiceIdentity``)."""

    @property
    def invoice_number(self) -> str: ...

    @property
    def invoice_type(self) -> str: ...

    @property
    def vat(self) -> str: ...

    @property
    def issue_date(self) -> Any: ...


class EmailRequest(ApiModel):
    """Body of ``POST /v1/emails``: ``{Attachments, PreviewDetails}``."""

    attachments: EmailAttachments = Field(alias="Attachments")
    preview_details: EmailPreviewDetails = Field(alias="PreviewDetails")

    @classmethod
    def for_invoices(
        cls,
        invoices: Iterable[InvoiceReference],
        *,
        to: Sequence[str],
        cc: Sequence[str] = (),
        template: Literal["INVOICE_GENERATED", "INVOICE_PAYMENT_REMINDER"] = "INVOICE_GENERATED",
        print_template_id: str = "39",
    ) -> EmailRequest:
        """Build the email body for some invoices and one counter-party's recipients.

        :param invoices: the invoices to attach, e.g. ``InvoiceIdentity`` objects (INV, CRN or DBN).
        :param to: addresses of the main recipients.
        :param cc: addresses to copy.
        :param template: ``INVOICE_GENERATED`` or ``INVOICE_PAYMENT_REMINDER``.
        :param print_template_id: the PDF print template.
        """
        documents = [
            EmailDocument(
                invoice_number=invoice.invoice_number,
                issue_date=str(invoice.issue_date),
                invoice_type=invoice.invoice_type,
                vat=invoice.vat,
            )
            for invoice in invoices
        ]
        contacts = [EmailContact(email=address, email_recipient_type="TO") for address in to]
        contacts += [EmailContact(email=address, email_recipient_type="CC") for address in cc]
        return cls(
            attachments=EmailAttachments(document_details=documents, print_template_id=print_template_id),
            preview_details=EmailPreviewDetails(
                template=EmailTemplate(type=template),
                counter_parties=[EmailCounterParty(contacts=contacts)],
            ),
        )
