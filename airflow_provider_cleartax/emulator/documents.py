"""Invoice documents of the emulator: UBL 2.1 XML, invoice hash, ZATCA QR code, PDF/A-3 with the XML inside.

Everything here is a pure function of its inputs and uses the standard library only.

Simplifications against ZATCA's real pipeline, on purpose:

* The invoice hash is SHA-256 over an inclusive canonical form (C14N) of the invoice without
  ``ext:UBLExtensions``, ``cac:Signature`` and the ``QR`` document reference, as ZATCA prescribes. The
  canonicaliser is a small one written for invoices: comments are dropped, and documents with a DTD are
  refused, so C14N 1.0 and 1.1 give the same bytes. Whitespace around removed elements stays.
* PDFs carry the PDF/A-3 markers (XMP ``pdfaid:part 3`` / ``conformance B``, ``/AF`` and
  ``/AFRelationship``) but are not fully conforming PDF/A: the standard Helvetica fonts are not embedded and
  there is no ``/OutputIntents`` entry, because no ICC colour profile is available here.
* :func:`embed_xml_in_pdf` and :func:`extract_embedded_files` read classic cross-reference tables only; PDFs
  written with cross-reference streams (PDF 1.5 object streams) or encrypted PDFs raise
  :class:`InvalidPdfError`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

__all__ = [
    "InvalidPdfError",
    "InvalidXmlError",
    "build_invoice_pdf",
    "build_invoice_xml",
    "decode_qr_tlv",
    "embed_xml_in_pdf",
    "extract_embedded_files",
    "invoice_hash",
    "parse_invoice_xml",
    "qr_tlv",
]

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS_EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"


class InvalidXmlError(ValueError):
    """The uploaded document is not a usable UBL invoice."""


class InvalidPdfError(ValueError):
    """The uploaded document is not a PDF this module can update."""


# ---------------------------------------------------------------------------------------------------------
# Reading values of the JSON E-Invoice model
# ---------------------------------------------------------------------------------------------------------

_ARABIC_RE = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


def _text(value: Any) -> str | None:
    """Return the display text of a model value: bilingual ``{en, ar}`` picks English, else Arabic."""
    if value is None:
        return None
    if isinstance(value, dict):
        if "en" in value or "ar" in value:
            picked = value.get("en")
            if picked is None or picked == "":
                picked = value.get("ar")
            return None if picked is None else str(picked)
        if "value" in value:
            return _text(value["value"])
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_list(value: Any) -> list[Any]:
    """Return ``value`` as a list: the model allows a single object where UBL allows many."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _decimal_text(value: Any, *, min_decimals: int) -> str:
    """Format a number without exponent and with at least ``min_decimals`` decimals."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value}.{'0' * min_decimals}" if min_decimals else str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "n" in text:  # exponent, nan or inf: let Decimal sort it out
            number = Decimal(text)
        else:
            decimals = len(text) - text.index(".") - 1
            if decimals < min_decimals:
                return text + "0" * (min_decimals - decimals)
            return text[:-2] if not min_decimals and text.endswith(".0") else text
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number, "f")
    decimals = len(text) - text.index(".") - 1 if "." in text else 0
    if decimals < min_decimals:
        text += ("" if decimals else ".") + "0" * (min_decimals - decimals)
    return text


def _number(text: str | None) -> float | None:
    """Return a number read from XML text, ``None`` when absent or not numeric."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------
# UBL XML writer
# ---------------------------------------------------------------------------------------------------------


