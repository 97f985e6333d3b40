"""Tests of the emulator's invoice documents: UBL XML, hash, QR payload and PDF/A-3 attachments."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import zlib
from xml.etree import ElementTree

import pytest

from airflow_provider_cleartax.emulator.documents import (
    InvalidPdfError,
    InvalidXmlError,
    build_invoice_pdf,
    build_invoice_xml,
    decode_qr_tlv,
    embed_xml_in_pdf,
    extract_embedded_files,
    invoice_hash,
    parse_invoice_xml,
    qr_tlv,
)

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
PIH = base64.b64encode(hashlib.sha256(b"0").digest()).decode()
ARABIC_SELLER = "شركة المحاكي للتجارة"


def en(text: str) -> dict[str, str | None]:
    return {"en": text, "ar": None}


def ar(text: str) -> dict[str, str | None]:
    return {"en": None, "ar": text}


def sar(value: float) -> dict[str, object]:
    return {"currencyID": "SAR", "value": value}


def vat_category(code: str = "S", percent: float = 15.0, **extra: object) -> dict[str, object]:
    return {"ID": code, "Percent": percent, **extra, "TaxScheme": {"ID": "VAT"}}


def zero_rated() -> dict[str, object]:
    return vat_category("Z", 0.0, TaxExemptionReasonCode="VATEX-SA-32", TaxExemptionReason="Export of goods")


def party(name: dict, vat: str, *, street: dict, district: dict, crn: str | None = None) -> dict:
    result: dict[str, object] = {
        "PostalAddress": {
            "StreetName": street,
            "BuildingNumber": "2322",
            "PlotIdentification": "3XYZ4433",
            "CitySubdivisionName": district,
            "CityName": en("Riyadh"),
            "PostalZone": "23333",
            "Country": {"IdentificationCode": "SA"},
        },
        "PartyTaxScheme": {"CompanyID": vat, "TaxScheme": {"ID": "VAT"}},
        "PartyLegalEntity": {"RegistrationName": name},
    }
    if crn:
        result = {"PartyIdentification": {"ID": {"schemeID": "CRN", "value": crn}}, **result}
    return {"Party": result}


def line(line_id: str, name: dict, quantity: float, price: float, category: dict) -> dict:
    net = round(quantity * price, 2)
    tax = round(net * category["Percent"] / 100, 2)
    return {
        "ID": line_id,
        "InvoicedQuantity": {"value": quantity, "unitCode": "PCE"},
        "LineExtensionAmount": sar(net),
        "TaxTotal": {"TaxAmount": sar(tax), "RoundingAmount": sar(round(net + tax, 2))},
        "Item": {"Name": name, "ClassifiedTaxCategory": category},
        "Price": {"PriceAmount": sar(price)},
    }


def standard_invoice() -> dict:
    """A B2B tax invoice in exactly the shape parse_invoice_xml returns, so round trips compare equal."""
    return {
        "ProfileID": "reporting:1.0",
        "ID": en("INV-2026/0042"),
        "IssueDate": "2026-01-31",
        "IssueTime": "10:15:00",
        "InvoiceTypeCode": {"name": "0100000", "value": "388"},
        "Note": {"en": "Thank you & see you <soon>", "ar": None},
        "DocumentCurrencyCode": "SAR",
        "TaxCurrencyCode": "SAR",
        "OrderReference": {"ID": en("PO-77")},
        "ContractDocumentReference": [{"ID": en("C-2025-9")}],
        "AccountingSupplierParty": party(
            en("Emulator Trading Co."),
            "300000000000003",
            street=en("Prince Sultan"),
            district=en("Al-Murabba"),
            crn="1010010000",
        ),
        "AccountingCustomerParty": party(
            en("Buyer Holding LLC"),
            "399999999800003",
            street=ar("صلاح الدين"),
            district=ar("المروج"),
        ),
        "Delivery": [{"ActualDeliveryDate": "2026-01-30", "LatestDeliveryDate": "2026-01-31"}],
        "PaymentMeans": [{"PaymentMeansCode": "30"}],
        "AllowanceCharge": [
            {
                "ChargeIndicator": False,
                "AllowanceChargeReason": "discount",
                "Amount": sar(10.0),
                "TaxCategory": vat_category(),
            }
        ],
        "TaxTotal": [
            {
                "TaxAmount": sar(46.5),
                "TaxSubtotal": [
                    {"TaxableAmount": sar(310.0), "TaxAmount": sar(46.5), "TaxCategory": vat_category()}
                ],
            },
            {"TaxAmount": sar(46.5)},
        ],
        "LegalMonetaryTotal": {
            "LineExtensionAmount": sar(320.0),
            "TaxExclusiveAmount": sar(310.0),
            "TaxInclusiveAmount": sar(356.5),
            "AllowanceTotalAmount": sar(10.0),
            "PrepaidAmount": sar(0.0),
            "PayableAmount": sar(356.5),
        },
        "InvoiceLine": [
            line("1", en("Widget (large)"), 2.0, 100.0, vat_category()),
            line("2", en("Service hours"), 3.0, 40.0, vat_category()),
        ],
    }


def simplified_invoice() -> dict:
    return {
        "ProfileID": "reporting:1.0",
        "ID": en("SME00010"),
        "IssueDate": "2026-02-01",
        "IssueTime": "17:41:08",
        "InvoiceTypeCode": {"name": "0200000", "value": "388"},
        "DocumentCurrencyCode": "SAR",
        "TaxCurrencyCode": "SAR",
        "AccountingSupplierParty": party(
            ar(ARABIC_SELLER),
            "300000000000003",
            street=ar("الامير سلطان"),
            district=ar("المربع"),
            crn="1010010000",
        ),
        "TaxTotal": [
            {
                "TaxAmount": sar(14.85),
                "TaxSubtotal": [
                    {"TaxableAmount": sar(99.0), "TaxAmount": sar(14.85), "TaxCategory": vat_category()},
                    {
                        "TaxableAmount": sar(50.0),
                        "TaxAmount": sar(0.0),
                        "TaxCategory": zero_rated(),
                    },
                ],
            },
            {"TaxAmount": sar(14.85)},
        ],
        "LegalMonetaryTotal": {
            "LineExtensionAmount": sar(149.0),
            "TaxExclusiveAmount": sar(149.0),
            "TaxInclusiveAmount": sar(163.85),
            "PayableAmount": sar(163.85),
        },
        "InvoiceLine": [
            line("1", ar("كتاب"), 33.0, 3.0, vat_category()),
            line(
                "2",
                en("Pen"),
                1.0,
                50.0,
                zero_rated(),
            ),
        ],
    }


def credit_note() -> dict:
    invoice = standard_invoice()
    invoice.update(
        {
            "ID": en("CRN-0007"),
            "InvoiceTypeCode": {"name": "0100000", "value": "381"},
            "BillingReference": [{"InvoiceDocumentReference": {"ID": en("INV-2026/0042")}}],
            "PaymentMeans": [{"PaymentMeansCode": "10", "InstructionNote": "CAN"}],
        }
    )
    for key in ("Note", "OrderReference", "ContractDocumentReference", "AllowanceCharge"):
        del invoice[key]
    return invoice


INVOICES = {"standard": standard_invoice, "simplified": simplified_invoice, "credit_note": credit_note}


def build(invoice: dict, **overrides: object) -> bytes:
    arguments: dict[str, object] = {"uuid": "3cf5ee18-ee25-44ea-a444-2c37ba7f28be", "icv": 42, "pih": PIH}
    arguments.update(overrides)
    return build_invoice_xml(invoice, **arguments)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ XML


def test_xml_is_well_formed_and_carries_the_invoice_fields() -> None:
    xml = build(credit_note())
    root = ElementTree.fromstring(xml)

    assert root.tag == f"{{{NS['inv']}}}Invoice"
    assert root.findtext("cbc:ProfileID", namespaces=NS) == "reporting:1.0"
    assert root.findtext("cbc:ID", namespaces=NS) == "CRN-0007"
    assert root.findtext("cbc:UUID", namespaces=NS) == "3cf5ee18-ee25-44ea-a444-2c37ba7f28be"
    type_code = root.find("cbc:InvoiceTypeCode", NS)
    assert type_code is not None and (type_code.get("name"), type_code.text) == ("0100000", "381")
    references = {
        ref.findtext("cbc:ID", namespaces=NS): ref
        for ref in root.findall("cac:AdditionalDocumentReference", NS)
    }
    assert list(references) == ["ICV", "PIH", "QR"]
    assert references["ICV"].findtext("cbc:UUID", namespaces=NS) == "42"
    assert references["PIH"].findtext("cac:Attachment/cbc:EmbeddedDocumentBinaryObject", namespaces=NS) == PIH
    billing_reference = "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"
    assert root.findtext(billing_reference, namespaces=NS) == "INV-2026/0042"
    assert root.findtext("cac:PaymentMeans/cbc:InstructionNote", namespaces=NS) == "CAN"
    assert (
        root.findtext("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS)
        == "300000000000003"
    )
    payable = root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", NS)
    assert payable is not None and (payable.get("currencyID"), payable.text) == ("SAR", "356.50")
    assert len(root.findall("cac:TaxTotal", NS)) == 2
    assert len(root.findall("cac:InvoiceLine", NS)) == 2


def test_xml_follows_ubl_element_order() -> None:
    children = [child.tag.split("}")[1] for child in ElementTree.fromstring(build(standard_invoice()))]
    expected_order = [
        "ProfileID",
        "ID",
        "UUID",
        "IssueDate",
        "IssueTime",
        "InvoiceTypeCode",
        "Note",
        "DocumentCurrencyCode",
        "TaxCurrencyCode",
        "OrderReference",
        "ContractDocumentReference",
        "AdditionalDocumentReference",
        "AccountingSupplierParty",
        "AccountingCustomerParty",
        "Delivery",
        "PaymentMeans",
        "AllowanceCharge",
        "TaxTotal",
        "LegalMonetaryTotal",
        "InvoiceLine",
    ]
    distinct = [tag for index, tag in enumerate(children) if index == 0 or children[index - 1] != tag]
    assert distinct == expected_order


def test_bilingual_text_prefers_english_and_falls_back_to_arabic() -> None:
    invoice = simplified_invoice()
    invoice["AccountingSupplierParty"]["Party"]["PartyLegalEntity"]["RegistrationName"] = {
        "en": "Emulator Trading Co.",
        "ar": ARABIC_SELLER,
    }
    root = ElementTree.fromstring(build(invoice))
    path = "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"
    assert root.findtext(path, namespaces=NS) == "Emulator Trading Co."
    assert root.findtext("cac:InvoiceLine/cac:Item/cbc:Name", namespaces=NS) == "كتاب"


def test_build_is_deterministic_and_depends_on_its_arguments() -> None:
    assert build(standard_invoice()) == build(copy.deepcopy(standard_invoice()))
    assert build(standard_invoice(), icv=43) != build(standard_invoice())


def test_build_tolerates_a_minimal_invoice() -> None:
    minimal = {"ID": {"en": "X-1"}, "InvoiceTypeCode": {"value": 388}, "IssueDate": "2026-01-01"}
    root = ElementTree.fromstring(build(minimal, icv=1))
    assert root.findtext("cbc:ID", namespaces=NS) == "X-1"
    assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == "SAR"
    assert root.find("cac:InvoiceLine", NS) is None
    assert parse_invoice_xml(build(minimal))["InvoiceTypeCode"] == {"value": "388"}


def test_special_and_invalid_characters_are_escaped() -> None:
    invoice = standard_invoice()
    buyer = invoice["AccountingCustomerParty"]["Party"]
    buyer["PartyLegalEntity"]["RegistrationName"] = en('A&B <"Q"> \x01 Ltd')
    invoice["InvoiceLine"][0]["InvoicedQuantity"]["unitCode"] = 'P"C&E'
    parsed = parse_invoice_xml(build(invoice))
    parsed_name = parsed["AccountingCustomerParty"]["Party"]["PartyLegalEntity"]["RegistrationName"]
    assert parsed_name == en('A&B <"Q"> \ufffd Ltd')
    assert parsed["InvoiceLine"][0]["InvoicedQuantity"]["unitCode"] == 'P"C&E'


# ------------------------------------------------------------------------------------------------ hash


def test_hash_is_base64_of_a_sha256_digest_and_stable() -> None:
    xml = build(standard_invoice())
    digest = base64.b64decode(invoice_hash(xml), validate=True)
    assert len(digest) == 32
    assert invoice_hash(xml) == invoice_hash(build(standard_invoice()))
    assert invoice_hash(xml) != invoice_hash(build(standard_invoice(), icv=43))


@pytest.mark.parametrize("name", sorted(INVOICES))
def test_hash_of_built_invoice_equals_hash_of_its_canonical_form(name: str) -> None:
    # Trailing whitespace after the root is not part of the canonical form but defeats the lookup of the
    # hash remembered at build time, so this compares the writer's shortcut with the canonicaliser.
    xml = build(INVOICES[name]())
    assert invoice_hash(xml) == invoice_hash(xml + b"\n\n")


def test_hash_shortcut_matches_canonicaliser_with_awkward_characters() -> None:
    invoice = standard_invoice()
    invoice["Note"] = en("tab\there, cr\r, amp & lt < gt > quote \" apos '")
    invoice["InvoiceLine"][0]["InvoicedQuantity"]["unitCode"] = 'a"b\tc\nd<e>&'
    xml = build(invoice)
    assert invoice_hash(xml) == invoice_hash(xml + b" ")


def test_hash_ignores_qr_signature_and_extensions() -> None:
    plain = build(standard_invoice())
    with_qr = build(
        standard_invoice(),
        qr=qr_tlv(
            seller_name="S",
            vat_number="300000000000003",
            timestamp="2026-01-31T10:15:00",
            total_with_vat="356.50",
            vat_total="46.50",
        ),
    )
    extensions = b"<ext:UBLExtensions><ext:UBLExtension>sig</ext:UBLExtension></ext:UBLExtensions>"
    signature = b"<cac:Signature><cbc:ID>urn:oasis:names:specification:ubl:signature:Invoice</cbc:ID>"
    signature += b"</cac:Signature>"
    profile, supplier = b"    <cbc:ProfileID>", b"    <cac:AccountingSupplierParty>"
    signed = plain.replace(profile, b"    " + extensions + b"\n" + profile)
    signed = signed.replace(supplier, b"    " + signature + b"\n" + supplier)
    # Removing an element keeps the whitespace around it, as ZATCA's transform does.
    blanked = plain.replace(profile, b"    \n" + profile).replace(supplier, b"    \n" + supplier)
    assert with_qr != plain and signed != plain
    assert invoice_hash(with_qr) == invoice_hash(plain)
    assert invoice_hash(signed) == invoice_hash(blanked)
    assert invoice_hash(plain.replace(b"INV-2026/0042", b"INV-2026/0043")) != invoice_hash(plain)


def test_hash_uses_inclusive_canonical_xml() -> None:
    namespaces = 'xmlns:ubl="{inv}" xmlns:cac="{cac}" xmlns:cbc="{cbc}"'.format(**NS).encode()
    document = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- dropped -->\n'
        b"<ubl:Invoice " + namespaces.replace(b'" xmlns', b'"  xmlns') + b" >"
        b'<cbc:Note b=\'2\' a="1"/><cac:X xmlns:cbc="' + NS["cbc"].encode() + b'" xmlns:z="urn:z">'
        b"t&amp;&#x3E;<![CDATA[<&]]></cac:X>"
        b"<cac:AdditionalDocumentReference><cbc:ID>QR</cbc:ID></cac:AdditionalDocumentReference>"
        b"<!-- dropped --><?keep me?></ubl:Invoice>\n<!-- dropped -->"
    )
    canonical = (
        b'<ubl:Invoice xmlns:cac="' + NS["cac"].encode() + b'" xmlns:cbc="' + NS["cbc"].encode() + b'" '
        b'xmlns:ubl="' + NS["inv"].encode() + b'">'
        b'<cbc:Note a="1" b="2"></cbc:Note><cac:X xmlns:z="urn:z">t&amp;&gt;&lt;&amp;</cac:X>'
        b"<?keep me?></ubl:Invoice>"
    )
    assert invoice_hash(document) == base64.b64encode(hashlib.sha256(canonical).digest()).decode()


# ------------------------------------------------------------------------------------------------ QR


def test_qr_tlv_carries_the_five_tags_with_utf8_lengths() -> None:
    qr = qr_tlv(
        seller_name=ARABIC_SELLER,
        vat_number="300000000000003",
        timestamp="2026-01-31T10:15:00",
        total_with_vat="356.50",
        vat_total="46.50",
    )
    raw = base64.b64decode(qr)
    name = ARABIC_SELLER.encode("utf-8")
    assert raw[:2] == bytes((1, len(name))) and len(name) > len(ARABIC_SELLER)
    assert raw[2 : 2 + len(name)] == name
    assert decode_qr_tlv(qr) == {
        1: ARABIC_SELLER,
        2: "300000000000003",
        3: "2026-01-31T10:15:00",
        4: "356.50",
        5: "46.50",
    }


def test_qr_tlv_adds_the_invoice_hash_as_tag_six() -> None:
    digest = invoice_hash(build(simplified_invoice()))
    qr = qr_tlv(
        seller_name="Emulator Trading Co.",
        vat_number="300000000000003",
        timestamp="2026-02-01T17:41:08",
        total_with_vat="163.85",
        vat_total="14.85",
        invoice_hash=digest,
    )
    tags = decode_qr_tlv(qr)
    assert sorted(tags) == [1, 2, 3, 4, 5, 6]
    assert tags[6] == digest


def test_qr_tlv_refuses_values_longer_than_a_length_byte() -> None:
    with pytest.raises(ValueError, match="tag 1"):
        qr_tlv(seller_name="ش" * 128, vat_number="3", timestamp="t", total_with_vat="1", vat_total="0")


@pytest.mark.parametrize("payload", ["not base64!", base64.b64encode(b"\x01\x05abc").decode()])
def test_decode_qr_tlv_rejects_broken_payloads(payload: str) -> None:
    with pytest.raises(ValueError):
        decode_qr_tlv(payload)


# ------------------------------------------------------------------------------------------------ parse


@pytest.mark.parametrize("name", sorted(INVOICES))
def test_parse_round_trips_the_model(name: str) -> None:
    invoice = INVOICES[name]()
    parsed = parse_invoice_xml(build(invoice, icv=7))
    assert parsed == {**invoice, "UUID": "3cf5ee18-ee25-44ea-a444-2c37ba7f28be", "ICV": 7, "PIH": PIH}


def test_parse_reads_a_signed_invoice_with_other_prefixes() -> None:
    xml = build(simplified_invoice())
    text = xml.decode()
    text = text.replace("<Invoice xmlns=", "<inv:Invoice xmlns:inv=").replace("</Invoice>", "</inv:Invoice>")
    text = text.replace("cbc:", "b:").replace("xmlns:cbc=", "xmlns:b=")
    extensions = "<ext:UBLExtensions><ext:UBLExtension/></ext:UBLExtensions>"
    text = text.replace("    <b:ProfileID>", f"    {extensions}\n    <b:ProfileID>")
    parsed = parse_invoice_xml(text.encode())
    assert parsed["ID"] == en("SME00010")
    seller = parsed["AccountingSupplierParty"]["Party"]
    assert seller["PartyLegalEntity"]["RegistrationName"] == ar(ARABIC_SELLER)
    assert (parsed["ICV"], parsed["PIH"]) == (42, PIH)


HOSTILE = {
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;">]><Invoice>&lol2;</Invoice>',
    "external entity": b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Invoice>&xxe;</Invoice>',
    "utf-16 doctype": (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><Invoice>&a;</Invoice>'
    ).encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_rejected(name: str) -> None:
    with pytest.raises(InvalidXmlError, match="DOCTYPE"):
        parse_invoice_xml(HOSTILE[name])
    with pytest.raises(InvalidXmlError, match="DOCTYPE"):
        invoice_hash(HOSTILE[name])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"", "empty"),
        (b"<Invoice><cbc:ID>", "malformed"),
        (b"not xml at all", "malformed"),
        (b'<CreditNote xmlns="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"/>', "root element"),
    ],
)
def test_malformed_xml_is_rejected(document: bytes, message: str) -> None:
    with pytest.raises(InvalidXmlError, match=message):
        parse_invoice_xml(document)


@pytest.mark.parametrize("element", ["ID", "InvoiceTypeCode", "IssueDate"])
def test_missing_mandatory_elements_are_rejected(element: str) -> None:
    pattern = rf"\s*<cbc:{element}\b[^>]*>[^<]*</cbc:{element}>".encode()
    xml = re.sub(pattern, b"", build(standard_invoice()), count=1)
    with pytest.raises(InvalidXmlError, match=f"cbc:{element}"):
        parse_invoice_xml(xml)


def test_non_integer_icv_is_rejected() -> None:
    xml = build(standard_invoice()).replace(b"<cbc:UUID>42</cbc:UUID>", b"<cbc:UUID>forty-two</cbc:UUID>")
    with pytest.raises(InvalidXmlError, match="ICV"):
        parse_invoice_xml(xml)


# ------------------------------------------------------------------------------------------------ PDF


def xref_sections(pdf: bytes) -> list[tuple[dict[int, int], bytes]]:
    """Follow startxref and /Prev; return each section's in-use offsets with its trailer text."""
    sections = []
    offset: int | None = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    while offset is not None:
        assert pdf[offset:].startswith(b"xref"), f"startxref/Prev {offset} does not point at an xref table"
        table, trailer = pdf[offset:].split(b"trailer", 1)
        trailer = trailer.split(b"startxref", 1)[0]
        offsets: dict[int, int] = {}
        lines = table.split(b"\n")[1:]
        index = 0
        while index < len(lines) and lines[index].strip():
            first, count = map(int, lines[index].split())
            for number, entry in enumerate(lines[index + 1 : index + 1 + count], start=first):
                row = re.fullmatch(rb"(\d{10}) \d{5} ([nf])[ \r]", entry)  # 20 bytes with the newline
                assert row is not None, entry
                if row.group(2) == b"n":
                    offsets[number] = int(row.group(1))
            index += count + 1
        sections.append((offsets, trailer))
        previous = re.search(rb"/Prev (\d+)", trailer)
        offset = int(previous.group(1)) if previous else None
    return sections


