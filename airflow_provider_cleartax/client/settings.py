"""Client settings resolved from an Airflow connection (plus per-hook overrides)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_cleartax.exceptions import ClearTaxConfigError

if TYPE_CHECKING:
    from airflow.sdk import Connection

SANDBOX_BASE_URL = "https://api-sandbox.cleartax.com/middle-east/ksa/einvoicing"
PRODUCTION_BASE_URL = "https://api.cleartax.com/middle-east/ksa/einvoicing"
API_PATH = "/middle-east/ksa/einvoicing"

DEFAULT_REQUEST_TIMEOUT = 30.0
# ClearTax reports p99 of 17-28 s for generate and about 60 s during incidents.
DEFAULT_GENERATE_TIMEOUT = 90.0
DEFAULT_MAX_RETRIES = 5

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class RetryPolicy:
    """How one call retries transient failures.

    :param max_retries: retries after the first attempt (0 = none).
    :param backoff_base: first backoff ceiling in seconds; doubles each retry (full jitter).
    :param backoff_cap: largest backoff ceiling in seconds.
    :param max_retry_after: largest ``Retry-After`` honoured, in seconds.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0


@dataclass(frozen=True)
class ClientSettings:
    """Everything a request needs, minus the HTTP client.

    :param conn_id: Airflow connection id (named in errors).
    :param base_url: API base URL, ending before the endpoint paths.
    :param token: the ``X-Cleartax-Auth-Token`` (hidden from ``repr``).
    :param vat: default seller VAT (``vat`` header).
    :param branch: default branch (``branch`` header).
    :param device_id: default EGS device id.
    :param language: ``accept-language`` (``en`` or ``ar``).
    :param request_timeout: seconds for reads and lookups.
    :param generate_timeout: seconds for invoice generation.
    :param retry: retry policy of every call.
    :param max_body_bytes: largest JSON answer read into memory.
    :param portal_url: ClearTax web portal the task links point at.
    """

    conn_id: str
    base_url: str
    token: str = field(repr=False)
    vat: str | None = None
    branch: str | None = None
    device_id: str | None = None
    language: str | None = None
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    generate_timeout: float = DEFAULT_GENERATE_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_body_bytes: int = 32 * 1024 * 1024
    portal_url: str | None = None

    def invoice_url(self, unique_id: str) -> str:
        """Portal page of an invoice."""
        return f"{self._portal}/ksa/einvoicing/invoices/{quote(unique_id, safe='')}"

    def device_url(self, device_id: str) -> str:
        """Portal page of an EGS device."""
        return f"{self._portal}/ksa/einvoicing/devices/{quote(device_id, safe='')}"

    @property
    def _portal(self) -> str:
        return self.portal_url or portal_url_for(self.base_url)

    def with_overrides(self, **overrides: Any) -> ClientSettings:
        """Return a copy with the non-``None`` overrides applied."""
        retry_fields = {k: v for k, v in overrides.items() if k in RetryPolicy.__dataclass_fields__}
        own = {k: v for k, v in overrides.items() if k not in retry_fields and v is not None}
        retry_fields = {k: v for k, v in retry_fields.items() if v is not None}
        if retry_fields:
            own["retry"] = replace(self.retry, **retry_fields)
        return replace(self, **own) if own else self


def portal_url_for(base_url: str) -> str:
    """Guess the web portal from the API host: ``api[-env].<domain>`` becomes ``app[-env].<domain>``.

    Any other host (a gateway, the emulator) is its own portal; the ``portal_url`` extra overrides.
    """
    parts = urlsplit(base_url)
    host = parts.netloc
    if host.startswith("api.") or host.startswith("api-"):
        host = "app" + host[3:]
    return f"{parts.scheme}://{host}"


def _extra(extra: dict[str, Any], name: str) -> Any:
    # Older forms stored custom fields as ``extra__<conn type>__<name>``.
    value = extra.get(name, extra.get(f"extra__cleartax__{name}"))
    return None if value == "" else value