# Escaping follows canonical XML (C14N) exactly, so the writer's output is already in canonical form
# apart from the XML declaration and what the invoice hash leaves out.
_INVALID_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_SPECIAL_RE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTR_SPECIAL_RE = re.compile('[&<"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def _c14n_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def _c14n_attr(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def _escape_text(text: str) -> str:
    """Escape element text; characters XML cannot carry become U+FFFD."""
    if _TEXT_SPECIAL_RE.search(text) is None:
        return text
    return _c14n_text(_INVALID_XML_RE.sub("\ufffd", text))


def _escape_attr(text: str) -> str:
    """Escape an attribute value; characters XML cannot carry become U+FFFD."""
    if _ATTR_SPECIAL_RE.search(text) is None:
        return text
    return _c14n_attr(_INVALID_XML_RE.sub("\ufffd", text))


_INDENTS = tuple("    " * depth for depth in range(12))


class _XmlWriter:
    """Append-only writer of indented XML; only non-empty leaves are written."""

    __slots__ = ("_indent", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._indent = 1

    def open(self, tag: str, attrs: str = "") -> None:
        self.parts.append(f"{_INDENTS[self._indent]}<{tag}{attrs}>\n")
        self._indent += 1

    def close(self, tag: str) -> None:
        self._indent -= 1
        self.parts.append(f"{_INDENTS[self._indent]}</{tag}>\n")

    def leaf(self, tag: str, text: str | None, attrs: str = "") -> None:
        if text is None:
            return
        self.parts.append(f"{_INDENTS[self._indent]}<{tag}{attrs}>{_escape_text(text)}</{tag}>\n")

    def text(self, tag: str, value: Any) -> None:
        text = _text(value)
        if text is not None and text != "":
            self.leaf(tag, text)

    def identifier(self, tag: str, value: Any) -> None:
        """Write an identifier that may carry a scheme: ``{schemeID, value}``, bilingual text or plain."""
        if isinstance(value, dict) and "value" in value:
            text = _text(value["value"])
            scheme = value.get("schemeID")
            attrs = f' schemeID="{_escape_attr(str(scheme))}"' if scheme else ""
            if text is not None:
                self.leaf(tag, text, attrs)
        else:
            self.text(tag, value)

    def amount(self, tag: str, value: Any, currency: str) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            raw = value.get("value")
            if raw is None:
                return
            currency = str(value.get("currencyID") or currency)
        else:
            raw = value
        self.leaf(tag, _decimal_text(raw, min_decimals=2), f' currencyID="{_escape_attr(currency)}"')

    def percent(self, tag: str, value: Any) -> None:
        if value is not None and value != "":
            self.leaf(tag, _decimal_text(value, min_decimals=2))

    def quantity(self, tag: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            raw = value.get("value")
            unit = value.get("unitCode")
        else:
            raw, unit = value, None
        if raw is None:
            return
        attrs = f' unitCode="{_escape_attr(str(unit))}"' if unit else ""
        self.leaf(tag, _decimal_text(raw, min_decimals=0), attrs)


def _write_id_holder(w: _XmlWriter, tag: str, value: Any) -> None:
    """Write ``<tag><cbc:ID>…</cbc:ID></tag>`` for each ``{ID}`` object in ``value``."""
    for item in _as_list(value):
        if not isinstance(item, dict) or item.get("ID") is None:
            continue
        w.open(tag)
        w.identifier("cbc:ID", item["ID"])
        w.close(tag)


def _write_tax_category(w: _XmlWriter, tag: str, category: Any) -> None:
    if not isinstance(category, dict):
        return
    w.open(tag)
    w.identifier("cbc:ID", category.get("ID"))
    w.percent("cbc:Percent", category.get("Percent"))
    w.text("cbc:TaxExemptionReasonCode", category.get("TaxExemptionReasonCode"))
    w.text("cbc:TaxExemptionReason", category.get("TaxExemptionReason"))
    scheme = category.get("TaxScheme")
    scheme_id = scheme.get("ID") if isinstance(scheme, dict) else scheme
    w.open("cac:TaxScheme")
    w.identifier("cbc:ID", scheme_id if scheme_id is not None else "VAT")
    w.close("cac:TaxScheme")
    w.close(tag)


def _write_allowance_charge(w: _XmlWriter, charge: Any, currency: str, *, with_tax: bool) -> None:
    if not isinstance(charge, dict):
        return
    w.open("cac:AllowanceCharge")
    indicator = charge.get("ChargeIndicator")
    w.leaf("cbc:ChargeIndicator", "true" if indicator in (True, "true", "TRUE", "True") else "false")
    w.text("cbc:AllowanceChargeReasonCode", charge.get("AllowanceChargeReasonCode"))
    w.text("cbc:AllowanceChargeReason", charge.get("AllowanceChargeReason"))
    w.percent("cbc:MultiplierFactorNumeric", charge.get("MultiplierFactorNumeric"))
    w.amount("cbc:Amount", charge.get("Amount"), currency)
    w.amount("cbc:BaseAmount", charge.get("BaseAmount"), currency)
    if with_tax:
        for category in _as_list(charge.get("TaxCategory")):
            _write_tax_category(w, "cac:TaxCategory", category)
    w.close("cac:AllowanceCharge")


_ADDRESS_FIELDS = (
    "StreetName",
    "AdditionalStreetName",
    "BuildingNumber",
    "PlotIdentification",
    "CitySubdivisionName",
    "CityName",
    "PostalZone",
    "CountrySubentity",
)


def _write_party(w: _XmlWriter, tag: str, holder: Any) -> None:
    party = holder.get("Party") if isinstance(holder, dict) else None
    if not isinstance(party, dict):
        return
    w.open(tag)
    w.open("cac:Party")
    for identification in _as_list(party.get("PartyIdentification")):
        if isinstance(identification, dict) and identification.get("ID") is not None:
            w.open("cac:PartyIdentification")
            w.identifier("cbc:ID", identification["ID"])
            w.close("cac:PartyIdentification")
    address = party.get("PostalAddress")
    if isinstance(address, dict):
        w.open("cac:PostalAddress")
        for field in _ADDRESS_FIELDS:
            w.text(f"cbc:{field}", address.get(field))
        country = address.get("Country")
        code = country.get("IdentificationCode") if isinstance(country, dict) else country
        if code:
            w.open("cac:Country")
            w.text("cbc:IdentificationCode", code)
            w.close("cac:Country")
        w.close("cac:PostalAddress")
    for scheme in _as_list(party.get("PartyTaxScheme")):
        if not isinstance(scheme, dict):
            continue
        w.open("cac:PartyTaxScheme")
        w.identifier("cbc:CompanyID", scheme.get("CompanyID"))
        tax_scheme = scheme.get("TaxScheme")
        scheme_id = tax_scheme.get("ID") if isinstance(tax_scheme, dict) else tax_scheme
        w.open("cac:TaxScheme")
        w.identifier("cbc:ID", scheme_id if scheme_id is not None else "VAT")
        w.close("cac:TaxScheme")
        w.close("cac:PartyTaxScheme")
    legal = party.get("PartyLegalEntity")
    if isinstance(legal, dict):
        w.open("cac:PartyLegalEntity")
        w.text("cbc:RegistrationName", legal.get("RegistrationName"))
        w.close("cac:PartyLegalEntity")
    w.close("cac:Party")
    w.close(tag)


def _write_document_reference(
    w: _XmlWriter, doc_id: str, *, uuid: str | None = None, data: str | None = None
) -> None:
    w.open("cac:AdditionalDocumentReference")
    w.leaf("cbc:ID", doc_id)
    if uuid is not None:
        w.leaf("cbc:UUID", uuid)
    if data is not None:
        w.open("cac:Attachment")
        w.leaf("cbc:EmbeddedDocumentBinaryObject", data, ' mimeCode="text/plain"')
        w.close("cac:Attachment")
    w.close("cac:AdditionalDocumentReference")


_ITEM_IDENTIFICATIONS = (
    "BuyersItemIdentification",
    "SellersItemIdentification",
    "StandardItemIdentification",
)


def _write_line(w: _XmlWriter, line: Any, currency: str) -> None:
    if not isinstance(line, dict):
        return
    w.open("cac:InvoiceLine")
    w.text("cbc:ID", line.get("ID"))
    w.quantity("cbc:InvoicedQuantity", line.get("InvoicedQuantity"))
    w.amount("cbc:LineExtensionAmount", line.get("LineExtensionAmount"), currency)
    for charge in _as_list(line.get("AllowanceCharge")):
        _write_allowance_charge(w, charge, currency, with_tax=False)
    tax_total = line.get("TaxTotal")
    if isinstance(tax_total, dict):
        w.open("cac:TaxTotal")
        w.amount("cbc:TaxAmount", tax_total.get("TaxAmount"), currency)
        w.amount("cbc:RoundingAmount", tax_total.get("RoundingAmount"), currency)
        w.close("cac:TaxTotal")
    item = line.get("Item")
    if isinstance(item, dict):
        w.open("cac:Item")
        w.text("cbc:Name", item.get("Name"))
        for key in _ITEM_IDENTIFICATIONS:
            _write_id_holder(w, f"cac:{key}", item.get(key))
        _write_tax_category(w, "cac:ClassifiedTaxCategory", item.get("ClassifiedTaxCategory"))
        w.close("cac:Item")
    price = line.get("Price")
    if isinstance(price, dict):
        w.open("cac:Price")
        w.amount("cbc:PriceAmount", price.get("PriceAmount"), currency)
        w.quantity("cbc:BaseQuantity", price.get("BaseQuantity"))
        for charge in _as_list(price.get("AllowanceCharge")):
            _write_allowance_charge(w, charge, currency, with_tax=False)
        w.close("cac:Price")
    w.close("cac:InvoiceLine")


def _write_note(w: _XmlWriter, note: Any) -> None:
    """Write a note; a bilingual note keeps the language it was picked from as ``languageID``."""
    if isinstance(note, dict):
        for language in ("en", "ar"):
            if note.get(language):
                w.leaf("cbc:Note", str(note[language]), f' languageID="{language}"')
                return
    elif note is not None and note != "":
        w.leaf("cbc:Note", str(note))


_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Namespace declarations in canonical order (default namespace first, then by prefix).
_ROOT_START = (
    f'<Invoice xmlns="{NS_INVOICE}" xmlns:cac="{NS_CAC}" xmlns:cbc="{NS_CBC}" xmlns:ext="{NS_EXT}">\n'
)

# Hashes of recently built invoices, so that hashing what build_invoice_xml just returned costs a lookup.
_KNOWN_HASHES: dict[bytes, str] = {}
_KNOWN_HASHES_LIMIT = 64

_TOTAL_FIELDS = (
    "LineExtensionAmount",
    "TaxExclusiveAmount",
    "TaxInclusiveAmount",
    "AllowanceTotalAmount",
    "ChargeTotalAmount",
    "PrepaidAmount",
    "PayableRoundingAmount",
    "PayableAmount",
)


def build_invoice_xml(einvoice: dict, *, uuid: str, icv: int, pih: str, qr: str | None = None) -> bytes:
    """Render the JSON E-Invoice model as an unsigned ZATCA UBL 2.1 invoice.

    Optional parts that are missing are left out; the same input always gives the same bytes.

    :param einvoice: the ``EInvoice`` object of a generate request (PascalCase keys).
    :param uuid: the invoice UUID to write (the model's own ``UUID`` is not consulted).
    :param icv: invoice counter value of the device.
    :param pih: base64 hash of the device's previous invoice.
    :param qr: base64 QR TLV for the ``QR`` document reference; an empty placeholder when ``None``.
    """
    currency = str(einvoice.get("DocumentCurrencyCode") or "SAR")
    w = _XmlWriter()
    w.text("cbc:ProfileID", einvoice.get("ProfileID") or "reporting:1.0")
    w.identifier("cbc:ID", einvoice.get("ID"))
    w.leaf("cbc:UUID", uuid)
    w.text("cbc:IssueDate", einvoice.get("IssueDate"))
    w.text("cbc:IssueTime", einvoice.get("IssueTime"))
    type_code = einvoice.get("InvoiceTypeCode")
    if isinstance(type_code, dict):
        name = type_code.get("name")
        attrs = f' name="{_escape_attr(str(name))}"' if name else ""
        w.leaf("cbc:InvoiceTypeCode", _text(type_code.get("value")) or "", attrs)
    elif type_code is not None:
        w.leaf("cbc:InvoiceTypeCode", str(type_code))
    for note in _as_list(einvoice.get("Note")):
        _write_note(w, note)
    w.leaf("cbc:DocumentCurrencyCode", currency)
    w.text("cbc:TaxCurrencyCode", einvoice.get("TaxCurrencyCode") or "SAR")
    _write_id_holder(w, "cac:OrderReference", einvoice.get("OrderReference"))
    for reference in _as_list(einvoice.get("BillingReference")):
        if isinstance(reference, dict) and isinstance(reference.get("InvoiceDocumentReference"), dict):
            w.open("cac:BillingReference")
            _write_id_holder(w, "cac:InvoiceDocumentReference", reference["InvoiceDocumentReference"])
            w.close("cac:BillingReference")
    _write_id_holder(w, "cac:ContractDocumentReference", einvoice.get("ContractDocumentReference"))
    _write_document_reference(w, "ICV", uuid=str(int(icv)))
    _write_document_reference(w, "PIH", data=pih)
    qr_start = len(w.parts)
    _write_document_reference(w, "QR", data=qr or "")
    qr_end = len(w.parts)
    _write_party(w, "cac:AccountingSupplierParty", einvoice.get("AccountingSupplierParty"))
    _write_party(w, "cac:AccountingCustomerParty", einvoice.get("AccountingCustomerParty"))
    for delivery in _as_list(einvoice.get("Delivery")):
        if isinstance(delivery, dict):
            w.open("cac:Delivery")
            w.text("cbc:ActualDeliveryDate", delivery.get("ActualDeliveryDate"))
            w.text("cbc:LatestDeliveryDate", delivery.get("LatestDeliveryDate"))
            w.close("cac:Delivery")
    for means in _as_list(einvoice.get("PaymentMeans")):
        if isinstance(means, dict):
            w.open("cac:PaymentMeans")
            w.text("cbc:PaymentMeansCode", means.get("PaymentMeansCode"))
            for note in _as_list(means.get("InstructionNote")):
                w.text("cbc:InstructionNote", note)
            w.close("cac:PaymentMeans")
    for charge in _as_list(einvoice.get("AllowanceCharge")):
        _write_allowance_charge(w, charge, currency, with_tax=True)
    for total in _as_list(einvoice.get("TaxTotal")):
        if not isinstance(total, dict):
            continue
        w.open("cac:TaxTotal")
        w.amount("cbc:TaxAmount", total.get("TaxAmount"), currency)
        w.amount("cbc:RoundingAmount", total.get("RoundingAmount"), currency)
        for subtotal in _as_list(total.get("TaxSubtotal")):
            if isinstance(subtotal, dict):
                w.open("cac:TaxSubtotal")
                w.amount("cbc:TaxableAmount", subtotal.get("TaxableAmount"), currency)
                w.amount("cbc:TaxAmount", subtotal.get("TaxAmount"), currency)
                _write_tax_category(w, "cac:TaxCategory", subtotal.get("TaxCategory"))
                w.close("cac:TaxSubtotal")
        w.close("cac:TaxTotal")
    totals = einvoice.get("LegalMonetaryTotal")
    if isinstance(totals, dict):
        w.open("cac:LegalMonetaryTotal")
        for field in _TOTAL_FIELDS:
            w.amount(f"cbc:{field}", totals.get(field), currency)
        w.close("cac:LegalMonetaryTotal")
    for line in _as_list(einvoice.get("InvoiceLine")):
        _write_line(w, line, currency)
    before_qr = "".join(w.parts[:qr_start])
    after_qr = "".join(w.parts[qr_end:])
    qr_element = "".join(w.parts[qr_start:qr_end])
    xml = f"{_XML_DECLARATION}{_ROOT_START}{before_qr}{qr_element}{after_qr}</Invoice>\n".encode()
    # The canonical form drops the declaration, the QR element (not the whitespace around it) and
    # whatever follows the root element; the writer already escapes and orders as C14N does.
    canonical = _ROOT_START + before_qr + _INDENTS[1] + "\n" + after_qr + "</Invoice>"
    if len(_KNOWN_HASHES) >= _KNOWN_HASHES_LIMIT:
        _KNOWN_HASHES.clear()
    _KNOWN_HASHES[xml] = base64.b64encode(hashlib.sha256(canonical.encode("utf-8")).digest()).decode("ascii")
    return xml


# ---------------------------------------------------------------------------------------------------------
# Safe XML parsing and the invoice hash
# ---------------------------------------------------------------------------------------------------------


def _reject_dtd(*_args: object) -> None:
    raise InvalidXmlError("DOCTYPE and entity declarations are not allowed")


def _check_document(xml: bytes) -> None:
    """Refuse empty input and DTDs before expat sees them (entity expansion attacks need a DTD)."""
    if not isinstance(xml, (bytes, bytearray)):
        raise TypeError(f"XML must be bytes, not {type(xml).__name__}")
    if not xml.strip():
        raise InvalidXmlError("empty XML document")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        _reject_dtd()


def _new_parser(namespace_separator: str) -> Any:
    """Return a namespace-aware expat parser that also refuses DTDs in encodings the byte check misses."""
    parser = expat.ParserCreate(namespace_separator=namespace_separator)
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _reject_dtd
    parser.EntityDeclHandler = _reject_dtd
    parser.ExternalEntityRefHandler = _reject_dtd
    return parser


def _run_parser(parser: Any, xml: bytes) -> None:
    try:
        parser.Parse(bytes(xml), True)
    except expat.ExpatError as err:
        reason = expat.ErrorString(err.code)
        raise InvalidXmlError(f"malformed XML: {reason} (line {err.lineno}, column {err.offset})") from None


# Expat reports names as "uri local prefix" with namespace_prefixes on and a space separator.
_HASH_EXCLUDED = frozenset({f"{NS_EXT} UBLExtensions", f"{NS_CAC} Signature"})
_DOCUMENT_REFERENCE = f"{NS_CAC} AdditionalDocumentReference"
_CBC_ID = f"{NS_CBC} ID"


class _InvoiceCanonicaliser:
    """Expat handlers writing the inclusive canonical form of an invoice minus what its hash leaves out."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._scopes: list[dict[str, str]] = [{"": ""}]
        self._names: list[str] = []
        self._pending: list[tuple[str, str]] = []
        self._depth = 0
        self._skip = 0
        self._root_done = False
        self._reference_start: int | None = None
        self._reference_id: list[str] = []
        self._in_reference_id = False

    def start_namespace(self, prefix: str | None, uri: str | None) -> None:
        self._pending.append((prefix or "", uri or ""))

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self._skip:
            self._skip += 1
            self._pending.clear()
            return
        uri, _, rest = name.partition(" ") if " " in name else ("", "", name)
        local, _, prefix = rest.partition(" ")
        key = f"{uri} {local}"
        if key in _HASH_EXCLUDED:
            self._skip = 1
            self._pending.clear()
            return
        scope = self._scopes[-1]
        declarations: list[tuple[str, str]] = []
        if self._pending:
            changed: dict[str, str] | None = None
            for ns_prefix, ns_uri in self._pending:
                if scope.get(ns_prefix) != ns_uri:
                    if changed is None:
                        changed = dict(scope)
                    changed[ns_prefix] = ns_uri
                    declarations.append((ns_prefix, ns_uri))
            self._pending.clear()
            if changed is not None:
                scope = changed
        self._scopes.append(scope)
        if key == _DOCUMENT_REFERENCE and self._depth == 1:
            self._reference_start = len(self.out)
        elif self._reference_start is not None and key == _CBC_ID and self._depth == 2:
            self._in_reference_id = True
        qname = f"{prefix}:{local}" if prefix else local
        parts = ["<", qname]
        for ns_prefix, ns_uri in sorted(declarations):
            attr_qname = f"xmlns:{ns_prefix}" if ns_prefix else "xmlns"
            parts.append(f' {attr_qname}="{_c14n_attr(ns_uri)}"')
        if attrs:
            rendered = []
            for attr_name, value in attrs.items():
                bits = attr_name.split(" ")
                if len(bits) == 1:
                    rendered.append(("", attr_name, attr_name, value))
                else:
                    attr_qname = f"{bits[2]}:{bits[1]}" if len(bits) == 3 else bits[1]
                    rendered.append((bits[0], bits[1], attr_qname, value))
            rendered.sort()
            for _uri, _local, attr_qname, value in rendered:
                parts.append(f' {attr_qname}="{_c14n_attr(value)}"')
        parts.append(">")
        self.out.append("".join(parts))
        self._names.append(qname)
        self._depth += 1

    def end(self, _name: str) -> None:
        if self._skip:
            self._skip -= 1
            return
        self._depth -= 1
        self._scopes.pop()
        self.out.append(f"</{self._names.pop()}>")
        self._in_reference_id = False
        if self._reference_start is not None and self._depth == 1:
            if "".join(self._reference_id).strip() == "QR":
                del self.out[self._reference_start :]
            self._reference_start = None
            self._reference_id = []
        elif self._depth == 0:
            self._root_done = True

    def data(self, text: str) -> None:
        if self._skip or not self._depth:
            return
        self.out.append(_c14n_text(text) if _TEXT_SPECIAL_RE.search(text) else text)
        if self._in_reference_id:
            self._reference_id.append(text)

    def processing_instruction(self, target: str, data: str) -> None:
        if self._skip:
            return
        text = f"<?{target} {data}?>" if data else f"<?{target}?>"
        if self._depth:
            self.out.append(text)
        elif self._root_done:
            self.out.append("\n" + text)
        else:
            self.out.append(text + "\n")


def _canonical_invoice(xml: bytes) -> bytes:
    _check_document(xml)
    target = _InvoiceCanonicaliser()
    parser = _new_parser(" ")
    parser.namespace_prefixes = True
    parser.StartNamespaceDeclHandler = target.start_namespace
    parser.StartElementHandler = target.start
    parser.EndElementHandler = target.end
    parser.CharacterDataHandler = target.data
    parser.ProcessingInstructionHandler = target.processing_instruction
    _run_parser(parser, xml)
    return "".join(target.out).encode("utf-8")


def invoice_hash(xml: bytes) -> str:
    """Return the ZATCA invoice hash: base64 of SHA-256 over the canonical invoice.

    ``ext:UBLExtensions``, ``cac:Signature`` and the ``QR`` additional document reference are left out, so
    signing the invoice or filling in its QR code does not change the hash.

    :param xml: the UBL invoice.
    :raises InvalidXmlError: the document is not well-formed or declares a DTD.
    """
    known = _KNOWN_HASHES.get(xml) if isinstance(xml, bytes) else None
    if known is not None:
        return known
    return base64.b64encode(hashlib.sha256(_canonical_invoice(xml)).digest()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------
# QR code payload
# ---------------------------------------------------------------------------------------------------------


def qr_tlv(
    *,
    seller_name: str,
    vat_number: str,
    timestamp: str,
    total_with_vat: str,
    vat_total: str,
    invoice_hash: str | None = None,
) -> str:
    """Return the base64 ZATCA QR payload: tag, length, UTF-8 value for tags 1 to 5 (and 6 when hashed).

    :param seller_name: seller's registration name, any script.
    :param vat_number: seller's VAT number.
    :param timestamp: issue date and time in ISO 8601, e.g. ``2026-01-31T10:15:00``.
    :param total_with_vat: invoice total including VAT, as printed.
    :param vat_total: VAT total, as printed.
    :param invoice_hash: base64 invoice hash; tag 6 is written only when given.
    :raises ValueError: a value is longer than the 255 bytes a one-byte length can express.
    """
    values = [seller_name, vat_number, timestamp, total_with_vat, vat_total]
    if invoice_hash is not None:
        values.append(invoice_hash)
    payload = bytearray()
    for tag, value in enumerate(values, start=1):
        encoded = str(value).encode("utf-8")
        if len(encoded) > 255:
            raise ValueError(f"QR tag {tag} is {len(encoded)} bytes long; at most 255 fit")
        payload += bytes((tag, len(encoded))) + encoded
    return base64.b64encode(bytes(payload)).decode("ascii")


def decode_qr_tlv(qr_base64: str) -> dict[int, str]:
    """Return the tags of a base64 QR TLV payload as ``{tag: text}``.

    :param qr_base64: the payload, as returned by :func:`qr_tlv`.
    :raises ValueError: the payload is not base64 or a value runs past its end.
    """
    try:
        payload = base64.b64decode(qr_base64, validate=True)
    except (ValueError, TypeError) as err:
        raise ValueError(f"QR payload is not base64: {err}") from None
    tags: dict[int, str] = {}
    position = 0
    while position < len(payload):
        if position + 2 > len(payload):
            raise ValueError("QR payload ends inside a tag header")
        tag, length = payload[position], payload[position + 1]
        end = position + 2 + length
        if end > len(payload):
            raise ValueError(f"QR tag {tag} claims {length} bytes but the payload ends first")
        tags[tag] = payload[position + 2 : end].decode("utf-8")
        position = end
    return tags


# ---------------------------------------------------------------------------------------------------------
# UBL XML reader
# ---------------------------------------------------------------------------------------------------------

_NS = {"cac": NS_CAC, "cbc": NS_CBC, "ext": NS_EXT}
_INVOICE_ROOT = f"{{{NS_INVOICE}}}Invoice"


def _clark(name: str) -> str:
    return "{" + name if "}" in name else name


def _parse_tree(xml: bytes) -> Element:
    _check_document(xml)
    builder = TreeBuilder()

    def start(name: str, attrs: dict[str, str]) -> None:
        builder.start(_clark(name), {_clark(key): value for key, value in attrs.items()})

    def end(name: str) -> None:
        builder.end(_clark(name))

    parser = _new_parser("}")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    _run_parser(parser, xml)
    return builder.close()


def _find_text(element: Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path, _NS)
    if found is None:
        return None
    return (found.text or "").strip()


def _bilingual(text: str | None) -> dict[str, str | None] | None:
    """Return text in the model's ``{en, ar}`` shape, under ``ar`` when it is written in Arabic script."""
    if text is None:
        return None
    if _ARABIC_RE.search(text):
        return {"en": None, "ar": text}
    return {"en": text, "ar": None}


def _read_identifier(element: Element | None) -> Any:
    if element is None:
        return None
    text = (element.text or "").strip()
    scheme = element.get("schemeID")
    return {"schemeID": scheme, "value": text} if scheme is not None else text


def _read_amount(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    text = (element.text or "").strip()
    number = _number(text)
    return {"currencyID": element.get("currencyID"), "value": text if number is None else number}


def _read_quantity(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    text = (element.text or "").strip()
    number = _number(text)
    quantity: dict[str, Any] = {"value": text if number is None else number}
    if element.get("unitCode") is not None:
        quantity["unitCode"] = element.get("unitCode")
    return quantity


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None and value != [] and value != {}}


def _one_or_many(items: list[Any]) -> Any:
    """Return a single item as itself and several as a list, as the model does for 0..n elements."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def _read_percent(element: Element, path: str) -> Any:
    text = _find_text(element, path)
    number = _number(text)
    return text if number is None else number


def _read_tax_category(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    scheme = element.find("cac:TaxScheme", _NS)
    return _compact(
        {
            "ID": _read_identifier(element.find("cbc:ID", _NS)),
            "Percent": _read_percent(element, "cbc:Percent"),
            "TaxExemptionReasonCode": _find_text(element, "cbc:TaxExemptionReasonCode"),
            "TaxExemptionReason": _find_text(element, "cbc:TaxExemptionReason"),
            "TaxScheme": (
                _compact({"ID": _read_identifier(scheme.find("cbc:ID", _NS))}) if scheme is not None else None
            ),
        }
    )


def _read_allowance_charge(element: Element) -> dict[str, Any]:
    indicator = _find_text(element, "cbc:ChargeIndicator")
    categories = [_read_tax_category(category) for category in element.findall("cac:TaxCategory", _NS)]
    return _compact(
        {
            "ChargeIndicator": None if indicator is None else indicator.lower() == "true",
            "AllowanceChargeReasonCode": _find_text(element, "cbc:AllowanceChargeReasonCode"),
            "AllowanceChargeReason": _find_text(element, "cbc:AllowanceChargeReason"),
            "MultiplierFactorNumeric": _read_percent(element, "cbc:MultiplierFactorNumeric"),
            "Amount": _read_amount(element.find("cbc:Amount", _NS)),
            "BaseAmount": _read_amount(element.find("cbc:BaseAmount", _NS)),
            "TaxCategory": _one_or_many(categories),
        }
    )


_BILINGUAL_ADDRESS_FIELDS = frozenset(
    {"StreetName", "AdditionalStreetName", "CitySubdivisionName", "CityName", "CountrySubentity"}
)


def _read_allowance_charges(element: Element) -> list[dict[str, Any]]:
    return [_read_allowance_charge(node) for node in element.findall("cac:AllowanceCharge", _NS)]


def _read_party(holder: Element | None) -> dict[str, Any] | None:
    party = holder.find("cac:Party", _NS) if holder is not None else None
    if party is None:
        return None
    identifications = [
        {"ID": _read_identifier(node.find("cbc:ID", _NS))}
        for node in party.findall("cac:PartyIdentification", _NS)
    ]
    address = party.find("cac:PostalAddress", _NS)
    postal: dict[str, Any] | None = None
    if address is not None:
        postal = {}
        for field in _ADDRESS_FIELDS:
            text = _find_text(address, f"cbc:{field}")
            postal[field] = _bilingual(text) if field in _BILINGUAL_ADDRESS_FIELDS else text
        code = _find_text(address, "cac:Country/cbc:IdentificationCode")
        postal["Country"] = {"IdentificationCode": code} if code is not None else None
        postal = _compact(postal)
    schemes = [
        _compact(
            {
                "CompanyID": _read_identifier(node.find("cbc:CompanyID", _NS)),
                "TaxScheme": _compact({"ID": _read_identifier(node.find("cac:TaxScheme/cbc:ID", _NS))}),
            }
        )
        for node in party.findall("cac:PartyTaxScheme", _NS)
    ]
    legal = party.find("cac:PartyLegalEntity", _NS)
    return {
        "Party": _compact(
            {
                "PartyIdentification": _one_or_many(identifications),
                "PostalAddress": postal,
                "PartyTaxScheme": _one_or_many(schemes),
                "PartyLegalEntity": (
                    _compact({"RegistrationName": _bilingual(_find_text(legal, "cbc:RegistrationName"))})
                    if legal is not None
                    else None
                ),
            }
        )
    }


def _read_id_holders(element: Element, path: str) -> list[dict[str, Any]]:
    return [{"ID": _bilingual(_find_text(node, "cbc:ID"))} for node in element.findall(path, _NS)]


def _read_item_identification(item: Element, tag: str) -> dict[str, Any] | None:
    node = item.find(f"cac:{tag}", _NS)
    if node is None:
        return None
    return _compact({"ID": _read_identifier(node.find("cbc:ID", _NS))})


def _read_line(line: Element) -> dict[str, Any]:
    tax_total = line.find("cac:TaxTotal", _NS)
    item = line.find("cac:Item", _NS)
    price = line.find("cac:Price", _NS)
    return _compact(
        {
            "ID": _find_text(line, "cbc:ID"),
            "InvoicedQuantity": _read_quantity(line.find("cbc:InvoicedQuantity", _NS)),
            "LineExtensionAmount": _read_amount(line.find("cbc:LineExtensionAmount", _NS)),
            "AllowanceCharge": _read_allowance_charges(line),
            "TaxTotal": (
                _compact(
                    {
                        "TaxAmount": _read_amount(tax_total.find("cbc:TaxAmount", _NS)),
                        "RoundingAmount": _read_amount(tax_total.find("cbc:RoundingAmount", _NS)),
                    }
                )
                if tax_total is not None
                else None
            ),
            "Item": (
                _compact(
                    {
                        "Name": _bilingual(_find_text(item, "cbc:Name")),
                        **{key: _read_item_identification(item, key) for key in _ITEM_IDENTIFICATIONS},
                        "ClassifiedTaxCategory": _read_tax_category(
                            item.find("cac:ClassifiedTaxCategory", _NS)
                        ),
                    }
                )
                if item is not None
                else None
            ),
            "Price": (
                _compact(
                    {
                        "PriceAmount": _read_amount(price.find("cbc:PriceAmount", _NS)),
                        "BaseQuantity": _read_quantity(price.find("cbc:BaseQuantity", _NS)),
                        "AllowanceCharge": _one_or_many(_read_allowance_charges(price)),
                    }
                )
                if price is not None
                else None
            ),
        }
    )


def _read_note(element: Element) -> dict[str, str | None]:
    text = (element.text or "").strip()
    language = element.get("languageID")
    if language in ("en", "ar"):
        return {"en": text if language == "en" else None, "ar": text if language == "ar" else None}
    return _bilingual(text) or {"en": None, "ar": None}


def parse_invoice_xml(xml: bytes) -> dict:
    """Read an unsigned or signed UBL invoice into the shape of the JSON E-Invoice model.

    Free text comes back bilingual, ``{"en": text, "ar": None}`` or, for Arabic script, ``{"en": None,
    "ar": text}``: invoice and reference numbers, registration names, street, district, city and
    subentity names, item names and notes. Amounts are ``{currencyID, value}`` with a float value;
    identifiers with a ``schemeID`` are ``{schemeID, value}``. Repeatable groups of the model
    (``Delivery``, ``BillingReference``, ``PaymentMeans``, ``AllowanceCharge``, ``TaxTotal``,
    ``TaxSubtotal``, ``InvoiceLine``…) are lists. ``ICV`` (int) and ``PIH`` are added when the invoice
    carries them.

    :param xml: the uploaded document.
    :raises InvalidXmlError: malformed XML, a DTD, another root than a UBL ``Invoice``, or no ``cbc:ID``,
        ``cbc:InvoiceTypeCode`` or ``cbc:IssueDate``.
    """
    root = _parse_tree(xml)
    if root.tag != _INVOICE_ROOT:
        raise InvalidXmlError(f"root element must be {{{NS_INVOICE}}}Invoice, found {root.tag}")
    for mandatory in ("ID", "InvoiceTypeCode", "IssueDate"):
        if not _find_text(root, f"cbc:{mandatory}"):
            raise InvalidXmlError(f"missing mandatory element cbc:{mandatory}")
    type_code = root.find("cbc:InvoiceTypeCode", _NS)
    assert type_code is not None  # checked just above
    invoice: dict[str, Any] = {
        "ProfileID": _find_text(root, "cbc:ProfileID"),
        "ID": _bilingual(_find_text(root, "cbc:ID")),
        "UUID": _find_text(root, "cbc:UUID"),
        "IssueDate": _find_text(root, "cbc:IssueDate"),
        "IssueTime": _find_text(root, "cbc:IssueTime"),
        "InvoiceTypeCode": _compact({"name": type_code.get("name"), "value": (type_code.text or "").strip()}),
        "Note": _one_or_many([_read_note(node) for node in root.findall("cbc:Note", _NS)]),
        "DocumentCurrencyCode": _find_text(root, "cbc:DocumentCurrencyCode"),
        "TaxCurrencyCode": _find_text(root, "cbc:TaxCurrencyCode"),
        "OrderReference": _one_or_many(_read_id_holders(root, "cac:OrderReference")),
        "BillingReference": [
            {"InvoiceDocumentReference": holder}
            for node in root.findall("cac:BillingReference", _NS)
            for holder in _read_id_holders(node, "cac:InvoiceDocumentReference")
        ],
        "ContractDocumentReference": _read_id_holders(root, "cac:ContractDocumentReference"),
        "AccountingSupplierParty": _read_party(root.find("cac:AccountingSupplierParty", _NS)),
        "AccountingCustomerParty": _read_party(root.find("cac:AccountingCustomerParty", _NS)),
        "Delivery": [
            _compact(
                {
                    "ActualDeliveryDate": _find_text(node, "cbc:ActualDeliveryDate"),
                    "LatestDeliveryDate": _find_text(node, "cbc:LatestDeliveryDate"),
                }
            )
            for node in root.findall("cac:Delivery", _NS)
        ],
        "PaymentMeans": [
            _compact(
                {
                    "PaymentMeansCode": _find_text(node, "cbc:PaymentMeansCode"),
                    "InstructionNote": _one_or_many(
                        [(note.text or "").strip() for note in node.findall("cbc:InstructionNote", _NS)]
                    ),
                }
            )
            for node in root.findall("cac:PaymentMeans", _NS)
        ],
        "AllowanceCharge": _read_allowance_charges(root),
        "TaxTotal": [
            _compact(
                {
                    "TaxAmount": _read_amount(node.find("cbc:TaxAmount", _NS)),
                    "RoundingAmount": _read_amount(node.find("cbc:RoundingAmount", _NS)),
                    "TaxSubtotal": [
                        _compact(
                            {
                                "TaxableAmount": _read_amount(sub.find("cbc:TaxableAmount", _NS)),
                                "TaxAmount": _read_amount(sub.find("cbc:TaxAmount", _NS)),
                                "TaxCategory": _read_tax_category(sub.find("cac:TaxCategory", _NS)),
                            }
                        )
                        for sub in node.findall("cac:TaxSubtotal", _NS)
                    ],
                }
            )
            for node in root.findall("cac:TaxTotal", _NS)
        ],
        "InvoiceLine": [_read_line(node) for node in root.findall("cac:InvoiceLine", _NS)],
    }
    totals = root.find("cac:LegalMonetaryTotal", _NS)
    if totals is not None:
        invoice["LegalMonetaryTotal"] = _compact(
            {field: _read_amount(totals.find(f"cbc:{field}", _NS)) for field in _TOTAL_FIELDS}
        )
    for reference in root.findall("cac:AdditionalDocumentReference", _NS):
        reference_id = _find_text(reference, "cbc:ID")
        if reference_id == "ICV":
            counter = _find_text(reference, "cbc:UUID")
            try:
                invoice["ICV"] = int(counter or "")
            except ValueError:
                raise InvalidXmlError(f"ICV must be an integer, found {counter!r}") from None
        elif reference_id == "PIH":
            invoice["PIH"] = _find_text(reference, "cac:Attachment/cbc:EmbeddedDocumentBinaryObject")
    return _compact(invoice)


# ---------------------------------------------------------------------------------------------------------
# PDF objects: values, serialisation and a minimal parser
# ---------------------------------------------------------------------------------------------------------


class _Ref(NamedTuple):
    """An indirect reference ``num gen R``."""

    num: int
    gen: int = 0


class _Name(str):
    """A PDF name, held without its slash."""


class _Keyword(str):
    """A bare keyword met while parsing (``obj``, ``stream``…)."""


class _Hex(bytes):
    """A string written in hexadecimal form."""


class _Stream(NamedTuple):
    info: dict[str, Any]
    raw: bytes


_PDF_WHITESPACE = rb" \t\r\n\x0c\x00"
_REGULAR_NAME_BYTES = frozenset(range(0x21, 0x7F)) - frozenset(b"()<>[]{}/%#")
_SKIP_RE = re.compile(rb"(?:[ \t\r\n\x0c\x00]+|%[^\r\n]*)*")
_TOKEN_RE = re.compile(rb"[^ \t\r\n\x0c\x00()<>\[\]{}/%]+")
_REF_RE = re.compile(rb"(\d+)[ \t\r\n\x0c\x00]+(\d+)[ \t\r\n\x0c\x00]+R(?![^ \t\r\n\x0c\x00()<>\[\]{}/%])")
_NUMBER_RE = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_NAME_ESCAPE_RE = re.compile(rb"#([0-9A-Fa-f]{2})")
_OBJ_HEADER_RE = re.compile(
    rb"(\d+)[ \t\r\n\x0c\x00]+(\d+)[ \t\r\n\x0c\x00]+obj(?![^ \t\r\n\x0c\x00()<>\[\]{}/%])"
)
_OBJ_SCAN_RE = re.compile(rb"(?<![0-9])" + _OBJ_HEADER_RE.pattern)
_STRING_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}


def _serialize_name(name: str) -> bytes:
    out = bytearray(b"/")
    for byte in name.encode("latin-1"):
        out += bytes((byte,)) if byte in _REGULAR_NAME_BYTES else b"#%02X" % byte
    return bytes(out)


def _text_string(text: str) -> bytes:
    """Encode a PDF text string: ASCII as is, anything else as UTF-16BE with a byte order mark."""
    if text.isascii():
        return text.encode("ascii")
    return b"\xfe\xff" + text.encode("utf-16-be")


def _decode_text_string(data: bytes) -> str:
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    return data.decode("latin-1")


def _serialize(value: Any) -> bytes:
    """Serialise a Python value as PDF syntax (``str`` is a text string, :class:`_Name` a name)."""
    if isinstance(value, _Name):
        return _serialize_name(value)
    if isinstance(value, _Keyword):
        return value.encode("latin-1")
    if isinstance(value, _Ref):
        return b"%d %d R" % (value.num, value.gen)
    if value is None:
        return b"null"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return (f"{value:.4f}".rstrip("0").rstrip(".") or "0").encode("ascii")
    if isinstance(value, _Hex):
        return b"<" + value.hex().upper().encode("ascii") + b">"
    if isinstance(value, (bytes, bytearray)):
        escaped = (
            bytes(value)
            .replace(b"\\", b"\\\\")
            .replace(b"(", b"\\(")
            .replace(b")", b"\\)")
            .replace(b"\r", b"\\r")
            .replace(b"\n", b"\\n")
        )
        return b"(" + escaped + b")"
    if isinstance(value, str):
        return _serialize(_text_string(value))
    if isinstance(value, list):
        return b"[" + b" ".join(_serialize(item) for item in value) + b"]"
    if isinstance(value, dict):
        entries = (_serialize_name(key) + b" " + _serialize(item) for key, item in value.items())
        return b"<<" + b"".join(entries) + b">>"
    raise TypeError(f"cannot write {type(value).__name__} into a PDF")


def _skip_space(data: bytes, position: int) -> int:
    match = _SKIP_RE.match(data, position)
    return match.end() if match else position


def _parse_literal_string(data: bytes, position: int) -> tuple[bytes, int]:
    out = bytearray()
    depth = 1
    size = len(data)
    while position < size:
        byte = data[position]
        if byte == 0x5C:
            position += 1
            if position >= size:
                break
            escaped = data[position]
            if escaped in _STRING_ESCAPES:
                out += _STRING_ESCAPES[escaped]
                position += 1
            elif 0x30 <= escaped <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[position : position + 3])
                assert digits is not None  # the first byte is an octal digit
                out.append(int(digits.group(), 8) & 0xFF)
                position += len(digits.group())
            elif escaped in (0x0D, 0x0A):
                position += 2 if data[position : position + 2] == b"\r\n" else 1
            else:
                out.append(escaped)
                position += 1
            continue
        if byte == 0x28:
            depth += 1
        elif byte == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), position + 1
        out.append(byte)
        position += 1
    raise InvalidPdfError("unterminated string in PDF")


def _parse_value(data: bytes, position: int) -> tuple[Any, int]:
    """Parse one PDF value (no streams) at ``position``; return it and the position after it."""
    position = _skip_space(data, position)
    if position >= len(data):
        raise InvalidPdfError("unexpected end of PDF data")
    if data.startswith(b"<<", position):
        result: dict[str, Any] = {}
        position += 2
        while True:
            position = _skip_space(data, position)
            if data.startswith(b">>", position):
                return result, position + 2
            key, position = _parse_value(data, position)
            if not isinstance(key, _Name):
                raise InvalidPdfError(f"PDF dictionary key is not a name near offset {position}")
            value, position = _parse_value(data, position)
            result[str(key)] = value
    lead = data[position]
    if lead == 0x5B:
        items: list[Any] = []
        position += 1
        while True:
            position = _skip_space(data, position)
            if data.startswith(b"]", position):
                return items, position + 1
            item, position = _parse_value(data, position)
            items.append(item)
    if lead == 0x28:
        return _parse_literal_string(data, position + 1)
    if lead == 0x3C:
        end = data.find(b">", position)
        if end < 0:
            raise InvalidPdfError("unterminated hex string in PDF")
        digits = re.sub(rb"[^0-9A-Fa-f]", b"", data[position + 1 : end])
        if len(digits) % 2:
            digits += b"0"
        return _Hex(bytes.fromhex(digits.decode("ascii"))), end + 1
    if lead == 0x2F:
        match = _TOKEN_RE.match(data, position + 1)
        raw = match.group() if match else b""
        name = _NAME_ESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 16),)), raw)
        return _Name(name.decode("latin-1")), position + 1 + len(raw)
    reference = _REF_RE.match(data, position)
    if reference:
        return _Ref(int(reference.group(1)), int(reference.group(2))), reference.end()
    match = _TOKEN_RE.match(data, position)
    if match is None:
        unexpected = data[position : position + 1]
        raise InvalidPdfError(f"unexpected byte {unexpected!r} at offset {position} of the PDF")
    token = match.group()
    keywords = {b"true": True, b"false": False, b"null": None}
    if token in keywords:
        return keywords[token], match.end()
    if _NUMBER_RE.fullmatch(token):
        return (float(token) if b"." in token else int(token)), match.end()
    return _Keyword(token.decode("latin-1")), match.end()


class _BrokenXrefError(Exception):
    """The cross-reference table does not describe the file: fall back to scanning for objects."""


class _PdfReader:
    """Just enough of a PDF reader to find the catalog, its name trees and embedded files."""

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"PDF must be bytes, not {type(data).__name__}")
        self.data = bytes(data)
        header = self.data.find(b"%PDF-", 0, 1024)
        if header < 0:
            raise InvalidPdfError("not a PDF: the %PDF- header is missing")
        version = re.match(rb"%PDF-(\d+\.\d+)", self.data[header:])
        self.version = float(version.group(1)) if version else 1.0
        at = self.data.rfind(b"startxref")
        match = re.compile(rb"startxref[ \t\r\n\x0c\x00]+(\d+)").match(self.data, at) if at >= 0 else None
        if match is None:
            raise InvalidPdfError("not a PDF: startxref is missing")
        self.startxref = int(match.group(1))
        self.offsets: dict[int, int | None] = {}
        self.trailer: dict[str, Any] = {}
        self._cache: dict[int, Any] = {}
        self._scanned = False
        try:
            self._read_xref_chain(self.startxref)
        except _BrokenXrefError:
            self._scan()
        if "Encrypt" in self.trailer:
            raise InvalidPdfError("encrypted PDFs are not supported")
        if not isinstance(self.trailer.get("Root"), _Ref):
            raise InvalidPdfError("the PDF trailer has no /Root catalog reference")

    def _read_xref_chain(self, offset: int) -> None:
        seen: set[int] = set()
        next_offset: int | None = offset
        while next_offset is not None:
            if next_offset in seen or not 0 <= next_offset < len(self.data):
                raise _BrokenXrefError
            seen.add(next_offset)
            position = _skip_space(self.data, next_offset)
            if self.data.startswith(b"xref", position):
                section_trailer = self._read_xref_table(position + 4)
            else:
                header = _OBJ_HEADER_RE.match(self.data, position)
                if header is not None:
                    value = _parse_value(self.data, header.end())[0]
                    if isinstance(value, dict) and value.get("Type") == "XRef":
                        raise InvalidPdfError("cross-reference streams are not supported")
                raise _BrokenXrefError
            if "XRefStm" in section_trailer:
                raise InvalidPdfError("cross-reference streams are not supported")
            for key, value in section_trailer.items():
                self.trailer.setdefault(key, value)
            previous = section_trailer.get("Prev")
            next_offset = previous if isinstance(previous, int) and not isinstance(previous, bool) else None

    def _read_xref_table(self, position: int) -> dict[str, Any]:
        subsection = re.compile(rb"(\d+)[ \t]+(\d+)[ \t]*(?=[\r\n])")
        entry = re.compile(rb"[ \t\r\n]*(\d+)[ \t]+(\d+)[ \t]+([nf])")
        while True:
            position = _skip_space(self.data, position)
            if self.data.startswith(b"trailer", position):
                value = _parse_value(self.data, position + 7)[0]
                if not isinstance(value, dict):
                    raise _BrokenXrefError
                return value
            header = subsection.match(self.data, position)
            if header is None:
                raise _BrokenXrefError
            first, count = int(header.group(1)), int(header.group(2))
            position = header.end()
            for index in range(count):
                row = entry.match(self.data, position)
                if row is None:
                    raise _BrokenXrefError
                position = row.end()
                # Sections are read newest first, so an object keeps the first offset seen.
                self.offsets.setdefault(first + index, int(row.group(1)) if row.group(3) == b"n" else None)

    def _scan(self) -> None:
        """Rebuild the object offsets and trailer by scanning the whole file (later definitions win)."""
        self._scanned = True
        self._cache.clear()
        self.offsets = {int(match.group(1)): match.start() for match in _OBJ_SCAN_RE.finditer(self.data)}
        if not isinstance(self.trailer.get("Root"), _Ref):
            at = self.data.rfind(b"trailer")
            if at < 0:
                raise InvalidPdfError("the PDF has neither a usable cross-reference table nor a trailer")
            value = _parse_value(self.data, at + 7)[0]
            if isinstance(value, dict):
                self.trailer = value

    def _locate(self, num: int) -> int | None:
        offset = self.offsets.get(num)
        if offset is not None:
            header = _OBJ_HEADER_RE.match(self.data, _skip_space(self.data, offset))
            if header is not None and int(header.group(1)) == num:
                return header.end()
        if not self._scanned:
            self._scan()
            return self._locate(num)
        return None

    def resolve(self, value: Any) -> Any:
        """Return the object a reference points to (``None`` if absent); other values unchanged."""
        if not isinstance(value, _Ref):
            return value
        if value.num in self._cache:
            return self._cache[value.num]
        position = self._locate(value.num)
        if position is None:
            return None
        result, position = _parse_value(self.data, position)
        position = _skip_space(self.data, position)
        if isinstance(result, dict) and self.data.startswith(b"stream", position):
            result = _Stream(result, self._stream_data(result, position + 6))
        self._cache[value.num] = result
        return result

    def _stream_data(self, info: dict[str, Any], start: int) -> bytes:
        if self.data.startswith(b"\r\n", start):
            start += 2
        elif self.data[start : start + 1] in (b"\n", b"\r"):
            start += 1
        length = self.resolve(info.get("Length"))
        if isinstance(length, int) and length >= 0:
            after = _skip_space(self.data, start + length)
            if self.data.startswith(b"endstream", after):
                return self.data[start : start + length]
        # A wrong /Length is common in hand-written files: trust the endstream keyword instead.
        end = self.data.find(b"endstream", start)
        if end < 0:
            raise InvalidPdfError("a PDF stream has no endstream")
        data = self.data[start:end]
        if data.endswith(b"\r\n"):
            return data[:-2]
        return data[:-1] if data.endswith((b"\n", b"\r")) else data

    def name_tree(self, node: Any, seen: set[int] | None = None) -> list[tuple[bytes, Any]]:
        """Return the ``(key, value)`` leaves of a name tree, values left unresolved."""
        seen = set() if seen is None else seen
        if isinstance(node, _Ref):
            if node.num in seen:
                return []
            seen.add(node.num)
        node = self.resolve(node)
        if not isinstance(node, dict):
            return []
        entries: list[tuple[bytes, Any]] = []
        names = self.resolve(node.get("Names"))
        if isinstance(names, list):
            for index in range(0, len(names) - 1, 2):
                key = self.resolve(names[index])
                if isinstance(key, bytes):
                    entries.append((bytes(key), names[index + 1]))
        kids = self.resolve(node.get("Kids"))
        for kid in kids if isinstance(kids, list) else []:
            entries.extend(self.name_tree(kid, seen))
        return entries


def _decode_stream(stream: _Stream) -> bytes:
    filters = stream.info.get("Filter")
    data = stream.raw
    for name in filters if isinstance(filters, list) else [filters] if filters else []:
        if name not in ("FlateDecode", "Fl"):
            raise InvalidPdfError(f"unsupported stream filter /{name}")
        try:
            data = zlib.decompressobj().decompress(data)
        except zlib.error as err:
            raise InvalidPdfError(f"corrupt compressed stream: {err}") from None
    return data


def extract_embedded_files(pdf: bytes) -> dict[str, bytes]:
    """Return the files embedded in a PDF's ``/EmbeddedFiles`` name tree as ``{filename: content}``.

    The latest catalog is the one the newest trailer points to, so incremental updates are honoured.

    :param pdf: the document.
    :raises InvalidPdfError: not a PDF, or one written with cross-reference streams.
    """
    reader = _PdfReader(pdf)
    catalog = reader.resolve(reader.trailer["Root"])
    names = reader.resolve(catalog.get("Names")) if isinstance(catalog, dict) else None
    if not isinstance(names, dict):
        return {}
    files: dict[str, bytes] = {}
    for key, value in reader.name_tree(names.get("EmbeddedFiles")):
        filespec = reader.resolve(value)
        if not isinstance(filespec, dict):
            continue
        streams = reader.resolve(filespec.get("EF"))
        stream = reader.resolve(streams.get("UF") or streams.get("F")) if isinstance(streams, dict) else None
        if not isinstance(stream, _Stream):
            continue
        label = reader.resolve(filespec.get("UF") or filespec.get("F")) or key
        files[_decode_text_string(bytes(label))] = _decode_stream(stream)
    return files


# ---------------------------------------------------------------------------------------------------------
# PDF writing
# ---------------------------------------------------------------------------------------------------------

_PDF_HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
_PRODUCER = "airflow-provider-cleartax emulator"
_XML_MIME = _Name("text/xml")


def _frame_object(ref: _Ref, body: bytes) -> bytes:
    return b"%d %d obj\n" % (ref.num, ref.gen) + body + b"\nendobj\n"


def _stream_body(info: dict[str, Any], data: bytes, *, compress: bool = True) -> bytes:
    info = dict(info)
    if compress:
        data = zlib.compress(data, 6)
        info["Filter"] = _Name("FlateDecode")
    info["Length"] = len(data)
    return _serialize(info) + b"\nstream\n" + data + b"\nendstream"


def _xref_section(offsets: dict[int, int], *, with_free_head: bool) -> bytes:
    """Write a classic ``xref`` section, one subsection per run of consecutive object numbers."""
    entries = dict(offsets)
    rows: dict[int, bytes] = {num: b"%010d 00000 n \n" % offset for num, offset in entries.items()}
    if with_free_head:
        rows[0] = b"0000000000 65535 f \n"
    out = [b"xref\n"]
    numbers = sorted(rows)
    run_start = 0
    for index in range(1, len(numbers) + 1):
        if index == len(numbers) or numbers[index] != numbers[index - 1] + 1:
            run = numbers[run_start:index]
            out.append(b"%d %d\n" % (run[0], len(run)))
            out.extend(rows[num] for num in run)
            run_start = index
    return b"".join(out)


def _trailer(info: dict[str, Any], xref_offset: int) -> bytes:
    return b"trailer\n" + _serialize(info) + b"\nstartxref\n%d\n%%%%EOF\n" % xref_offset


def _xmp_packet(*, title: str, created: datetime | None) -> bytes:
    """Return XMP metadata declaring PDF/A-3B; dates must equal the document information dictionary's."""
    dates = ""
    if created is not None:
        stamp = created.isoformat()
        dates = (
            f"   <xmp:CreateDate>{stamp}</xmp:CreateDate>\n"
            f"   <xmp:ModifyDate>{stamp}</xmp:ModifyDate>\n"
            f"   <xmp:MetadataDate>{stamp}</xmp:MetadataDate>\n"
        )
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">\n'
        "   <pdfaid:part>3</pdfaid:part>\n"
        "   <pdfaid:conformance>B</pdfaid:conformance>\n"
        "  </rdf:Description>\n"
        '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        "   <dc:format>application/pdf</dc:format>\n"
        "   <dc:title><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{_escape_text(title)}</rdf:li>'
        "</rdf:Alt></dc:title>\n"
        "  </rdf:Description>\n"
        '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">\n'
        f"   <xmp:CreatorTool>{_PRODUCER}</xmp:CreatorTool>\n"
        f"{dates}"
        "  </rdf:Description>\n"
        '  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">\n'
        f"   <pdf:Producer>{_PRODUCER}</pdf:Producer>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def _metadata_body(*, title: str, created: datetime | None) -> bytes:
    # PDF/A wants metadata readable without decoding, so this one stream stays uncompressed.
    info = {"Type": _Name("Metadata"), "Subtype": _Name("XML")}
    return _stream_body(info, _xmp_packet(title=title, created=created), compress=False)


def _pdf_date(moment: datetime) -> str:
    offset = moment.strftime("%z") or "+0000"
    return moment.strftime("D:%Y%m%d%H%M%S") + f"{offset[:3]}'{offset[3:]}'"


def _attachment_bodies(xml: bytes, xml_filename: str, *, modified: datetime | None) -> tuple[bytes, Any]:
    """Return the embedded-file stream body and a function building the file specification for it."""
    params: dict[str, Any] = {"Size": len(xml), "CheckSum": _Hex(hashlib.md5(xml).digest())}
    if modified is not None:
        params["ModDate"] = _pdf_date(modified)
    stream = _stream_body({"Type": _Name("EmbeddedFile"), "Subtype": _XML_MIME, "Params": params}, xml)

    def filespec(stream_ref: _Ref) -> bytes:
        ascii_name = xml_filename.encode("ascii", errors="replace").decode("ascii")
        return _serialize(
            {
                "Type": _Name("Filespec"),
                "F": ascii_name,
                "UF": xml_filename,
                "Desc": "ZATCA e-invoice (UBL 2.1 XML)",
                "AFRelationship": _Name("Data"),
                "EF": {"F": stream_ref, "UF": stream_ref},
            }
        )

    return stream, filespec


# Advance widths of Helvetica (per 1000 units of font size) for printable ASCII, from its standard metrics.
_CHAR_WIDTHS: dict[str, int] = dict(
    zip(
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        (
            278,
            278,
            355,
            556,
            556,
            889,
            667,
            191,
            333,
            333,
            389,
            584,
            278,
            333,
            278,
            278,
            556,
            556,
            556,
            556,
            556,
            556,
            556,
            556,
            556,
            556,
            278,
            278,
            584,
            584,
            584,
            556,
            1015,
            667,
            667,
            722,
            722,
            667,
            611,
            778,
            722,
            278,
            500,
            667,
            556,
            833,
            722,
            778,
            667,
            778,
            722,
            667,
            611,
            722,
            667,
            944,
            667,
            667,
            611,
            278,
            278,
            278,
            469,
            556,
            333,
            556,
            556,
            500,
            556,
            556,
            278,
            556,
            556,
            222,
            222,
            500,
            222,
            833,
            556,
            556,
            556,
            556,
            333,
            500,
            278,
            556,
            500,
            722,
            500,
            500,
            500,
            334,
            260,
            334,
            584,
        ),
        strict=True,
    )
)


def _text_width(text: str, size: float) -> float:
    return sum(_CHAR_WIDTHS.get(char, 556) for char in text) * size / 1000


def _fit(text: str, width: float, size: float) -> str:
    """Shorten ``text`` with an ellipsis so that it fits in ``width`` points."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "...", size) > width:
        text = text[:-1]
    return text.rstrip() + "..."


_CONTROL_TO_SPACE = bytes.maketrans(bytes(range(32)), b" " * 32)


class _Canvas:
    """Collects the drawing operators of one page."""

    def __init__(self) -> None:
        self._ops: list[bytes] = []

    def text(self, x: float, y: float, text: str, *, font: str = "F1", size: float = 9) -> None:
        # Type1 standard fonts cover WinAnsi only: other characters (Arabic) become '?'.
        encoded = text.encode("cp1252", errors="replace").translate(_CONTROL_TO_SPACE)
        escaped = encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        self._ops.append(b"BT /%s %.1f Tf %.2f %.2f Td (%s) Tj ET\n" % (font.encode(), size, x, y, escaped))

    def text_right(self, right: float, y: float, text: str, *, font: str = "F1", size: float = 9) -> None:
        self.text(right - _text_width(text, size), y, text, font=font, size=size)

    def rule(self, x1: float, x2: float, y: float, *, width: float = 0.5) -> None:
        self._ops.append(b"%.2f w %.2f %.2f m %.2f %.2f l S\n" % (width, x1, y, x2, y))

    def content(self) -> bytes:
        return b"".join(self._ops)


_PAGE_WIDTH = 595.28
_PAGE_HEIGHT = 841.89
_LEFT = 50.0
_RIGHT = _PAGE_WIDTH - 50.0
_MIDDLE = 310.0
_DOCUMENT_TYPES = {
    "388": "Tax Invoice",
    "381": "Credit Note",
    "383": "Debit Note",
    "386": "Prepayment Invoice",
}


def _dict_at(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    """Return ``mapping[key]`` when it is an object, else an empty one."""
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}


def _joined(separator: str, *values: Any) -> str:
    return separator.join(filter(None, map(_text, values)))


def _document_title(einvoice: dict[str, Any]) -> str:
    type_code = einvoice.get("InvoiceTypeCode")
    type_code = type_code if isinstance(type_code, dict) else {"value": type_code}
    title = _DOCUMENT_TYPES.get(str(_text(type_code.get("value")) or ""), "Invoice")
    if str(type_code.get("name") or "").startswith("02"):
        title = "Simplified " + title
    return title


def _display_amount(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("value") is None:
            return ""
        currency = value.get("currencyID")
        text = _decimal_text(value["value"], min_decimals=2)
        return f"{text} {currency}" if currency else text
    return "" if value is None else _decimal_text(value, min_decimals=2)


def _party_lines(holder: Any) -> list[str]:
    party = holder.get("Party") if isinstance(holder, dict) else None
    if not isinstance(party, dict):
        return ["-"]
    legal = party.get("PartyLegalEntity") or {}
    lines = [_text(legal.get("RegistrationName") if isinstance(legal, dict) else None) or "-"]
    for scheme in _as_list(party.get("PartyTaxScheme")):
        if isinstance(scheme, dict) and scheme.get("CompanyID"):
            lines.append(f"VAT number: {_text(scheme['CompanyID'])}")
    for identification in _as_list(party.get("PartyIdentification")):
        identifier = identification.get("ID") if isinstance(identification, dict) else None
        if isinstance(identifier, dict) and identifier.get("value"):
            lines.append(f"{identifier.get('schemeID') or 'ID'}: {identifier['value']}")
    address = party.get("PostalAddress")
    if isinstance(address, dict):
        street = _joined(" ", address.get("StreetName"), address.get("BuildingNumber"))
        city = _joined(" ", address.get("CityName"), address.get("PostalZone"))
        country = address.get("Country")
        code = _text(country.get("IdentificationCode")) if isinstance(country, dict) else _text(country)
        extra = (_text(address.get("AdditionalStreetName")), _text(address.get("CitySubdivisionName")))
        lines.extend(part for part in (street, *extra, city) if part)
        if code:
            lines.append(code)
    return lines


_LINE_COLUMNS = (  # (heading, right edge or left x, right-aligned)
    ("#", _LEFT, False),
    ("Description", _LEFT + 22, False),
    ("Qty", 330.0, True),
    ("Unit price", 395.0, True),
    ("VAT %", 435.0, True),
    ("VAT", 480.0, True),
    ("Net amount", _RIGHT, True),
)


def _line_cells(line: dict[str, Any]) -> list[str]:
    item = _dict_at(line, "Item")
    category = _dict_at(item, "ClassifiedTaxCategory")
    quantity = line.get("InvoicedQuantity")
    quantity_text = ""
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        quantity_text = _decimal_text(quantity["value"], min_decimals=0)
        if quantity.get("unitCode"):
            quantity_text += f" {quantity['unitCode']}"
    elif quantity is not None:
        quantity_text = str(quantity)
    price = _dict_at(line, "Price")
    tax = _dict_at(line, "TaxTotal")
    percent = category.get("Percent")
    vat_rate = ""
    if percent is not None:
        vat_rate = f"{_decimal_text(percent, min_decimals=0)} {_text(category.get('ID')) or ''}"
    return [
        _text(line.get("ID")) or "",
        _text(item.get("Name")) or "",
        quantity_text,
        _display_amount(price.get("PriceAmount")).split(" ")[0],
        vat_rate.strip(),
        _display_amount(tax.get("TaxAmount")).split(" ")[0],
        _display_amount(line.get("LineExtensionAmount")),
    ]


def _issue_moment(einvoice: dict[str, Any]) -> datetime:
    """Return the issue date and time in KSA time, the PDF's creation date (now, if the invoice has none)."""
    ksa = timezone(timedelta(hours=3))
    try:
        stamp = f"{einvoice.get('IssueDate')} {einvoice.get('IssueTime') or '00:00:00'}"
        moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return datetime.now(ksa).replace(microsecond=0)
    return moment.replace(tzinfo=ksa)


def _page_content(record: dict[str, Any], einvoice: dict[str, Any], xml_filename: str) -> bytes:
    canvas = _Canvas()
    y = _PAGE_HEIGHT - 60
    canvas.text(_LEFT, y, _document_title(einvoice), font="F2", size=18)
    number = _text(einvoice.get("ID")) or "-"
    canvas.text_right(_RIGHT, y, _fit(number, 200, 12), font="F2", size=12)
    y -= 26
    type_code = _dict_at(einvoice, "InvoiceTypeCode")
    facts = [
        ("Invoice number", number),
        ("Issue date", _joined(" ", einvoice.get("IssueDate"), einvoice.get("IssueTime"))),
        ("Type code", _joined(" / ", type_code.get("value"), type_code.get("name"))),
        ("Status", _text(record.get("InvoiceStatus") or record.get("Status")) or "-"),
        ("UUID", _text(record.get("UUID") or einvoice.get("UUID")) or "-"),
        ("ICV", _text(record.get("ICV")) or "-"),
    ]
    for reference in _as_list(einvoice.get("BillingReference")):
        document = reference.get("InvoiceDocumentReference") if isinstance(reference, dict) else None
        if isinstance(document, dict):
            facts.append(("Billing reference", _text(document.get("ID")) or "-"))
    for means in _as_list(einvoice.get("PaymentMeans")):
        if isinstance(means, dict) and means.get("InstructionNote"):
            facts.append(("Reason", ", ".join(filter(None, map(_text, _as_list(means["InstructionNote"]))))))
    for delivery in _as_list(einvoice.get("Delivery")):
        if isinstance(delivery, dict) and delivery.get("ActualDeliveryDate"):
            facts.append(("Supply date", _text(delivery["ActualDeliveryDate"]) or ""))
    for index, (label, value) in enumerate(facts):
        x = _LEFT if index % 2 == 0 else _MIDDLE
        canvas.text(x, y, f"{label}:", font="F2", size=9)
        canvas.text(x + 82, y, _fit(value, _MIDDLE - _LEFT - 90, 9), size=9)
        if index % 2:
            y -= 13
    y -= 13 if len(facts) % 2 else 0
    y -= 6
    canvas.rule(_LEFT, _RIGHT, y)
    y -= 18
    seller = _party_lines(einvoice.get("AccountingSupplierParty"))
    buyer = _party_lines(einvoice.get("AccountingCustomerParty"))
    canvas.text(_LEFT, y, "Seller", font="F2", size=11)
    canvas.text(_MIDDLE, y, "Buyer", font="F2", size=11)
    for index in range(max(len(seller), len(buyer))):
        y -= 13
        if index < len(seller):
            canvas.text(_LEFT, y, _fit(seller[index], _MIDDLE - _LEFT - 15, 9), size=9)
        if index < len(buyer):
            canvas.text(_MIDDLE, y, _fit(buyer[index], _RIGHT - _MIDDLE, 9), size=9)
    y -= 24
    for heading, x, right_aligned in _LINE_COLUMNS:
        if right_aligned:
            canvas.text_right(x, y, heading, font="F2", size=9)
        else:
            canvas.text(x, y, heading, font="F2", size=9)
    y -= 5
    canvas.rule(_LEFT, _RIGHT, y)
    lines = [line for line in _as_list(einvoice.get("InvoiceLine")) if isinstance(line, dict)]
    room = int((y - 250) // 13)
    shown = lines if len(lines) <= room else lines[: max(room - 1, 0)]
    for line in shown:
        y -= 13
        cells = _line_cells(line)
        for (_heading, x, right_aligned), cell in zip(_LINE_COLUMNS, cells):
            if right_aligned:
                canvas.text_right(x, y, cell, size=8.5)
            else:
                limit = 330.0 - 55 - x if x > _LEFT else 20
                canvas.text(x, y, _fit(cell, limit, 8.5), size=8.5)
    if len(shown) < len(lines):
        y -= 13
        hidden = len(lines) - len(shown)
        canvas.text(_LEFT + 22, y, f"... and {hidden} more lines (see the attached XML)", size=8.5)
    y -= 6
    canvas.rule(_LEFT, _RIGHT, y)
    totals = _dict_at(einvoice, "LegalMonetaryTotal")
    tax_totals = [total for total in _as_list(einvoice.get("TaxTotal")) if isinstance(total, dict)]
    rows = [
        ("Sum of lines", totals.get("LineExtensionAmount")),
        ("Allowances", totals.get("AllowanceTotalAmount")),
        ("Charges", totals.get("ChargeTotalAmount")),
        ("Total excluding VAT", totals.get("TaxExclusiveAmount")),
        ("VAT total", tax_totals[0].get("TaxAmount") if tax_totals else None),
        ("Total including VAT", totals.get("TaxInclusiveAmount")),
        ("Prepaid", totals.get("PrepaidAmount")),
        ("Amount payable", totals.get("PayableAmount")),
    ]
    for label, amount in rows:
        text = _display_amount(amount)
        if not text:
            continue
        y -= 13
        bold = label == "Amount payable"
        canvas.text(_MIDDLE + 40, y, label, font="F2" if bold else "F1", size=9)
        canvas.text_right(_RIGHT, y, text, font="F2" if bold else "F1", size=9)
    qr = _text(record.get("QRCode"))
    if qr:
        y -= 24
        canvas.text(_LEFT, y, "QR code (base64 TLV)", font="F2", size=9)
        for start in range(0, len(qr), 110):
            y -= 9
            if y < 60:
                break
            canvas.text(_LEFT, y, qr[start : start + 110], font="F3", size=6.5)
    footer = f"The UBL XML of this document is attached to this PDF as {xml_filename}."
    canvas.text(_LEFT, 40, _fit(footer, _RIGHT - _LEFT, 8), size=8)
    return canvas.content()


_OBJECT_ORDER = (
    "catalog",
    "pages",
    "page",
    "font",
    "bold",
    "mono",
    "content",
    "metadata",
    "filespec",
    "file",
    "info",
)


def build_invoice_pdf(*, invoice: dict, xml: bytes, xml_filename: str) -> bytes:
    """Return a one-page A4 PDF summarising the invoice, with its UBL XML attached (PDF/A-3 style).

    :param invoice: the E-Invoice JSON model, optionally with response fields (``InvoiceStatus``,
        ``QRCode``, ``UUID``, ``ICV``) next to it, or a record holding the model under ``EInvoice``.
    :param xml: the invoice XML to attach, byte for byte.
    :param xml_filename: file name of the attachment, e.g. ``INV-1.xml``.
    """
    einvoice = invoice.get("EInvoice") if isinstance(invoice.get("EInvoice"), dict) else invoice
    created = _issue_moment(einvoice)
    title = f"{_document_title(einvoice)} {_text(einvoice.get('ID')) or ''}".strip()
    refs = {name: _Ref(num) for num, name in enumerate(_OBJECT_ORDER, start=1)}
    stream, filespec = _attachment_bodies(bytes(xml), xml_filename, modified=created)
    font = {"Type": _Name("Font"), "Subtype": _Name("Type1"), "Encoding": _Name("WinAnsiEncoding")}
    bodies = {
        # No /OutputIntents: that needs an embedded ICC profile, and none ships with the standard library.
        "catalog": _serialize(
            {
                "Type": _Name("Catalog"),
                "Pages": refs["pages"],
                "Metadata": refs["metadata"],
                "Names": {"EmbeddedFiles": {"Names": [_text_string(xml_filename), refs["filespec"]]}},
                "AF": [refs["filespec"]],
                "PageMode": _Name("UseAttachments"),
                "ViewerPreferences": {"DisplayDocTitle": True},
            }
        ),
        "pages": _serialize({"Type": _Name("Pages"), "Kids": [refs["page"]], "Count": 1}),
        "page": _serialize(
            {
                "Type": _Name("Page"),
                "Parent": refs["pages"],
                "MediaBox": [0, 0, _PAGE_WIDTH, _PAGE_HEIGHT],
                "Resources": {"Font": {"F1": refs["font"], "F2": refs["bold"], "F3": refs["mono"]}},
                "Contents": refs["content"],
            }
        ),
        "font": _serialize({**font, "BaseFont": _Name("Helvetica")}),
        "bold": _serialize({**font, "BaseFont": _Name("Helvetica-Bold")}),
        "mono": _serialize({**font, "BaseFont": _Name("Courier")}),
        "content": _stream_body({}, _page_content(invoice, einvoice, xml_filename)),
        "metadata": _metadata_body(title=title, created=created),
        "filespec": filespec(refs["file"]),
        "file": stream,
        "info": _serialize(
            {
                "Title": title,
                "Producer": _PRODUCER,
                "Creator": _PRODUCER,
                "CreationDate": _pdf_date(created),
                "ModDate": _pdf_date(created),
            }
        ),
    }
    out = bytearray(_PDF_HEADER)
    offsets: dict[int, int] = {}
    for name, ref in refs.items():
        offsets[ref.num] = len(out)
        out += _frame_object(ref, bodies[name])
    xref_offset = len(out)
    out += _xref_section(offsets, with_free_head=True)
    file_id = _Hex(hashlib.md5(bytes(xml) + xml_filename.encode("utf-8") + title.encode("utf-8")).digest())
    trailer = {"Size": len(refs) + 1, "Root": refs["catalog"], "Info": refs["info"], "ID": [file_id, file_id]}
    out += _trailer(trailer, xref_offset)
    return bytes(out)


def embed_xml_in_pdf(pdf: bytes, *, xml: bytes, xml_filename: str) -> bytes:
    """Attach the invoice XML to a client's PDF by an incremental update.

    The original bytes are kept unchanged; appended are the embedded file, its file specification, XMP
    metadata declaring PDF/A-3B (only when the catalog has none), a new revision of the catalog with the
    file in ``/Names/EmbeddedFiles`` and ``/AF``, and a new ``xref`` section whose trailer points back
    with ``/Prev``. An attachment of the same name is replaced.

    :param pdf: the client's PDF; classic cross-reference tables only.
    :param xml: the invoice XML to attach.
    :param xml_filename: file name of the attachment.
    :raises InvalidPdfError: not a PDF, encrypted, or written with cross-reference streams.
    """
    reader = _PdfReader(pdf)
    root: _Ref = reader.trailer["Root"]
    catalog = reader.resolve(root)
    if not isinstance(catalog, dict):
        raise InvalidPdfError("the PDF's /Root is not a catalog dictionary")
    catalog = dict(catalog)
    size = reader.trailer.get("Size")
    next_num = max([size if isinstance(size, int) else 0, *(num + 1 for num in reader.offsets)])
    file_ref, filespec_ref = _Ref(next_num), _Ref(next_num + 1)
    new_objects: dict[_Ref, bytes] = {}
    stream, filespec = _attachment_bodies(bytes(xml), xml_filename, modified=None)
    new_objects[file_ref] = stream
    new_objects[filespec_ref] = filespec(file_ref)

    key = _text_string(xml_filename)
    names = reader.resolve(catalog.get("Names"))
    names = dict(names) if isinstance(names, dict) else {}
    entries = reader.name_tree(names.get("EmbeddedFiles"))
    replaced = [value for entry_key, value in entries if entry_key == key]
    entries = [(entry_key, value) for entry_key, value in entries if entry_key != key]
    # Name tree leaves must be sorted by key.
    entries = sorted([*entries, (key, filespec_ref)], key=lambda entry: entry[0])
    names["EmbeddedFiles"] = {"Names": [item for entry_key, value in entries for item in (entry_key, value)]}
    catalog["Names"] = names
    associated = reader.resolve(catalog.get("AF"))
    associated = [item for item in associated if item not in replaced] if isinstance(associated, list) else []
    catalog["AF"] = [*associated, filespec_ref]
    if "Metadata" not in catalog:
        metadata_ref = _Ref(next_num + 2)
        new_objects[metadata_ref] = _metadata_body(title=xml_filename, created=None)
        catalog["Metadata"] = metadata_ref
    if reader.version < 1.7:
        # /AF and /AFRelationship belong to PDF 1.7 extensions / PDF 2.0; an update cannot rewrite the header.
        catalog["Version"] = _Name("1.7")
    new_objects[root] = _serialize(catalog)

    out = bytearray(pdf)
    if not out.endswith((b"\n", b"\r")):
        out += b"\n"
    offsets: dict[int, int] = {}
    for ref, body in new_objects.items():
        offsets[ref.num] = len(out)
        out += _frame_object(ref, body)
    xref_offset = len(out)
    out += _xref_section(offsets, with_free_head=False)
    trailer: dict[str, Any] = {"Size": max(next_num, *(num + 1 for num in offsets)), "Root": root}
    if isinstance(reader.trailer.get("Info"), _Ref):
        trailer["Info"] = reader.trailer["Info"]
    fingerprint = bytes(pdf[-1024:]) + hashlib.md5(xml).digest() + xml_filename.encode()
    update_id = _Hex(hashlib.md5(fingerprint).digest())
    previous_id = reader.trailer.get("ID")
    first_id = update_id
    if isinstance(previous_id, list) and previous_id and isinstance(previous_id[0], bytes):
        # The first identifier is permanent; only the second changes with each revision.
        first_id = _Hex(previous_id[0])
    trailer["ID"] = [first_id, update_id]
    trailer["Prev"] = reader.startxref
    out += _trailer(trailer, xref_offset)
    return bytes(out)