def assert_xref_offsets_point_at_objects(pdf: bytes) -> None:
    for offsets, _trailer in xref_sections(pdf):
        assert offsets
        for number, offset in offsets.items():
            assert pdf[offset:].startswith(b"%d 0 obj" % number), (number, offset)


def page_text(pdf: bytes) -> bytes:
    contents = re.search(rb"/Contents (\d+) 0 R", pdf)
    assert contents is not None
    start = pdf.index(b"%s 0 obj" % contents.group(1))
    stream = re.search(rb"stream\n(.*?)\nendstream", pdf[start:], re.S)
    assert stream is not None
    return zlib.decompress(stream.group(1))


def issued_pdf(name: str = "standard") -> tuple[bytes, bytes, dict]:
    invoice = INVOICES[name]()
    xml = build(invoice)
    record = {
        **invoice,
        "InvoiceStatus": "CLEARED",
        "UUID": "3cf5ee18-ee25-44ea-a444-2c37ba7f28be",
        "QRCode": qr_tlv(
            seller_name=ARABIC_SELLER,
            vat_number="300000000000003",
            timestamp="2026-01-31T10:15:00",
            total_with_vat="356.50",
            vat_total="46.50",
            invoice_hash=invoice_hash(xml),
        ),
    }
    return build_invoice_pdf(invoice=record, xml=xml, xml_filename="INV-2026-0042.xml"), xml, record


