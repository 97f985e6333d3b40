"""Stream the input of a bulk submission one item at a time: JSON Lines from a path or URL, or a list."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceItem:
    """One input item: its 1-based line (or list position) and either its object or why it is unusable.

    :param line: line number in the file, or 1-based position in a list.
    :param data: the decoded JSON object (an E-Invoice, a generate body or an ERP row).
    :param error: why the line could not be used, when ``data`` is ``None``.
    """

    line: int
    data: dict[str, Any] | None = None
    error: str | None = None


def _refuse_constant(name: str) -> Any:
    # Python reads NaN and Infinity, but they are not JSON and no request body could carry them.
    raise ValueError(f"{name} is not a JSON value")


def _decode(raw: bytes | str, line: int) -> SourceItem:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return SourceItem(line, error=f"not valid UTF-8 (byte {error.start + 1} of the line)")
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        return SourceItem(line, error=f"not valid JSON: {error}")
    except RecursionError:
        return SourceItem(line, error="not valid JSON: nested too deeply")
    if not isinstance(value, dict):
        return SourceItem(line, error=f"expected a JSON object, got {type(value).__name__}")
    return SourceItem(line, data=value)


def is_path_like(source: Any) -> bool:
    """Tell whether ``source`` names a file (str path or URL, Path, ObjectStoragePath) rather than holding items.

    :param source: the input of a bulk submission.
    """
    return isinstance(source, (str, os.PathLike)) or (hasattr(source, "open") and hasattr(source, "protocol"))


def read_source(source: Any) -> Iterator[SourceItem]:
    """Yield the items of ``source`` lazily, never holding more than the current line.

    :param source: a local path, URL or ObjectStoragePath of a JSON Lines file; or an iterable of
        objects (or of JSON texts of objects), e.g. a list from XCom.
    """
    if is_path_like(source):
        yield from _read_lines(source)
        return
    if isinstance(source, Mapping):
        raise TypeError("the input must be a path or a list of objects, not a single object")
    for position, item in enumerate(_iterable(source), start=1):
        if isinstance(item, Mapping):
            yield SourceItem(position, data=dict(item))
        elif isinstance(item, (str, bytes)):
            yield _decode(item, position)
        else:
            yield SourceItem(position, error=f"expected an object, got {type(item).__name__}")


def _iterable(source: Any) -> Iterable[Any]:
    if not isinstance(source, Iterable):
        raise TypeError(f"the input must be a path or a list of objects, got {type(source).__name__}")
    return source


def _read_lines(source: Any) -> Iterator[SourceItem]:
    if isinstance(source, (str, os.PathLike)):
        from airflow.sdk import ObjectStoragePath

        source = ObjectStoragePath(os.fspath(source))
    with source.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if raw.strip():
                yield _decode(raw, number)
