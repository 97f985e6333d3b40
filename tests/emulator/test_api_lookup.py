"""Look-ups (5, 6), PDFs (7, 8) and email (9)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from airflow_provider_cleartax.emulator import documents
from airflow_provider_cleartax.emulator.api import FIRST_PIH
from tests.emulator.conftest import DEVICE_ID, VAT, Env, make_invoice, mutate, simplified, unique_id

DATA = "/v2/einvoices/data"
BULK = "/v3/einvoices/get-bulk"
PRINT = "/v2/einvoices/print"
EMBED = "/v2/einvoices/embeddedpdf"
EMAIL = "/v1/emails"


def _query(
    number: str = "INV-0001", document_type: str = "INV", issue_date: str = "2026-03-15"
) -> dict[str, str]:
    return {"invoiceNumber": number, "invoiceType": document_type, "issueDate": issue_date, "vat": VAT}


def test_get_invoice_by_unique_id_and_by_fields_match_the_generate_answer(env: Env) -> None:
    generated = env.generate(make_invoice()).json()
    by_id = env.client.get(DATA, params={"uniqueId": unique_id("INV-0001")})
    by_fields = env.client.get(DATA, params=_query())
    assert by_id.status_code == by_fields.status_code == 200
    assert by_id.headers["content-type"] == "application/json"
    assert by_id.json() == by_fields.json() == generated


@pytest.mark.parametrize(("code", "document_type"), [("381", "CRN"), ("383", "DBN"), ("386", "RECEIPT")])
def test_get_invoice_maps_document_types(env: Env, code: str, document_type: str) -> None:
    env.generate(make_invoice("N-1", code=code))
    response = env.client.get(DATA, params=_query("N-1", document_type))
    assert response.json()["InvoiceStatus"] == "CLEARED"


def test_invoice_number_with_slash_round_trips(env: Env) -> None:
    env.generate(make_invoice("INV/2026/7"))
    by_fields = env.client.get(DATA, params=_query("INV/2026/7"))
    by_id = env.client.get(DATA, params={"uniqueId": unique_id("INV/2026/7")})
    assert "%2F" in str(by_fields.request.url)
    assert by_fields.status_code == by_id.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"uniqueId": unique_id("NOPE")},
        _query("NOPE"),
        _query(issue_date="2026-03-14"),
        _query(document_type="CRN"),
    ],
    ids=["unique-id", "fields", "other-date", "other-type"],
)
def test_unknown_invoice_is_404_with_6003(env: Env, params: dict[str, str]) -> None:
    env.generate(make_invoice())
    response = env.client.get(DATA, params=params)
    assert response.status_code == 404
    [entry] = response.json()["ErrorList"]
    assert entry["ErrorCode"] == "6003"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"invoiceNumber": "A"},
        {**_query(), "invoiceType": "XYZ"},
        {**_query(), "issueDate": "2026-3-5"},
        {**_query(), "vat": "123"},
    ],
    ids=["nothing", "number-only", "bad-type", "bad-date", "bad-vat"],
)
def test_get_invoice_with_bad_query_is_400(env: Env, params: dict[str, str]) -> None:
    response = env.client.get(DATA, params=params)
    assert response.status_code == 400
    assert response.json()["ErrorList"][0]["ErrorCode"] == "6002"


def test_bulk_answers_each_identity_in_order(env: Env) -> None:
    env.generate(make_invoice("B-1"))
    env.generate(simplified("B-2"), path="/v2/einvoices/generate/async")
    asked: list[dict[str, Any]] = [
        {"uniqueId": unique_id("B-2")},
        {"invoiceNumber": "B-1", "invoiceType": "INV", "issueDate": "2026-03-15", "vat": VAT},
        {"uniqueId": unique_id("B-404")},
        {"invoiceNumber": "B-1", "invoiceType": "INV", "issueDate": "2026-03-14", "vat": VAT},
    ]
    response = env.client.post(BULK, json={"Invoices": asked})
    assert response.status_code == 200
    items = response.json()["Invoices"]
    assert [item["einvoiceStatus"] for item in items] == ["PENDING", "CLEARED", None, None]
    assert items[0] == {
        "invoiceNumber": "B-2",
        "uniqueId": unique_id("B-2"),
        "invoiceType": "INV",
        "issueDate": "2026-03-15",
        "einvoiceStatus": "PENDING",
        "ErrorList": [],
    }
    assert items[1]["uniqueId"] == unique_id("B-1")
    assert items[2]["uniqueId"] == unique_id("B-404")
    assert [e["ErrorCode"] for e in items[2]["ErrorList"]] == ["6003"]
    assert [e["ErrorCode"] for e in items[3]["ErrorList"]] == ["6003"]
    env.clock.advance(60)
    later = env.client.post(BULK, json={"Invoices": asked[:1]}).json()["Invoices"]
    assert later[0]["einvoiceStatus"] == "REPORTED"


def test_bulk_shows_rejections_with_their_errors(env: Env) -> None:
    env.generate(mutate(make_invoice(), lambda e: e.update(TaxCurrencyCode="USD")))
    [item] = env.client.post(BULK, json={"Invoices": [{"uniqueId": unique_id("INV-0001")}]}).json()[
        "Invoices"
    ]
    assert item["einvoiceStatus"] == "NOT_CLEARED"
    assert item["ErrorList"][0]["ErrorCode"] == "8001"


def test_bulk_filters_by_method_of_generation(env: Env) -> None:
    env.generate(make_invoice())
    asked = [{"uniqueId": unique_id("INV-0001")}]
    online = env.client.post(BULK, json={"Invoices": asked, "methodOfGeneration": "ONLINE"}).json()
    offline = env.client.post(BULK, json={"Invoices": asked, "methodOfGeneration": "OFFLINE"}).json()
    assert online["Invoices"][0]["einvoiceStatus"] == "CLEARED"
    assert offline["Invoices"][0]["einvoiceStatus"] is None


def test_bulk_accepts_500_and_rejects_501(env: Env) -> None:
    identities = [{"uniqueId": unique_id(f"X-{n}")} for n in range(501)]
    ok = env.client.post(BULK, json={"Invoices": identities[:500]})
    too_many = env.client.post(BULK, json={"Invoices": identities})
    assert ok.status_code == 200 and len(ok.json()["Invoices"]) == 500
    assert too_many.status_code == 400
    assert too_many.json()["ErrorList"][0]["Path"] == "Invoices"


@pytest.mark.parametrize(
    "body",
    [{"Invoices": []}, {}, {"Invoices": "x"}, {"Invoices": [{"uniqueId": "a"}], "methodOfGeneration": "FAX"}],
    ids=["empty", "missing", "not-a-list", "bad-method"],
)
def test_bulk_bad_requests_are_400(env: Env, body: dict[str, Any]) -> None:
    assert env.client.post(BULK, json=body).status_code == 400


def test_bulk_item_with_bad_fields_gets_its_own_error(env: Env) -> None:
    response = env.client.post(BULK, json={"Invoices": [{"invoiceNumber": "A", "invoiceType": "ZZZ"}]})
    [item] = response.json()["Invoices"]
    assert item["einvoiceStatus"] is None
    assert {e["ErrorCode"] for e in item["ErrorList"]} == {"6002"}


def test_print_returns_a_pdf_with_the_invoice_xml_inside(env: Env) -> None:
    generated = env.generate(make_invoice("INV/7")).json()
    response = env.client.get(PRINT, params={**_query("INV/7"), "templateId": "39"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    embedded = documents.extract_embedded_files(response.content)
    assert list(embedded.values()) == [base64.b64decode(generated["InvoiceXml"])]
    [name] = embedded
    assert name.startswith(f"{VAT}_20260315T093000_") and name.endswith(".xml")


def test_print_accepts_the_alternative_query_names(env: Env) -> None:
    env.generate(make_invoice())
    params = {
        "documentNumber": "INV-0001",
        "documentType": "INV",
        "documentDate": "2026-03-15",
        "taxpayerId": VAT,
    }
    response = env.client.get(PRINT, params=params)
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


def test_print_errors_are_json_arrays(env: Env) -> None:
    env.generate(mutate(make_invoice("REJ-1"), lambda e: e.update(TaxCurrencyCode="USD")))
    missing = env.client.get(PRINT, params={"invoiceNumber": "INV-0001"})
    unknown = env.client.get(PRINT, params=_query("NOPE"))
    rejected = env.client.get(PRINT, params=_query("REJ-1"))
    assert (missing.status_code, unknown.status_code, rejected.status_code) == (400, 404, 400)
    for response in (missing, unknown, rejected):
        assert isinstance(response.json(), list) and response.json()
    assert unknown.json()[0]["ErrorCode"] == "6003"


def _own_pdf(env: Env) -> bytes:
    """A PDF of the client's own layout (here: another invoice printed by the emulator)."""
    env.generate(make_invoice("LAYOUT-1"))
    return env.client.get(PRINT, params=_query("LAYOUT-1")).content


