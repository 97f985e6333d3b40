"""Command line of the ClearTax emulator (``cleartax-emulator``, or ``python -m`` on the emulator package)."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import re
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from airflow_provider_cleartax.emulator.config import (
    DEFAULT_SELLER_NAME,
    ENDPOINTS,
    EmulatorConfig,
    FaultSpec,
)

_VAT_PATTERN = re.compile(r"^3\d{13}3$")
_FAULT_DEFAULTS = dataclasses.asdict(FaultSpec())


def _vat(value: str) -> str:
    if not _VAT_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a VAT number (15 digits, first and last 3)")
    return value


def _token(value: str) -> tuple[str, tuple[str, ...]]:
    # Tokens may contain ':', so only a trailing list of VAT numbers counts as a restriction.
    head, sep, tail = value.rpartition(":")
    if sep and head and all(_VAT_PATTERN.match(vat) for vat in tail.split(",")):
        return head, tuple(tail.split(","))
    if not value:
        raise argparse.ArgumentTypeError("a token must not be empty")
    return value, ()


def _seller(value: str) -> tuple[str, str]:
    vat, _, name = value.partition(":")
    return _vat(vat), name.strip() or DEFAULT_SELLER_NAME


def _device(value: str) -> tuple[str, str]:
    device_id, sep, vat = value.rpartition(":")
    if not sep or not device_id:
        raise argparse.ArgumentTypeError(f"{value!r} is not DEVICE_ID:VAT")
    return device_id, _vat(vat)


def _rate_limit(value: str) -> tuple[str, int]:
    endpoint, sep, number = value.partition("=")
    if not sep or endpoint not in ENDPOINTS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not ENDPOINT=N with ENDPOINT one of {', '.join(ENDPOINTS)}"
        )
    try:
        limit = int(number)
    except ValueError:
        limit = 0
    if limit < 1:
        raise argparse.ArgumentTypeError(f"rate limit {number!r} is not a positive integer")
    return endpoint, limit


def _fault(value: str) -> tuple[str, dict[str, float]]:
    from airflow_provider_cleartax.emulator.control import fault_spec_from_mapping, validate_fault_endpoint

    endpoint, sep, settings = value.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{value!r} is not ENDPOINT:key=value,key=value")
    fields: dict[str, float] = {}
    try:
        validate_fault_endpoint(endpoint)
        for item in filter(None, settings.split(",")):
            key, eq, number = item.partition("=")
            if not eq:
                raise ValueError(f"{item!r} is not key=value")
            fields[key.strip()] = float(number)
        fault_spec_from_mapping(fields)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return endpoint, fields


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the command line."""
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="cleartax-emulator",
        description="Local emulator of ClearTax's KSA e-invoicing API, with faults and an admin API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8080, help="TCP port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--token",
        action="append",
        type=_token,
        metavar="TOKEN[:VAT,VAT]",
        help="accepted auth token, optionally restricted to some VATs (repeatable; "
        f"default: {', '.join(defaults.tokens)})",
    )
    parser.add_argument(
        "--admin-token",
        action="append",
        metavar="TOKEN",
        help="token allowed to call the onboarding endpoints (repeatable; default: every token)",
    )
    parser.add_argument(
        "--vat",
        action="append",
        type=_seller,
        metavar="VAT[:SELLER NAME]",
        help=f"seller VAT known to the account (repeatable; default: {', '.join(defaults.vats)})",
    )
    parser.add_argument(
        "--device",
        action="append",
        type=_device,
        metavar="DEVICE_ID:VAT",
        help="device registered up front (repeatable; default: the built-in device, if its VAT is known)",
    )
    parser.add_argument(
        "--otp",
        action="append",
        metavar="OTP",
        help="OTP accepted by onboarding (repeatable; default: any 6 digits)",
    )
    parser.add_argument(
        "--async-report-delay",
        type=_non_negative,
        default=defaults.async_report_delay,
        metavar="SECONDS",
        help="seconds before an async invoice leaves PENDING (default: %(default)s)",
    )
    parser.add_argument(
        "--pcsid-delay",
        type=_non_negative,
        default=defaults.pcsid_delay,
        metavar="SECONDS",
        help="seconds before a PCSID activity leaves IN_PROGRESS (default: %(default)s)",
    )
    parser.add_argument("--pcsid-fail", action="store_true", help="make PCSID activities end FAILED")
    parser.add_argument(
        "--rate-limit",
        action="append",
        type=_rate_limit,
        metavar="ENDPOINT=N",
        help="requests per token per minute for one endpoint (repeatable; default: the documented limits)",
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="drop the documented limits (--rate-limit ones still apply)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=_fault,
        metavar="ENDPOINT:KEY=VALUE,...",
        help="inject faults into an endpoint or '*' (repeatable), keys: " + ", ".join(_FAULT_DEFAULTS),
    )
    parser.add_argument("--seed", type=int, help="seed of the fault RNG, to replay a failure pattern")
    parser.add_argument("--state", metavar="FILE", help="SQLite file keeping the state across restarts")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Turn parsed options into an :class:`EmulatorConfig`, checking that they fit together.

    :param args: the result of :func:`build_parser`'s ``parse_args``.
    """
    defaults = EmulatorConfig()
    vats = dict(args.vat) if args.vat else defaults.vats
    tokens = dict(args.token) if args.token else defaults.tokens
    for admin_token in args.admin_token or ():
        tokens.setdefault(admin_token, ())
    for token_vats in tokens.values():
        unknown = [vat for vat in token_vats if vat not in vats]
        if unknown:
            raise ValueError(f"token restricted to unknown VAT(s) {', '.join(unknown)}; add them with --vat")
    if args.device:
        devices = dict(args.device)
        unknown = sorted({vat for vat in devices.values() if vat not in vats})
        if unknown:
            raise ValueError(
                f"device registered for unknown VAT(s) {', '.join(unknown)}; add them with --vat"
            )
    else:
        devices = {device: vat for device, vat in defaults.devices.items() if vat in vats}
    rate_limits = {} if args.no_rate_limits else dict(defaults.rate_limits)
    rate_limits.update(args.rate_limit or ())
    fault_fields: dict[str, dict[str, float]] = {}
    for endpoint, fields in args.fault or ():
        fault_fields.setdefault(endpoint, {}).update(fields)
    return EmulatorConfig(
        tokens=tokens,
        vats=vats,
        devices=devices,
        admin_tokens=tuple(args.admin_token) if args.admin_token else None,
        otps=tuple(args.otp) if args.otp else None,
        async_report_delay=args.async_report_delay,
        pcsid_delay=args.pcsid_delay,
        pcsid_fail=args.pcsid_fail,
        rate_limits=rate_limits,
        faults={endpoint: FaultSpec(**fields) for endpoint, fields in fault_fields.items()},
        seed=args.seed,
        state_path=args.state,
    )


def config_to_argv(config: EmulatorConfig) -> list[str]:
    """Return command-line options that reproduce ``config`` (host and port not included).

    Not expressible, and therefore rejected: an empty token set, an empty admin-token set and
    an empty device set while the built-in device's VAT is known.

    :param config: the settings to translate.
    """
    defaults = EmulatorConfig()
    if not config.tokens or config.admin_tokens == ():
        raise ValueError("a config without tokens or admin tokens cannot be given on the command line")
    if not config.devices and any(vat in config.vats for vat in defaults.devices.values()):
        raise ValueError(
            "a config without devices cannot be given on the command line while the default VAT is known"
        )
    argv: list[str] = []
    for token, vats in config.tokens.items():
        argv += ["--token", f"{token}:{','.join(vats)}" if vats else token]
    for token in config.admin_tokens or ():
        argv += ["--admin-token", token]
    for vat, name in config.vats.items():
        argv += ["--vat", f"{vat}:{name}"]
    for device, vat in config.devices.items():
        argv += ["--device", f"{device}:{vat}"]
    for otp in config.otps or ():
        argv += ["--otp", otp]
    argv += [
        "--async-report-delay",
        repr(config.async_report_delay),
        "--pcsid-delay",
        repr(config.pcsid_delay),
    ]
    if config.pcsid_fail:
        argv.append("--pcsid-fail")
    if config.rate_limits != defaults.rate_limits:
        argv.append("--no-rate-limits")
        for endpoint, limit in config.rate_limits.items():
            argv += ["--rate-limit", f"{endpoint}={limit}"]
    for endpoint, spec in config.faults.items():
        changed = {
            key: value for key, value in dataclasses.asdict(spec).items() if value != _FAULT_DEFAULTS[key]
        }
        argv += ["--fault", f"{endpoint}:" + ",".join(f"{key}={value!r}" for key, value in changed.items())]
    if config.seed is not None:
        argv += ["--seed", str(config.seed)]
    if config.state_path is not None:
        argv += ["--state", config.state_path]
    return argv


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM.

    :param argv: command-line options; defaults to ``sys.argv[1:]``.
    :return: the process exit code.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            config = config_from_args(args)
        except ValueError as exc:
            parser.error(str(exc))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2

    from airflow_provider_cleartax.emulator.server import ADMIN_URL_LINE, BASE_URL_LINE, EmulatorServer

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not _is_loopback(args.host):
        print(
            f"warning: listening on {args.host}; the admin API has no authentication",
            file=sys.stderr,
            flush=True,
        )
    stop_requested = threading.Event()
    previous_handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous_handlers[signum] = signal.signal(signum, lambda *_: stop_requested.set())
    server = EmulatorServer(config=config, host=args.host, port=args.port)
    try:
        try:
            server.start()
        except (OSError, RuntimeError) as exc:
            print(f"error: the emulator could not start on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        export_value = shlex.quote(server.airflow_conn_json())
        print("ClearTax KSA emulator running; stop it with Ctrl+C")
        print(f"{BASE_URL_LINE} {server.base_url}")
        print(f"{ADMIN_URL_LINE} {server.admin_url}")
        print(f"export AIRFLOW_CONN_CLEARTAX_DEFAULT={export_value}", flush=True)
        while not stop_requested.wait(0.5):
            if not server.running:
                print("error: the emulator stopped unexpectedly", file=sys.stderr)
                return 1
        return 0
    finally:
        server.stop()
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
