"""The emulator's servers (thread and child process) and its command line."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from airflow_provider_cleartax.emulator.cli import build_parser, config_from_args, config_to_argv, main
from airflow_provider_cleartax.emulator.config import (
    API_PREFIX,
    DEFAULT_DEVICE_ID,
    DEFAULT_RATE_LIMITS,
    DEFAULT_SELLER_NAME,
    DEFAULT_TOKEN,
    DEFAULT_VAT,
    EmulatorConfig,
    FaultSpec,
)
from airflow_provider_cleartax.emulator.server import EmulatorProcess, EmulatorServer
from tests.emulator.test_control import SPECIAL_TOKEN, make_invoice, unique_id

pytestmark = pytest.mark.integration

OTHER_VAT = "310000000000013"


def parse(*argv: str) -> EmulatorConfig:
    return config_from_args(build_parser().parse_args(argv))


def generate_invoice(base_url: str, token: str, number: str) -> httpx.Response:
    headers = {"X-Cleartax-Auth-Token": token, "vat": DEFAULT_VAT}
    body = {"DeviceId": DEFAULT_DEVICE_ID, "EInvoice": make_invoice(number)}
    return httpx.post(f"{base_url}/v2/einvoices/generate", json=body, headers=headers, timeout=10.0)


class TestEmulatorServer:
    def test_urls_and_connection_json(self) -> None:
        config = EmulatorConfig(
            tokens={"restricted": (OTHER_VAT,), DEFAULT_TOKEN: ()},
            vats={DEFAULT_VAT: DEFAULT_SELLER_NAME, OTHER_VAT: "Other"},
        )
        with EmulatorServer(config=config) as server:
            assert server.port > 0
            assert server.root_url == f"http://127.0.0.1:{server.port}"
            assert server.base_url == server.root_url + API_PREFIX
            assert httpx.get(server.admin_url + "/health").json() == {"status": "ok"}
            default = json.loads(server.airflow_conn_json())
            other = json.loads(server.airflow_conn_json(token=DEFAULT_TOKEN))
            env = server.airflow_conn_env("erp_cleartax", token=DEFAULT_TOKEN)
            base_url = server.base_url

        assert default == {
            "conn_type": "cleartax",
            "host": base_url,
            "password": "restricted",
            "extra": {"vat": OTHER_VAT},
        }
        assert other["extra"] == {"vat": DEFAULT_VAT, "device_id": DEFAULT_DEVICE_ID}
        assert list(env) == ["AIRFLOW_CONN_ERP_CLEARTAX"]
        assert json.loads(env["AIRFLOW_CONN_ERP_CLEARTAX"])["password"] == DEFAULT_TOKEN

    def test_lifecycle(self) -> None:
        server = EmulatorServer()
        with pytest.raises(RuntimeError, match="not running"):
            _ = server.base_url
        server.start()
        try:
            assert server.running
            with pytest.raises(RuntimeError, match="already started"):
                server.start()
            assert server.emulator is server.app.state.emulator
            assert server.control is server.app.state.control
        finally:
            server.stop()
        server.stop()
        assert not server.running

    def test_busy_port_raises(self) -> None:
        with EmulatorServer() as first, pytest.raises(OSError):
            EmulatorServer(port=first.port).start()

    def test_connection_json_is_read_by_airflow(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from airflow.sdk import BaseHook

        with EmulatorServer(config=EmulatorConfig(tokens={SPECIAL_TOKEN: ()})) as server:
            monkeypatch.setenv("AIRFLOW_CONN_CLEARTAX_EMULATOR", server.airflow_conn_json())
            connection = BaseHook.get_connection("cleartax_emulator")

            assert connection.password == SPECIAL_TOKEN
            assert connection.host == server.base_url
            assert connection.extra_dejson == {"vat": DEFAULT_VAT, "device_id": DEFAULT_DEVICE_ID}


class TestCommandLine:
    def test_defaults(self) -> None:
        assert parse() == EmulatorConfig()

    def test_options(self) -> None:
        config = parse(
            "--token", "a:b:c",
            "--token", f"limited:{OTHER_VAT}",
            "--admin-token", "boss",
            "--vat", f"{DEFAULT_VAT}:Main Seller",
            "--vat", OTHER_VAT,
            "--device", f"dev-1:{OTHER_VAT}",
            "--otp", "123456",
            "--async-report-delay", "0.5",
            "--pcsid-delay", "0",
            "--pcsid-fail",
            "--no-rate-limits",
            "--rate-limit", "email=2",
            "--fault", "generate:error_5xx=0.25",
            "--fault", "generate:latency_ms=10,jitter_ms=5",
            "--fault", "*:connection_reset=0.1",
            "--seed", "7",
            "--state", "state.db",
        )  # fmt: skip

        assert config == EmulatorConfig(
            tokens={"a:b:c": (), "limited": (OTHER_VAT,), "boss": ()},
            vats={DEFAULT_VAT: "Main Seller", OTHER_VAT: DEFAULT_SELLER_NAME},
            devices={"dev-1": OTHER_VAT},
            admin_tokens=("boss",),
            otps=("123456",),
            async_report_delay=0.5,
            pcsid_delay=0.0,
            pcsid_fail=True,
            rate_limits={"email": 2},
            faults={
                "generate": FaultSpec(error_5xx=0.25, latency_ms=10.0, jitter_ms=5.0),
                "*": FaultSpec(connection_reset=0.1),
            },
            seed=7,
            state_path="state.db",
        )

    def test_rate_limit_overrides_a_documented_one(self) -> None:
        assert parse("--rate-limit", "get_bulk=3").rate_limits == {**DEFAULT_RATE_LIMITS, "get_bulk": 3}

    def test_without_the_default_vat_the_default_device_goes(self) -> None:
        assert parse("--vat", OTHER_VAT).devices == {}

    @pytest.mark.parametrize(
        "argv",
        [
            ["--rate-limit", "nope=3"],
            ["--rate-limit", "email=0"],
            ["--fault", "generate:error_5xx=2"],
            ["--fault", "generate:boom=1"],
            ["--fault", "generate"],
            ["--vat", "123"],
            ["--token", f"t:{OTHER_VAT}"],
            ["--device", f"dev:{OTHER_VAT}"],
            ["--port", "x"],
        ],
    )
    def test_usage_errors_exit_2(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        assert main(argv) == 2
        assert "error" in capsys.readouterr().err

    def test_config_round_trips_through_argv(self) -> None:
        config = EmulatorConfig(
            tokens={"t1": (), "t2": (OTHER_VAT,)},
            vats={DEFAULT_VAT: "Seller A", OTHER_VAT: "Seller B"},
            devices={"d1": DEFAULT_VAT, "d2": OTHER_VAT},
            admin_tokens=("t1",),
            otps=("111111", "222222"),
            async_report_delay=0.25,
            pcsid_delay=1.5,
            pcsid_fail=True,
            rate_limits={"get_invoice": 5},
            faults={"generate": FaultSpec(timeout_after_processing=0.5, hold_seconds=3.0)},
            seed=99,
            state_path="x.db",
        )
        assert parse(*config_to_argv(config)) == config
        assert parse(*config_to_argv(EmulatorConfig())) == EmulatorConfig()

    def test_starts_prints_and_stops_on_sigterm(self, tmp_path: Path) -> None:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_provider_cleartax.emulator",
                "--port",
                "0",
                "--token",
                SPECIAL_TOKEN,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(4)]
            base_url = next(line.split()[-1] for line in lines if line.startswith("Base URL:"))
            export = next(line for line in lines if line.startswith("export "))
            name, _, value = shlex.split(export)[1].partition("=")
            connection = json.loads(value)

            assert name == "AIRFLOW_CONN_CLEARTAX_DEFAULT"
            assert connection["host"] == base_url
            assert connection["password"] == SPECIAL_TOKEN
            assert generate_invoice(base_url, SPECIAL_TOKEN, "INV-CLI").json()["InvoiceStatus"] == "CLEARED"
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr
        assert SPECIAL_TOKEN not in stderr

    def test_busy_port_exits_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        with EmulatorServer() as server:
            assert main(["--port", str(server.port)]) == 1
        assert "could not start" in capsys.readouterr().err


class TestEmulatorProcess:
    def test_runs_the_config_in_a_child_process(self) -> None:
        config = EmulatorConfig(
            seed=5, faults={"email": FaultSpec(latency_ms=1.0)}, rate_limits={"get_invoice": 2}
        )
        with EmulatorProcess(config=config) as child:
            assert child.pid != os.getpid()
            assert child.faults() == {"email": {**vars(FaultSpec()), "latency_ms": 1.0}}
            assert child.rate_limits() == {"get_invoice": 2}
            assert generate_invoice(child.base_url, DEFAULT_TOKEN, "INV-CHILD").status_code == 200
            assert child.submission_counts() == {unique_id("INV-CHILD"): 1}
        assert child.pid is None

    def test_state_file_survives_a_restart(self, tmp_path: Path) -> None:
        config = EmulatorConfig(state_path=str(tmp_path / "emulator.db"))
        with EmulatorProcess(config=config) as child:
            generate_invoice(child.base_url, DEFAULT_TOKEN, "INV-KEPT")
        with EmulatorProcess(config=config) as child:
            assert child.invoice_statuses() == {unique_id("INV-KEPT"): "CLEARED"}

    def test_startup_failure_is_reported(self) -> None:
        with pytest.raises(RuntimeError, match="did not start"):
            EmulatorProcess(extra_args=["--seed", "not-a-number"]).start()
