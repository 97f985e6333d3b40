"""Settings of the ClearTax KSA emulator: who may call it, how it paces and how it misbehaves."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Path prefix of every ClearTax KSA endpoint, as on the real hosts.
API_PREFIX = "/middle-east/ksa/einvoicing"
#: Reserved prefix of the emulator's own control API (never part of ClearTax's API).
ADMIN_PREFIX = "/__emulator__"

DEFAULT_TOKEN = "emulator-token"
DEFAULT_VAT = "300000000000003"
DEFAULT_DEVICE_ID = "7b5a5a8e-8f5c-4c0e-9d7e-000000000001"
DEFAULT_SELLER_NAME = "Emulator Trading Co."

#: Canonical endpoint names, shared by routes, rate limits, faults and the request log.
ENDPOINTS: tuple[str, ...] = (
    "generate",
    "generate_async",
    "generate_with_file",
    "generate_with_file_offline",
    "get_invoice",
    "get_bulk",
    "print_pdf",
    "embedded_pdf",
    "email",
    "register_device",
    "generate_csr",
    "generate_csid",
    "pcsid_status",
)

#: Documented per-minute limits (per token); onboarding endpoints have none.
DEFAULT_RATE_LIMITS: dict[str, int] = {
    "generate": 1000,
    "generate_async": 1000,
    "generate_with_file": 1000,
    "generate_with_file_offline": 1000,
    "get_invoice": 1000,
    "get_bulk": 10,
    "print_pdf": 1000,
    "embedded_pdf": 150,
    "email": 10,
}


@dataclass
class FaultSpec:
    """Misbehaviour injected into one endpoint (or all, under the key ``"*"``).

    Probabilities are independent draws per request from the emulator's seeded RNG.

    :param error_5xx: probability of answering 500/502/503 without processing the request.
    :param rate_limit: probability of answering 429 (with ``Retry-After``) without processing.
    :param timeout_after_processing: probability of processing and storing the request, then
        holding the answer for ``hold_seconds`` so the client times out first.
    :param connection_reset: probability of closing the connection without an answer.
    :param latency_ms: fixed delay added before answering.
    :param jitter_ms: uniform random extra delay in ``[0, jitter_ms]``.
    :param hold_seconds: how long a ``timeout_after_processing`` answer is held back.
    """

    error_5xx: float = 0.0
    rate_limit: float = 0.0
    timeout_after_processing: float = 0.0
    connection_reset: float = 0.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    hold_seconds: float = 30.0


@dataclass
class EmulatorConfig:
    """Everything the emulator is started with; the admin API can change faults and limits later.

    :param tokens: accepted ``X-Cleartax-Auth-Token`` values, each mapped to the VATs it may use
        (an empty tuple means every VAT in ``vats``).
    :param vats: seller VAT numbers known to the account, each mapped to its seller name.
    :param devices: device ids registered up front, each mapped to its VAT.
    :param admin_tokens: tokens allowed to call the onboarding endpoints (ClearTax: Admin users);
        ``None`` means every token.
    :param otps: OTPs accepted by onboarding; ``None`` accepts any 6-digit OTP.
    :param async_report_delay: seconds before an async (PENDING) invoice becomes REPORTED.
    :param pcsid_delay: seconds before a PCSID activity leaves IN_PROGRESS.
    :param pcsid_fail: whether PCSID activities end FAILED (answered with HTTP 500) instead of SUCCEEDED.
    :param rate_limits: per-endpoint limits per token per minute (sliding window); empty = off.
    :param faults: per-endpoint :class:`FaultSpec`, key ``"*"`` for all endpoints.
    :param seed: seed of the RNG behind faults and jitter, so a failure pattern can be replayed.
    :param state_path: SQLite file that keeps the state across restarts; ``None`` = memory only.
    """

    tokens: dict[str, tuple[str, ...]] = field(default_factory=lambda: {DEFAULT_TOKEN: ()}, repr=False)
    vats: dict[str, str] = field(default_factory=lambda: {DEFAULT_VAT: DEFAULT_SELLER_NAME})
    devices: dict[str, str] = field(default_factory=lambda: {DEFAULT_DEVICE_ID: DEFAULT_VAT})
    admin_tokens: tuple[str, ...] | None = None
    otps: tuple[str, ...] | None = None
    async_report_delay: float = 2.0
    pcsid_delay: float = 2.0
    pcsid_fail: bool = False
    rate_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    faults: dict[str, FaultSpec] = field(default_factory=dict)
    seed: int | None = None
    state_path: str | None = None