def test_embedded_pdf_from_a_multipart_file(env: Env) -> None:
    own = _own_pdf(env)
    generated = env.generate(make_invoice()).json()
    response = env.client.post(EMBED, params=_query(), files={"file": ("mine.pdf", own, "application/pdf")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    embedded = documents.extract_embedded_files(response.content)
    assert base64.b64decode(generated["InvoiceXml"]) in embedded.values()


def test_embedded_pdf_from_base64_answers_base64(env: Env) -> None:
    own = _own_pdf(env)
    generated = env.generate(make_invoice()).json()
    encoded = base64.b64encode(own).decode()
    as_form = env.client.post(
        EMBED,
        params={**_query(), "pdfTypeResponse": "PDF_BASE64"},
        files={"base64EncodedPdfFile": (None, encoded)},
    )
    as_json = env.client.post(
        EMBED, params={**_query(), "pdfTypeResponse": "PDF_BASE64"}, json={"base64EncodedPdfFile": encoded}
    )
    for response in (as_form, as_json):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        pdf = base64.b64decode(response.text)
        assert pdf.startswith(b"%PDF")
        assert base64.b64decode(generated["InvoiceXml"]) in documents.extract_embedded_files(pdf).values()


def test_embedded_pdf_errors_are_json_arrays(env: Env) -> None:
    own = _own_pdf(env)
    env.generate(make_invoice())
    files = {"file": ("mine.pdf", own, "application/pdf")}
    unknown = env.client.post(EMBED, params=_query("NOPE"), files=files)
    not_pdf = env.client.post(EMBED, params=_query(), files={"file": ("x.pdf", b"hello", "application/pdf")})
    no_file = env.client.post(EMBED, params=_query(), json={})
    bad_base64 = env.client.post(EMBED, params=_query(), json={"base64EncodedPdfFile": "***"})
    bad_type = env.client.post(EMBED, params={**_query(), "pdfTypeResponse": "PNG"}, files=files)
    statuses = [r.status_code for r in (unknown, not_pdf, no_file, bad_base64, bad_type)]
    assert statuses == [404, 400, 400, 400, 400]
    for response in (unknown, not_pdf, no_file, bad_base64, bad_type):
        assert isinstance(response.json(), list)


def _email_body(*, new_keys: bool = True, email: str = "buyer@example.com", number: str = "INV-0001") -> dict:
    contacts = [
        {"Email": email, "EmailRecipientType": "TO"},
        {"Email": "cc@example.com", "EmailRecipientType": "CC"},
    ]
    documents_ = [{"InvoiceNumber": number, "IssueDate": "2026-03-15", "InvoiceType": "INV", "Vat": VAT}]
    preview = (
        {"Template": {"Type": "INVOICE_GENERATED"}, "CounterParties": [{"Contacts": contacts}]}
        if new_keys
        else {
            "EmailTemplate": {"Type": "INVOICE_PAYMENT_REMINDER"},
            "CounterPartyDetails": [{"ContactDetails": contacts}],
        }
    )
    return {
        "Attachments": {"documentDetails": documents_, "printTemplateId": "39", "documentType": "EINVOICE"},
        "PreviewDetails": preview,
    }


@pytest.mark.parametrize("new_keys", [True, False], ids=["current-keys", "older-keys"])
def test_email_is_sent_and_logged(env: Env, new_keys: bool) -> None:
    env.generate(make_invoice())
    response = env.client.post(EMAIL, json=_email_body(new_keys=new_keys))
    assert response.status_code == 200
    assert response.json()["Status"] == "SENT"
    [sent] = env.emulator.sent_emails()
    assert sent["To"] == ["buyer@example.com"] and sent["Cc"] == ["cc@example.com"]
    assert sent["Documents"] == [unique_id("INV-0001")]
    assert sent["Template"] == ("INVOICE_GENERATED" if new_keys else "INVOICE_PAYMENT_REMINDER")
    assert sent["EmailId"] == response.json()["EmailId"]


def test_email_validation_and_missing_documents(env: Env) -> None:
    env.generate(make_invoice())
    bad_email = env.client.post(EMAIL, json=_email_body(email="not-an-email"))
    unknown = env.client.post(EMAIL, json=_email_body(number="NOPE"))
    empty = env.client.post(EMAIL, json={})
    assert bad_email.status_code == 400
    assert bad_email.json()["ErrorList"][0]["Path"].endswith("Contacts[0].Email")
    assert unknown.status_code == 404
    assert unknown.json()["ErrorList"][0]["ErrorCode"] == "6003"
    assert empty.status_code == 400
    assert env.emulator.sent_emails() == []


def test_offline_invoices_are_found_printed_and_filtered_as_offline(env: Env) -> None:
    xml = documents.build_invoice_xml(
        make_invoice("OFF-1"), uuid="6f1d8a1e-8c8e-4d3b-9d55-3f7b3a1c2b10", icv=1, pih=FIRST_PIH
    )
    env.client.post(
        "/v2/einvoices/generate-with-file-offline",
        files={"file": ("signed.xml", xml, "application/xml")},
        headers={"device-id": DEVICE_ID},
    )
    stored = env.client.get(DATA, params=_query("OFF-1")).json()
    assert stored["InvoiceStatus"] == "CLEARED"
    assert base64.b64decode(stored["InvoiceXml"]) == xml
    asked = {"Invoices": [{"uniqueId": unique_id("OFF-1")}], "methodOfGeneration": "OFFLINE"}
    assert env.client.post(BULK, json=asked).json()["Invoices"][0]["einvoiceStatus"] == "CLEARED"
    pdf = env.client.get(PRINT, params=_query("OFF-1")).content
    assert list(documents.extract_embedded_files(pdf).values()) == [xml]
