"""Connection to settings: base URL rules, extras, secrets."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from airflow_provider_cleartax.client.settings import (
    SANDBOX_BASE_URL,
    normalize_base_url,
    settings_from_connection,
)
from airflow_provider_cleartax.exceptions import ClearTaxConfigError
from airflow_provider_cleartax.hooks.cleartax import ClearTaxHook
from tests.conftest import SECRET_TOKEN


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, SANDBOX_BASE_URL),
        ("", SANDBOX_BASE_URL),
        ("api.cleartax.com", "https://api.cleartax.com/middle-east/ksa/einvoicing"),
        ("https://api.cleartax.com/", "https://api.cleartax.com/middle-east/ksa/einvoicing"),
        ("https://proxy.example/ksa/", "https://proxy.example/ksa"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/middle-east/ksa/einvoicing"),
        ("http://localhost:1/x", "http://localhost:1/x"),
        ("http://[::1]:5/", "http://[::1]:5/middle-east/ksa/einvoicing"),
    ],
)
def test_base_url(host, expected) -> None:
    assert normalize_base_url(host, conn_id="c") == expected


def test_plain_http_refused_for_remote_hosts_unless_allowed() -> None:
    with pytest.raises(ClearTaxConfigError, match="unencrypted"):
        normalize_base_url("http://api.cleartax.com", conn_id="c")
    assert normalize_base_url("http://gateway.internal", conn_id="c", allow_insecure_http=True).startswith(
        "http://"
    )


def test_port_of_a_uri_connection_is_kept() -> None:
    assert normalize_base_url("127.0.0.1", conn_id="c", port=8080).startswith("https://127.0.0.1:8080/")


def test_extras_and_overrides() -> None:
    conn = Connection(
        conn_id="c",
        conn_type="cleartax",
        host="https://api.cleartax.com",
        password=SECRET_TOKEN,
        extra=json.dumps(
            {
                "vat": "300000000000003",
                "extra__cleartax__branch": "Jeddah",
                "device_id": "d-1",
                "request_timeout": "12",
                "generate_timeout": 100,
                "max_retries": "2",
                "language": "ar",
            }
        ),
    )
    settings = settings_from_connection(conn, vat="399999999999993", max_retries=None, backoff_cap=3)
    assert settings.vat == "399999999999993"  # the override wins
    assert settings.branch == "Jeddah"  # legacy prefixed extra still read
    assert (settings.request_timeout, settings.generate_timeout) == (12.0, 100.0)
    assert settings.retry.max_retries == 2 and settings.retry.backoff_cap == 3
    assert settings.language == "ar"
    assert SECRET_TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_retries": "many"}, "must be a number"),
        ({"request_timeout": -1}, "must not be negative"),
        ({"language": "fr"}, "'en' or 'ar'"),
    ],
)
def test_bad_extras_name_the_field(extra, message) -> None:
    conn = Connection(conn_id="c", conn_type="cleartax", password="t", extra=json.dumps(extra))
    with pytest.raises(ClearTaxConfigError, match=message):
        settings_from_connection(conn)


def test_missing_password_names_the_connection(make_connection) -> None:
    conn_id = make_connection("https://api.cleartax.com", conn_id="no_token", password=None)
    with pytest.raises(ClearTaxConfigError, match="'no_token' has no auth token"):
        ClearTaxHook(cleartax_conn_id=conn_id).get_invoice(unique_id="x")


def test_missing_vat_names_the_connection(make_connection) -> None:
    conn_id = make_connection("https://api.cleartax.com", conn_id="no_vat", vat="")
    with pytest.raises(ClearTaxConfigError, match="no VAT number for connection 'no_vat'"):
        ClearTaxHook(cleartax_conn_id=conn_id).get_invoice(unique_id="x")


def test_numeric_text_extras_are_sent_as_text() -> None:
    # Airflow 3.1's Test Connection round-trips the connection and hands the VAT back as a number.
    conn = Connection(
        conn_id="n",
        conn_type="cleartax",
        password="t",
        extra=json.dumps({"vat": 300000000000003, "device_id": 42}),
    )
    settings = settings_from_connection(conn)
    assert settings.vat == "300000000000003" and settings.device_id == "42"


@pytest.mark.parametrize("token", ["Zq9ö-1234", "Zq9\n1234", "Zq9\x001234"])
def test_a_token_no_header_can_carry_is_refused_without_quoting_it(token) -> None:
    conn = Connection(conn_id="bad_tok", conn_type="cleartax", password=token)
    with pytest.raises(ClearTaxConfigError, match="'bad_tok'") as caught:
        settings_from_connection(conn)
    assert "Zq9" not in str(caught.value) and "1234" not in str(caught.value)
