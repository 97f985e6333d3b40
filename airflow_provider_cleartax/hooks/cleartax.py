"""Hook for ClearTax's KSA e-invoicing API."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import httpx

from airflow_provider_cleartax.client import api
from airflow_provider_cleartax.client.api import Session
from airflow_provider_cleartax.client.pipeline import Operation, run_async, run_sync
from airflow_provider_cleartax.client.settings import ClientSettings, settings_from_connection
from airflow_provider_cleartax.exceptions import (
    ClearTaxAuthError,
    ClearTaxConfigError,
    ClearTaxError,
    ClearTaxNotFoundError,
    ClearTaxPermissionError,
)

try:
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - Airflow < 3.1 layouts
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

if TYPE_CHECKING:
    from types import TracebackType

P = ParamSpec("P")
T = TypeVar("T")

# One pool per hook; ClearTax allows 1000 requests a minute on most endpoints, far below this.
_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32, keepalive_expiry=30)


def client_options(limits: httpx.Limits = _LIMITS) -> dict[str, Any]:
    """Options of every HTTP client the provider opens.

    TLS is verified and redirects are never followed, so the token cannot be carried to another
    host; proxy and CA settings of the environment (``HTTPS_PROXY``, ``SSL_CERT_FILE``) apply.
    """
    return {"limits": limits, "follow_redirects": False, "verify": True}


def _method_signature(operation: Callable[..., Any]) -> inspect.Signature:
    """Show the operation's parameters after ``self``, and its result rather than the generator type."""
    signature = inspect.signature(operation)
    session, *params = signature.parameters.values()
    result = str(signature.return_annotation)
    if result.startswith("Operation[") and result.endswith("]"):
        result = result[len("Operation[") : -1]
    self_param = session.replace(name="self", annotation=inspect.Parameter.empty)
    return signature.replace(parameters=[self_param, *params], return_annotation=result)


