"""Provider metadata read by Airflow's providers manager (no imports beyond the version)."""

from __future__ import annotations

from typing import Any

from airflow_provider_cleartax import __version__

SANDBOX_BASE_URL = "https://api-sandbox.cleartax.com/middle-east/ksa/einvoicing"


def _text_field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


def _number_field(label: str, description: str, *, minimum: float, integer: bool = False) -> dict[str, Any]:
    kind = "integer" if integer else "number"
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], "minimum": minimum},
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's registration for Airflow (connection type, form, modules, links)."""
    return {
        "package-name": "airflow-provider-cleartax",
        "name": "ClearTax",
        "description": "ClearTax KSA e-invoicing (ZATCA Phase 2): clearance, reporting, PDFs and onboarding.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "ClearTax KSA e-invoicing",
                "external-doc-url": "https://docs.cleartax.in/cleartax-docs/e-invoicing-ksa-api",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "ClearTax KSA e-invoicing",
                "python-modules": ["airflow_provider_cleartax.hooks.cleartax"],
            }
        ],
        "operators": [
            {
                "integration-name": "ClearTax KSA e-invoicing",
                "python-modules": [
                    "airflow_provider_cleartax.operators.cleartax",
                    "airflow_provider_cleartax.operators.bulk",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "ClearTax KSA e-invoicing",
                "python-modules": [
                    "airflow_provider_cleartax.sensors.cleartax",
                    "airflow_provider_cleartax.sensors.bulk",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "ClearTax KSA e-invoicing",
                "python-modules": [
                    "airflow_provider_cleartax.triggers.cleartax",
                    "airflow_provider_cleartax.triggers.bulk",
                ],
            }
        ],
        "extra-links": [
            "airflow_provider_cleartax.links.cleartax.ClearTaxInvoiceLink",
            "airflow_provider_cleartax.links.cleartax.ClearTaxDeviceLink",
        ],
        "connection-types": [
            {
                "connection-type": "cleartax",
                "hook-class-name": "airflow_provider_cleartax.hooks.cleartax.ClearTaxHook",
                "hook-name": "ClearTax KSA e-invoicing",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "Auth token"},
                    "placeholders": {
                        "host": SANDBOX_BASE_URL,
                        "password": "X-Cleartax-Auth-Token from Settings > Integrations > API Clients",
                        "vat": "300000000000003",
                        "request_timeout": "30",
                        "generate_timeout": "90",
                        "max_retries": "5",
                    },
                },
                "conn-fields": {
                    "vat": _text_field(
                        "VAT number",
                        "Seller VAT or group VAT (15 digits, starts and ends with 3); sent as the 'vat' header.",
                        pattern="^3[0-9]{13}3$",
                    ),
                    "branch": _text_field("Branch", "Optional branch or store name configured in ClearTax."),
                    "device_id": _text_field(
                        "Device id", "EGS device id used when an operator does not name one."
                    ),
                    "request_timeout": _number_field(
                        "Request timeout (s)", "Timeout of reads and lookups (default 30).", minimum=1
                    ),
                    "generate_timeout": _number_field(
                        "Generate timeout (s)",
                        "Timeout of invoice generation, which waits for ZATCA (default 90).",
                        minimum=1,
                    ),
                    "max_retries": _number_field(
                        "Max retries",
                        "Retries of 429, 5xx and network errors inside one call (default 5).",
                        minimum=0,
                        integer=True,
                    ),
                    "language": _text_field(
                        "Language",
                        "Language of ZATCA messages: en or ar (default en).",
                        enum=["en", "ar", None],
                    ),
                },
            }
        ],
    }