def test_pdf_is_structurally_valid() -> None:
    pdf, _xml, _record = issued_pdf()
    assert pdf.startswith(b"%PDF-1.7\n%")
    assert pdf.endswith(b"%%EOF\n")
    assert_xref_offsets_point_at_objects(pdf)
    [(offsets, trailer)] = xref_sections(pdf)
    assert re.search(rb"/Size %d\b" % (max(offsets) + 1), trailer)
    assert re.search(rb"/ID \[<[0-9A-F]{32}> <[0-9A-F]{32}>\]", trailer)
    assert re.search(rb"/Root 1 0 R", trailer)


def test_pdf_carries_the_xml_as_a_pdfa3_attachment() -> None:
    pdf, xml, _record = issued_pdf("simplified")
    assert extract_embedded_files(pdf) == {"INV-2026-0042.xml": xml}
    assert "الامير سلطان".encode() in extract_embedded_files(pdf)["INV-2026-0042.xml"]
    for marker in (
        b"/Type /Filespec",
        b"/F (INV-2026-0042.xml)",
        b"/UF (INV-2026-0042.xml)",
        b"/AFRelationship /Data",
        b"/AF [9 0 R]",
        b"/EmbeddedFiles <</Names [(INV-2026-0042.xml) 9 0 R]>>",
        b"/Subtype /text#2Fxml",
        b"/Params <</Size %d" % len(xml),
        b"<pdfaid:part>3</pdfaid:part>",
        b"<pdfaid:conformance>B</pdfaid:conformance>",
        b"/Filter /FlateDecode",
    ):
        assert marker in pdf, marker