def _sync(
    operation: Callable[Concatenate[Session, P], Operation[T]],
) -> Callable[Concatenate[ClearTaxHook, P], T]:
    @functools.wraps(operation)
    def method(self: ClearTaxHook, *args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(self.client, operation(self.session, *args, **kwargs))

    method.__signature__ = _method_signature(operation)  # type: ignore[attr-defined]
    return method


def _async(
    operation: Callable[Concatenate[Session, P], Operation[T]],
) -> Callable[Concatenate[ClearTaxHook, P], Any]:
    @functools.wraps(operation)
    async def method(self: ClearTaxHook, *args: P.args, **kwargs: P.kwargs) -> T:
        session = await self.asession()
        return await run_async(self.async_client, operation(session, *args, **kwargs))

    method.__doc__ = f"Async variant of :meth:`{operation.__name__}` (for triggers)."
    method.__signature__ = _method_signature(operation)  # type: ignore[attr-defined]
    return method


class ClearTaxHook(BaseHook):
    """Call ClearTax's KSA e-invoicing API with the token of an Airflow connection.

    The token is the connection's password and is sent only as ``X-Cleartax-Auth-Token``. The
    connection's host is the API base URL (empty: the sandbox); its extras give the default
    ``vat``, ``branch``, ``device_id``, ``language``, ``request_timeout``, ``generate_timeout``
    and ``max_retries``. Every endpoint has a blocking method (``get_invoice``) and an async one
    (``aget_invoice``); both run the same request pipeline and reuse one connection pool each.

    :param cleartax_conn_id: Airflow connection id.
    :param vat: seller VAT overriding the connection's.
    :param branch: branch overriding the connection's.
    :param device_id: EGS device id overriding the connection's.
    :param request_timeout: seconds for reads, overriding the connection's.
    :param generate_timeout: seconds for invoice generation, overriding the connection's.
    :param max_retries: in-call retries of transient failures, overriding the connection's.
    :param backoff_base: first backoff ceiling in seconds (doubles per retry, full jitter).
    :param backoff_cap: largest backoff ceiling in seconds.
    """

    conn_name_attr = "cleartax_conn_id"
    default_conn_name = "cleartax_default"
    conn_type = "cleartax"
    hook_name = "ClearTax KSA e-invoicing"

    def __init__(
        self,
        *,
        cleartax_conn_id: str = default_conn_name,
        vat: str | None = None,
        branch: str | None = None,
        device_id: str | None = None,
        request_timeout: float | None = None,
        generate_timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        logger_name: str | None = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.cleartax_conn_id = cleartax_conn_id
        self._overrides: dict[str, Any] = {
            "vat": vat,
            "branch": branch,
            "device_id": device_id,
            "request_timeout": request_timeout,
            "generate_timeout": generate_timeout,
            "max_retries": max_retries,
            "backoff_base": backoff_base,
            "backoff_cap": backoff_cap,
        }
        self._settings: ClientSettings | None = None
        self._async_client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cleartax_conn_id={self.cleartax_conn_id!r})"

    # ---------------------------------------------------------------- settings and clients

    @property
    def settings(self) -> ClientSettings:
        """Settings resolved from the connection (fetched once per hook)."""
        if self._settings is None:
            self._settings = settings_from_connection(
                self.get_connection(self.cleartax_conn_id), **self._overrides
            )
        return self._settings

    async def aget_settings(self) -> ClientSettings:
        """Resolve the settings without blocking the event loop (for triggers)."""
        if self._settings is None:
            connection = await self.aget_connection(self.cleartax_conn_id)
            self._settings = settings_from_connection(connection, **self._overrides)
        return self._settings

    @property
    def session(self) -> Session:
        """What the endpoint operations need: settings and this hook's logger."""
        return Session(self.settings, self.log)

    async def asession(self) -> Session:
        """Async variant of :attr:`session`."""
        return Session(await self.aget_settings(), self.log)

    @cached_property
    def client(self) -> httpx.Client:
        """The blocking HTTP client, one pool for all calls of this hook."""
        return httpx.Client(**client_options())

    @property
    def async_client(self) -> httpx.AsyncClient:
        """The async HTTP client, one pool for all calls of this hook."""
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(**client_options())
        return self._async_client

    def get_conn(self) -> httpx.Client:
        """Return the blocking HTTP client."""
        return self.client

    def close(self) -> None:
        """Close the blocking client's connections."""
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()

    async def aclose(self) -> None:
        """Close the async client's connections."""
        if self._async_client is not None:
            client, self._async_client = self._async_client, None
            await client.aclose()

    def __enter__(self) -> ClearTaxHook:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- endpoints

    generate_invoice = _sync(api.generate_invoice)
    agenerate_invoice = _async(api.generate_invoice)
    generate_invoice_async = _sync(api.generate_invoice_async)
    agenerate_invoice_async = _async(api.generate_invoice_async)
    generate_invoice_from_xml = _sync(api.generate_invoice_from_xml)
    agenerate_invoice_from_xml = _async(api.generate_invoice_from_xml)
    send_signed_xml = _sync(api.send_signed_xml)
    asend_signed_xml = _async(api.send_signed_xml)
    get_invoice = _sync(api.get_invoice)
    aget_invoice = _async(api.get_invoice)
    get_bulk_status = _sync(api.get_bulk_status)
    aget_bulk_status = _async(api.get_bulk_status)
    download_invoice_pdf = _sync(api.download_invoice_pdf)
    adownload_invoice_pdf = _async(api.download_invoice_pdf)
    embed_xml_in_pdf = _sync(api.embed_xml_in_pdf)
    aembed_xml_in_pdf = _async(api.embed_xml_in_pdf)
    email_invoice = _sync(api.email_invoice)
    aemail_invoice = _async(api.email_invoice)
    register_device = _sync(api.register_device)
    aregister_device = _async(api.register_device)
    generate_csr = _sync(api.generate_csr)
    agenerate_csr = _async(api.generate_csr)
    generate_csid = _sync(api.generate_csid)
    agenerate_csid = _async(api.generate_csid)
    get_pcsid_status = _sync(api.get_pcsid_status)
    aget_pcsid_status = _async(api.get_pcsid_status)

    # ---------------------------------------------------------------- connection test

    def test_connection(self) -> tuple[bool, str]:
        """Check the token with one cheap authenticated call (a Get invoice of an unknown invoice)."""
        try:
            settings = self.settings.with_overrides(max_retries=0, request_timeout=10.0)
            if not settings.vat:
                return False, "Set the connection's VAT number: every ClearTax call needs it."
            probe = api.get_invoice(
                Session(settings, self.log),
                unique_id=f"{settings.vat}_AIRFLOW-CONNECTION-TEST_388_{date.today().year}",
            )
            run_sync(self.client, probe)
        except ClearTaxNotFoundError:
            pass  # the token was accepted; the probe invoice simply does not exist
        except ClearTaxAuthError:
            return False, (
                "ClearTax rejected the token (HTTP 401): generate a new one in the ClearTax portal "
                "(Settings > Integrations > API Clients) or check it was not revoked."
            )
        except ClearTaxPermissionError:
            return False, "The token is valid but its user has no rights on this VAT number (HTTP 403)."
        except ClearTaxConfigError as error:
            return False, error.message
        except ClearTaxError as error:
            return False, f"ClearTax could not be reached: {error}"
        finally:
            self.close()
        return True, f"Connected to ClearTax at {settings.base_url} as VAT {settings.vat}."
