"""The durable ledger of a bulk submission: an append-only JSON Lines journal.

A ledger is a directory (or object-store prefix) of segment files named
``part-<nanoseconds>-<random>[-<n>].jsonl``, read in name order. Each line is one record; the
last record of a key is that invoice's state. On a local file system a run appends to its own
segment and fsyncs after every group of records; on an object store, where objects cannot be
appended to, every group becomes a new small object. Either way a record the engine waited for
survives a crash, and a line torn by a crash (only ever the last of a segment) is skipped.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LEDGER_VERSION = 1
SEGMENT_PREFIX = "part-"
SEGMENT_SUFFIX = ".jsonl"

#: Written (and made durable) before an invoice is sent: its outcome is unknown until a later record.
SENDING = "SENDING"
#: The call outlasted its retries with a transient error: the invoice may or may not have arrived.
RETRY = "RETRY"
#: Failed the client-side checks (or could not be built from its ERP row); nothing was sent.
INVALID = "INVALID"
#: The input line could not be read (bad JSON, bad UTF-8, not an object, a repeated identity).
ERROR = "ERROR"
#: ClearTax refused the request itself (HTTP 4xx); it did not store the invoice.
FAILED = "FAILED"
#: ClearTax answered 200 with errors but without a ZATCA status (e.g. NOT_GENERATED).
REJECTED = "REJECTED"

#: States that mean ClearTax holds the invoice (or refused it for good): a re-run skips them.
DONE_STATUSES = frozenset(
    {"CLEARED", "REPORTED", "ACCEPTED_WITH_WARNING", "PENDING", "NOT_CLEARED", "NOT_REPORTED", REJECTED}
)
#: States whose outcome is unknown: a re-run looks the invoice up before sending it again.
IN_FLIGHT_STATUSES = frozenset({SENDING, RETRY})
SUCCESS_STATUSES = frozenset({"CLEARED", "REPORTED", "ACCEPTED_WITH_WARNING", "PENDING"})


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 text with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _is_object_storage(path: Any) -> bool:
    # On Airflow 3.1 ObjectStoragePath is itself a pathlib.Path: tell it apart by its protocol.
    return hasattr(path, "protocol") and hasattr(path, "fs")


def _as_storage_path(path: Any) -> Any:
    if isinstance(path, (str, os.PathLike)) and not isinstance(path, Path):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(str(path))
    return path


def is_local(path: Any) -> bool:
    """Tell whether ``path`` (a str, Path or ObjectStoragePath) is on the local file system.

    :param path: the ledger location.
    """
    if _is_object_storage(path):
        return path.protocol in ("", "file", "local")
    return isinstance(path, Path)


class Ledger:
    """An append-only JSONL journal of invoice outcomes, safe against crashes.

    :param path: directory or object-store prefix of the ledger (str, Path or ObjectStoragePath).
    """

    def __init__(self, path: Any) -> None:
        self.location = _as_storage_path(path)
        self.local = is_local(self.location)
        self._segment_stem = f"{SEGMENT_PREFIX}{time.time_ns():020d}-{secrets.token_hex(4)}"
        self._fd: int | None = None
        self._sequence = 0

    def __repr__(self) -> str:
        return f"Ledger({self!s:s})"

    def __str__(self) -> str:
        return str(self.location)

    # ------------------------------------------------------------------------------- reading

    def _segments(self) -> list[Any]:
        if self.local:
            directory = Path(self._local_path())
            if not directory.is_dir():
                return []
            return sorted(
                (
                    p
                    for p in directory.iterdir()
                    if p.name.startswith(SEGMENT_PREFIX) and p.name.endswith(SEGMENT_SUFFIX)
                ),
                key=lambda p: p.name,
            )
        if not self.location.exists():
            return []
        return sorted(
            (
                p
                for p in self.location.iterdir()
                if p.name.startswith(SEGMENT_PREFIX) and p.name.endswith(SEGMENT_SUFFIX)
            ),
            key=lambda p: p.name,
        )

    def records(self) -> Iterator[dict[str, Any]]:
        """Yield every record in the order it was written, skipping lines torn by a crash."""
        for segment in self._segments():
            with segment.open("rb") as stream:
                for number, raw in enumerate(stream, start=1):
                    if not raw.strip():
                        continue
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        log.warning(
                            "Ledger %s: skipping unreadable line %s of %s (torn by a crash?)",
                            self,
                            number,
                            segment.name,
                        )
                        continue
                    if isinstance(record, dict) and "key" in record:
                        yield record

    def state(self) -> dict[str, dict[str, Any]]:
        """Return the last record of every key: each invoice's current state."""
        latest: dict[str, dict[str, Any]] = {}
        for record in self.records():
            latest[record["key"]] = record
        return latest

    # ------------------------------------------------------------------------------- writing

    def _local_path(self) -> str:
        return self.location.path if _is_object_storage(self.location) else str(self.location)

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write a group of records durably (fsync locally, one new object remotely) before returning.

        :param records: JSON-serialisable records, each with a ``key``.
        """
        data = b"".join(
            json.dumps({"v": LEDGER_VERSION, **record}, ensure_ascii=False, separators=(",", ":")).encode(
                "utf-8"
            )
            + b"\n"
            for record in records
        )
        if not data:
            return
        if self.local:
            self._append_local(data)
        else:
            self._sequence += 1
            self.location.mkdir(parents=True, exist_ok=True)
            (self.location / f"{self._segment_stem}-{self._sequence:06d}{SEGMENT_SUFFIX}").write_bytes(data)

    def _append_local(self, data: bytes) -> None:
        if self._fd is None:
            directory = self._local_path()
            os.makedirs(directory, exist_ok=True)
            self._fd = os.open(
                os.path.join(directory, self._segment_stem + SEGMENT_SUFFIX),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o644,
            )
            # The new segment's directory entry must survive a crash as well as its content.
            _fsync_directory(directory)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        """Close the local segment (records are already durable)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