def test_pdf_page_shows_a_readable_summary() -> None:
    pdf, _xml, record = issued_pdf()
    text = page_text(pdf)
    for expected in (
        b"(Tax Invoice)",
        b"(INV-2026/0042)",
        b"(Emulator Trading Co.)",
        b"(Buyer Holding LLC)",
        b"(VAT number: 300000000000003)",
        b"(2026-01-31 10:15:00)",
        b"(CLEARED)",
        b"(Widget \\(large\\))",
        b"(356.50 SAR)",
        b"(" + record["QRCode"][:110].encode() + b")",
        b"/F1 ",
        b"/F2 ",
    ):
        assert expected in text, expected


def test_pdf_page_replaces_arabic_with_question_marks() -> None:
    pdf, _xml, _record = issued_pdf("simplified")
    text = page_text(pdf)
    assert b"(Simplified Tax Invoice)" in text
    assert b"(???? ??????? ???????)" in text


def test_embed_xml_into_a_generated_pdf_is_an_incremental_update() -> None:
    pdf, xml, _record = issued_pdf()
    extra = b'<?xml version="1.0"?><note>second</note>'
    updated = embed_xml_in_pdf(pdf, xml=extra, xml_filename="second.xml")

    assert updated.startswith(pdf) and updated.endswith(b"%%EOF\n")
    assert_xref_offsets_point_at_objects(updated)
    (newest, trailer), (_oldest, _) = xref_sections(updated)
    assert 1 in newest  # a new revision of the catalog
    assert re.search(rb"/Prev %d\b" % int(re.findall(rb"startxref\s+(\d+)", pdf)[-1]), trailer)
    assert extract_embedded_files(updated) == {"INV-2026-0042.xml": xml, "second.xml": extra}


