"""State of the ClearTax emulator: invoices, devices, PCSID activities and sent emails.

Everything lives in memory, where reads are served from; with a ``path`` every change is also
written through to a SQLite file and loaded back on start, so a restarted emulator loses nothing.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class InvoiceRecord:
    """One invoice as the emulator answered it, successful or rejected.

    :param unique_id: ``<vat>_<number>_<type code>_<issue year>``.
    :param vat: seller VAT.
    :param number: invoice number.
    :param type_code: ``InvoiceTypeCode.value`` (``388``, ``381``, ``383`` or ``386``).
    :param type_name: ``InvoiceTypeCode.name`` (7 digits), ``None`` when the request had none valid.
    :param issue_date: ``YYYY-MM-DD``.
    :param issue_time: ``HH:mm:ss`` or ``None``.
    :param method: ``ONLINE`` (ClearTax owns the ICV/PIH chain) or ``OFFLINE`` (client-signed XML).
    :param status: ``GENERATED`` or ``NOT_GENERATED``.
    :param invoice_status: ``InvoiceStatus`` as stored; ``PENDING`` turns ``REPORTED`` at ``report_due``.
    :param generated_at: epoch seconds of processing.
    :param device_id: device of the request.
    :param uuid: invoice UUID.
    :param icv: invoice counter value.
    :param pih: previous invoice hash.
    :param invoice_hash: SHA-256 of the XML, base64.
    :param qr_code: base64 TLV of the QR code.
    :param seller_vat: seller VAT from the invoice.
    :param buyer_vat: buyer VAT from the invoice.
    :param report_due: epoch seconds when a ``PENDING`` invoice counts as reported.
    :param errors: ``ErrorList`` of the answer.
    :param warnings: ``WarningList`` of the answer.
    :param einvoice: the E-Invoice object, kept to print the PDF.
    :param validation: ZATCA-shaped answer of an offline (client-signed) submission.
    :param branch: ``branch`` header of the request.
    :param xml: the invoice XML (kept in memory, stored as a BLOB).
    """

    unique_id: str
    vat: str
    number: str
    type_code: str
    type_name: str | None
    issue_date: str
    issue_time: str | None
    method: str
    status: str
    invoice_status: str
    generated_at: float
    device_id: str | None = None
    uuid: str | None = None
    icv: int | None = None
    pih: str | None = None
    invoice_hash: str | None = None
    qr_code: str | None = None
    seller_vat: str | None = None
    buyer_vat: str | None = None
    report_due: float | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    einvoice: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    branch: str | None = None
    xml: bytes | None = field(default=None, repr=False)

    def effective_status(self, now: float) -> str:
        """Return the ``InvoiceStatus`` at ``now``: a due ``PENDING`` invoice is ``REPORTED``.

        :param now: epoch seconds.
        """
        if self.invoice_status == "PENDING" and self.report_due is not None and now >= self.report_due:
            return "REPORTED"
        return self.invoice_status

    @property
    def succeeded(self) -> bool:
        """Tell whether the invoice was generated (and so blocks a re-post of its identity)."""
        return self.status == "GENERATED"


@dataclass
class DeviceRecord:
    """An EGS unit and the ICV/PIH chain ClearTax keeps for it.

    :param device_id: ClearTax ``DeviceId``.
    :param vat: VAT the device belongs to.
    :param created_at: epoch seconds of registration.
    :param egs_serial: ``EgsSerialNumber`` given at onboarding.
    :param csid_generated: whether the production CSID was requested (by ``generate-csid`` or
        ``register-device``).
    :param activity_id: PCSID activity that decides when the device can generate.
    :param icv: last invoice counter used.
    :param last_hash: hash of the last invoice, ``None`` before the first one.
    :param details: onboarding request details kept for inspection.
    """

    device_id: str
    vat: str
    created_at: float
    egs_serial: str | None = None
    csid_generated: bool = True
    activity_id: str | None = None
    icv: int = 0
    last_hash: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActivityRecord:
    """A PCSID generation activity whose outcome is fixed when it starts.

    :param activity_id: 24 hex characters.
    :param device_id: device it belongs to.
    :param vat: VAT of the device.
    :param created_at: epoch seconds of creation.
    :param due_at: epoch seconds when it leaves ``IN_PROGRESS``.
    :param fails: whether it ends ``FAILED`` instead of ``SUCCEEDED``.
    """

    activity_id: str
    device_id: str
    vat: str
    created_at: float
    due_at: float
    fails: bool

    def status(self, now: float) -> str:
        """Return ``IN_PROGRESS``, ``SUCCEEDED`` or ``FAILED`` at ``now``.

        :param now: epoch seconds.
        """
        if now < self.due_at:
            return "IN_PROGRESS"
        return "FAILED" if self.fails else "SUCCEEDED"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS invoices (unique_id TEXT PRIMARY KEY, data TEXT NOT NULL, xml BLOB);
CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities (activity_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emails (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (unique_id TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""


class Store:
    """Thread-safe state of one emulator, in memory with optional SQLite write-through.

    :param path: SQLite file; ``None`` keeps everything in memory only.
    :param devices: devices registered up front (``DeviceId`` -> VAT), present after every reset.
    :param now: epoch seconds used as registration time of those devices.
    """

    def __init__(self, *, path: str | None, devices: dict[str, str], now: float) -> None:
        self._lock = threading.RLock()
        self._initial_devices = dict(devices)
        self._invoices: dict[str, InvoiceRecord] = {}
        self._devices: dict[str, DeviceRecord] = {}
        self._activities: dict[str, ActivityRecord] = {}
        self._emails: list[dict[str, Any]] = []
        self._submissions: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._load(self._db)
        self._seed_devices(now)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store lock and group the SQLite writes made inside into one transaction."""
        with self._lock:
            if self._db is None:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def invoice(self, unique_id: str) -> InvoiceRecord | None:
        """Return the invoice stored under ``unique_id``.

        :param unique_id: ``<vat>_<number>_<type code>_<issue year>``.
        """
        return self._invoices.get(unique_id)

    def invoices(self) -> list[InvoiceRecord]:
        """Return every stored invoice."""
        with self._lock:
            return list(self._invoices.values())

    def put_invoice(self, record: InvoiceRecord) -> None:
        """Store ``record``, replacing any earlier answer for its identity.

        :param record: the invoice to store.
        """
        with self._lock:
            self._invoices[record.unique_id] = record
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO invoices (unique_id, data, xml) VALUES (?, ?, ?)",
                    (record.unique_id, _dump(record, exclude=("xml",)), record.xml),
                )

    def count_submission(self, unique_id: str) -> None:
        """Count one generate-type request for ``unique_id`` that reached business logic.

        :param unique_id: identity of the invoice in the request.
        """
        with self._lock:
            count = self._submissions.get(unique_id, 0) + 1
            self._submissions[unique_id] = count
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO submissions (unique_id, count) VALUES (?, ?)", (unique_id, count)
                )

    def submission_counts(self) -> dict[str, int]:
        """Return generate-type requests per invoice ``uniqueId``."""
        with self._lock:
            return dict(self._submissions)

    def device(self, device_id: str) -> DeviceRecord | None:
        """Return the device ``device_id``.

        :param device_id: ClearTax ``DeviceId``.
        """
        return self._devices.get(device_id)

    def device_by_serial(self, vat: str, egs_serial: str) -> DeviceRecord | None:
        """Return the device of ``vat`` registered with ``egs_serial``.

        :param vat: VAT of the device.
        :param egs_serial: ``EgsSerialNumber``.
        """
        with self._lock:
            for device in self._devices.values():
                if device.vat == vat and device.egs_serial == egs_serial:
                    return device
        return None

    def put_device(self, device: DeviceRecord) -> None:
        """Store ``device`` (new or changed).

        :param device: the device to store.
        """
        with self._lock:
            self._devices[device.device_id] = device
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO devices (device_id, data) VALUES (?, ?)",
                    (device.device_id, _dump(device)),
                )

    def activity(self, activity_id: str) -> ActivityRecord | None:
        """Return the PCSID activity ``activity_id``.

        :param activity_id: ``PcsidGenerationActivityId``.
        """
        return self._activities.get(activity_id)

    def put_activity(self, activity: ActivityRecord) -> None:
        """Store ``activity``.

        :param activity: the activity to store.
        """
        with self._lock:
            self._activities[activity.activity_id] = activity
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO activities (activity_id, data) VALUES (?, ?)",
                    (activity.activity_id, _dump(activity)),
                )

    def add_email(self, email: dict[str, Any]) -> None:
        """Append ``email`` to the log of sent emails.

        :param email: JSON-serialisable description of the email.
        """
        with self._lock:
            self._emails.append(email)
            if self._db is not None:
                self._db.execute("INSERT INTO emails (data) VALUES (?)", (json.dumps(email),))

    def emails(self) -> list[dict[str, Any]]:
        """Return the sent emails, oldest first."""
        with self._lock:
            return [dict(email) for email in self._emails]

    def reset(self, *, now: float) -> None:
        """Forget everything but the devices registered up front, whose chains restart.

        :param now: epoch seconds used as registration time of those devices.
        """
        with self._lock:
            self._invoices.clear()
            self._devices.clear()
            self._activities.clear()
            self._emails.clear()
            self._submissions.clear()
            if self._db is not None:
                self._db.executescript(
                    "DELETE FROM invoices; DELETE FROM devices; DELETE FROM activities;"
                    " DELETE FROM emails; DELETE FROM submissions;"
                )
            self._seed_devices(now)

    def close(self) -> None:
        """Close the SQLite file, if any."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _seed_devices(self, now: float) -> None:
        for device_id, vat in self._initial_devices.items():
            if device_id not in self._devices:
                self.put_device(DeviceRecord(device_id=device_id, vat=vat, created_at=now))

    def _load(self, db: sqlite3.Connection) -> None:
        for unique_id, data, xml in db.execute("SELECT unique_id, data, xml FROM invoices"):
            self._invoices[unique_id] = InvoiceRecord(**json.loads(data), xml=xml)
        for (data,) in db.execute("SELECT data FROM devices"):
            device = DeviceRecord(**json.loads(data))
            self._devices[device.device_id] = device
        for (data,) in db.execute("SELECT data FROM activities"):
            activity = ActivityRecord(**json.loads(data))
            self._activities[activity.activity_id] = activity
        self._emails = [json.loads(data) for (data,) in db.execute("SELECT data FROM emails ORDER BY seq")]
        self._submissions = dict(db.execute("SELECT unique_id, count FROM submissions"))


def _dump(record: Any, *, exclude: tuple[str, ...] = ()) -> str:
    return json.dumps(
        {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.name not in exclude},
        ensure_ascii=False,
        default=str,
    )