def _text(extra: dict[str, Any], name: str) -> str | None:
    # A connection given as a URI reads ``vat=300000000000003`` back as a number.
    value = _extra(extra, name)
    return None if value is None else str(value)


def _number(extra: dict[str, Any], name: str, conn_id: str, *, integer: bool = False) -> Any:
    value = _extra(extra, name)
    if value is None:
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ClearTaxConfigError(
            f"connection {conn_id!r}: extra {name!r} must be a number, got {value!r}"
        ) from None
    if number < 0:
        raise ClearTaxConfigError(f"connection {conn_id!r}: extra {name!r} must not be negative")
    return number


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names this machine (plain HTTP is acceptable there)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(
    host: str | None, *, conn_id: str, port: int | None = None, allow_insecure_http: bool = False
) -> str:
    """Turn the connection's host field into the API base URL.

    An empty host means the sandbox; a bare host name gets ``https://``; a URL without a path gets
    the KSA API path. Plain ``http://`` is refused unless the host is loopback or explicitly allowed.
    """
    if not host or not host.strip():
        return SANDBOX_BASE_URL
    raw = host.strip()
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClearTaxConfigError(f"connection {conn_id!r}: base URL {host!r} is not an http(s) URL")
    if parts.scheme == "http" and not (allow_insecure_http or is_loopback(parts.hostname)):
        raise ClearTaxConfigError(
            f"connection {conn_id!r}: refusing plain http:// to {parts.hostname!r}, which would send the "
            "token unencrypted; use https://, or set the extra allow_insecure_http to true"
        )
    path = parts.path.rstrip("/") or API_PATH
    netloc = parts.netloc if parts.port or not port else f"{parts.netloc}:{port}"
    return f"{parts.scheme}://{netloc}{path}"


def settings_from_connection(conn: Connection, **overrides: Any) -> ClientSettings:
    """Build :class:`ClientSettings` from an Airflow connection, then apply non-``None`` overrides."""
    conn_id = conn.conn_id
    if not conn.password:
        raise ClearTaxConfigError(
            f"connection {conn_id!r} has no auth token: put the ClearTax API token in its password field"
        )
    if not (conn.password.isascii() and conn.password.isprintable()):
        # Checked here so that no encoding error, which quotes the offending text, ever sees it.
        raise ClearTaxConfigError(
            f"connection {conn_id!r}: the auth token has characters an HTTP header cannot carry "
            "(non-ASCII or control characters); paste it again from the ClearTax portal"
        )
    extra = conn.extra_dejson or {}
    insecure = str(_extra(extra, "allow_insecure_http") or "").lower() in _TRUE
    language = _text(extra, "language")
    if language is not None and language not in ("en", "ar"):
        raise ClearTaxConfigError(f"connection {conn_id!r}: language must be 'en' or 'ar', got {language!r}")
    retry = RetryPolicy(
        **{
            name: value
            for name, value in {
                "max_retries": _number(extra, "max_retries", conn_id, integer=True),
                "backoff_base": _number(extra, "backoff_base", conn_id),
                "backoff_cap": _number(extra, "backoff_cap", conn_id),
            }.items()
            if value is not None
        }
    )
    settings = ClientSettings(
        conn_id=conn_id,
        base_url=normalize_base_url(conn.host, conn_id=conn_id, port=conn.port, allow_insecure_http=insecure),
        token=conn.password,
        vat=_text(extra, "vat"),
        branch=_text(extra, "branch"),
        device_id=_text(extra, "device_id"),
        language=language,
        request_timeout=_number(extra, "request_timeout", conn_id) or DEFAULT_REQUEST_TIMEOUT,
        generate_timeout=_number(extra, "generate_timeout", conn_id) or DEFAULT_GENERATE_TIMEOUT,
        retry=retry,
        portal_url=(_extra(extra, "portal_url") or "").rstrip("/") or None,
    )
    return settings.with_overrides(**overrides)