def test_embedding_a_file_of_the_same_name_replaces_it() -> None:
    pdf, _xml, _record = issued_pdf()
    updated = embed_xml_in_pdf(pdf, xml=b"<v2/>", xml_filename="INV-2026-0042.xml")
    assert extract_embedded_files(updated) == {"INV-2026-0042.xml": b"<v2/>"}
    assert len(re.findall(rb"/AF \[[^\]]*\]", updated)[-1].split(b" R")) == 2  # one reference left


def hand_made_pdf(*, catalog_extra: bytes = b"", break_offsets: bool = False) -> bytes:
    """Return a one-page PDF 1.4 written the way simple tools do, with CRLF xref rows."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length 21 >>\nstream\n0 0 m 100 100 l S\n\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out) + (7 if break_offsets else 0))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f\r\n"
    out += b"".join(b"%010d 00000 n\r\n" % offset for offset in offsets)
    out += b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % xref
    return bytes(out)


def test_embed_xml_into_a_hand_made_classic_pdf() -> None:
    original = hand_made_pdf(catalog_extra=b"/Names << /Dests 5 0 R >> ")
    xml = build(credit_note())
    updated = embed_xml_in_pdf(original, xml=xml, xml_filename="CRN-0007.xml")

    assert updated.startswith(original)
    assert_xref_offsets_point_at_objects(updated)
    assert extract_embedded_files(updated) == {"CRN-0007.xml": xml}
    catalog = updated[updated.rindex(b"1 0 obj") :]
    assert b"/Dests 5 0 R" in catalog.split(b"endobj")[0]  # other name trees survive
    assert b"/Version /1.7" in catalog and b"/Metadata" in catalog


def test_embed_survives_wrong_xref_offsets() -> None:
    updated = embed_xml_in_pdf(hand_made_pdf(break_offsets=True), xml=b"<x/>", xml_filename="x.xml")
    assert extract_embedded_files(updated) == {"x.xml": b"<x/>"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"just some text", "%PDF- header"),
        (b"%PDF-1.4\n1 0 obj << >> endobj\n", "startxref"),
        (b"<?xml version='1.0'?><Invoice/>", "%PDF- header"),
    ],
)
def test_non_pdf_input_is_rejected(document: bytes, message: str) -> None:
    with pytest.raises(InvalidPdfError, match=re.escape(message)):
        embed_xml_in_pdf(document, xml=b"<x/>", xml_filename="x.xml")
    with pytest.raises(InvalidPdfError):
        extract_embedded_files(document)


def test_cross_reference_streams_are_rejected() -> None:
    body = b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    xref_at = len(body)
    document = body + b"2 0 obj\n<< /Type /XRef /Size 3 /Root 1 0 R /Length 0 >>\n"
    document += b"stream\n\nendstream\nendobj\n"
    document += b"startxref\n%d\n%%%%EOF\n" % xref_at
    with pytest.raises(InvalidPdfError, match="cross-reference streams are not supported"):
        embed_xml_in_pdf(document, xml=b"<x/>", xml_filename="x.xml")
