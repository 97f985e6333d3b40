"""What is wrong with an invoice: one ``InvoiceProblem`` per violation, raised together as an error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class InvoiceProblem:
    """One rule an invoice breaks.

    :param invoice_number: the invoice's number (empty when the invoice has none).
    :param path: where the problem is, e.g. ``EInvoice.InvoiceLine[2].Item.ClassifiedTaxCategory.Percent``
        (list indexes count from 0), or an ERP row key such as ``lines[0].quantity``.
    :param message: what is wrong, for a person to read.
    :param code: a stable machine-readable code, e.g. ``ISSUE_DATE_FUTURE`` or ``SCHEMA_MISSING``.
    """

    invoice_number: str
    path: str
    message: str
    code: str

    def __str__(self) -> str:
        return f"{self.invoice_number or '(no invoice number)'}: {self.path}: {self.message}"


class InvoiceValidationError(ValueError):
    """An invoice (or the ERP row it was built from) breaks one or more rules."""

    def __init__(self, *, invoice_number: str, problems: Sequence[InvoiceProblem]) -> None:
        """Collect the problems of one invoice.

        :param invoice_number: the invoice's number (empty when unknown).
        :param problems: every problem found, at least one.
        """
        self.invoice_number = invoice_number
        self.problems: tuple[InvoiceProblem, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem.path}: {problem.message}" for problem in self.problems)
        count = len(self.problems)
        super().__init__(
            f"invoice {invoice_number or '(no invoice number)'} has {count} "
            f"problem{'s' if count != 1 else ''}:\n{lines}"
        )
