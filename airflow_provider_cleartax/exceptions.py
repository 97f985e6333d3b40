"""Typed errors of the ClearTax provider.

Permanent errors (bad credentials, no rights, invalid request, rejected invoice) subclass
:class:`~airflow.sdk.exceptions.AirflowFailException`, so the task fails without burning its
retries. Transient errors (rate limit, server errors, timeouts) stay plain
:class:`~airflow.sdk.exceptions.AirflowException` and are retried by Airflow.

Every error carries the HTTP status, ClearTax's ``ErrorList``, the ``X-Request-Id`` and the
endpoint name. None ever carries the auth token or a request header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow < 3.1 layouts
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]

__all__ = [
    "ClearTaxAuthError",
    "ClearTaxConfigError",
    "ClearTaxError",
    "ClearTaxInvoiceInvalidError",
    "ClearTaxInvoiceRejectedError",
    "ClearTaxNotFoundError",
    "ClearTaxPermanentError",
    "ClearTaxPermissionError",
    "ClearTaxRateLimitError",
    "ClearTaxResponseError",
    "ClearTaxServerError",
    "ClearTaxTimeoutError",
    "ClearTaxTransportError",
    "ClearTaxValidationError",
]

#: How many ``ErrorList`` entries an exception message spells out (all stay on ``.errors``).
_ERRORS_IN_MESSAGE = 5


#: Longest text kept of one server-supplied message or path in an exception message.
_TEXT_IN_MESSAGE = 300


def _clip(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _TEXT_IN_MESSAGE else text[:_TEXT_IN_MESSAGE] + "…"


def _describe(entry: Mapping[str, Any]) -> str:
    code = entry.get("ErrorCode") or entry.get("code")
    text = _clip(entry.get("ErrorMessage") or entry.get("message") or "")
    path = entry.get("Path")
    described = f"[{_clip(code)}] {text}" if code else text
    return f"{described} at {_clip(path)}" if path else described


class ClearTaxError(AirflowException):
    """Base of every ClearTax error; transient unless a subclass says otherwise.

    :param message: what went wrong, in words (never containing secrets).
    :param endpoint: canonical endpoint name, e.g. ``generate`` or ``get_invoice``.
    :param status: HTTP status, or ``None`` when no answer came.
    :param errors: ClearTax's ``ErrorList`` (or ZATCA's error messages).
    :param request_id: the ``X-Request-Id`` sent with the request.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]
        self.request_id = request_id
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"ClearTax {self.endpoint or 'request'}"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        head = ": ".join([" ".join(parts), self.message])
        if self.errors:
            shown = "; ".join(_describe(e) for e in self.errors[:_ERRORS_IN_MESSAGE])
            more = len(self.errors) - _ERRORS_IN_MESSAGE
            head += f" — {shown}" + (f" (+{more} more)" if more > 0 else "")
        if self.request_id:
            head += f" (request id {self.request_id})"
        return head

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not pickle by default; Airflow ships exceptions between processes.
        return (_rebuild, (type(self), self.__dict__.copy()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._render()!r})"


def _rebuild(cls: type[ClearTaxError], state: dict[str, Any]) -> ClearTaxError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._render())
    return error


class ClearTaxPermanentError(ClearTaxError, AirflowFailException):
    """An error that retrying cannot fix: the task fails at once."""


class ClearTaxConfigError(ClearTaxPermanentError):
    """The connection or the call is misconfigured (no token, no VAT, insecure URL, ...)."""


class ClearTaxAuthError(ClearTaxPermanentError):
    """HTTP 401: the token is missing, wrong, expired or revoked."""

    def __init__(self, message: str = "", *, conn_id: str | None = None, **kwargs: Any) -> None:
        self.conn_id = conn_id
        if not message:
            message = (
                f"authentication failed for connection {conn_id!r}. Generate a new API token in the "
                "ClearTax portal (Settings > Integrations > API Clients), or check that the current one "
                "was not revoked, and put it in the connection's password."
            )
        super().__init__(message, **kwargs)


class ClearTaxPermissionError(ClearTaxPermanentError):
    """HTTP 403: the token is valid but its user has no rights on this VAT (or is not an Admin)."""


class ClearTaxValidationError(ClearTaxPermanentError):
    """HTTP 400 (or another client error): ClearTax refused the request as malformed."""


class ClearTaxInvoiceInvalidError(ClearTaxValidationError):
    """The invoice failed the client-side checks of ClearTax's rules; nothing was sent.

    ``errors`` holds one ``{ErrorCode, ErrorMessage, Path}`` entry per problem.
    """


class ClearTaxNotFoundError(ClearTaxPermanentError):
    """HTTP 404: the invoice (or activity) does not exist."""


class ClearTaxInvoiceRejectedError(ClearTaxPermanentError):
    """HTTP 200 carrying a business rejection: ``ErrorList`` entries or NOT_CLEARED / NOT_REPORTED.

    :param result: the parsed answer, kept so callers can record it.
    """

    def __init__(self, message: str, *, result: Any = None, **kwargs: Any) -> None:
        self.result = result
        super().__init__(message, **kwargs)


class ClearTaxRateLimitError(ClearTaxError):
    """HTTP 429 that outlasted the in-call retries.

    :param retry_after: seconds the server asked to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ClearTaxServerError(ClearTaxError):
    """HTTP 5xx that outlasted the in-call retries."""


class ClearTaxResponseError(ClearTaxError):
    """The answer could not be understood (not JSON, truncated, wrong shape, too large).

    :param body_excerpt: the first bytes of the body, for diagnosis.
    """

    def __init__(self, message: str, *, body_excerpt: str = "", **kwargs: Any) -> None:
        self.body_excerpt = body_excerpt
        super().__init__(message + (f"; body starts {body_excerpt!r}" if body_excerpt else ""), **kwargs)


class ClearTaxTransportError(ClearTaxError):
    """No usable answer arrived: the connection failed or was cut."""


class ClearTaxTimeoutError(ClearTaxTransportError):
    """The request timed out and could not be safely completed."""
