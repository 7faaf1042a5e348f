"""The shipped JSON schema of reports (``nnparity/schemas/report-2.json``) as a test helper:
:func:`validate` checks one report; :func:`validating_writes` makes every report nnparity writes
in the test process (check, ports, verify: they all write through ``report.atomic_write``) be
validated as it is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import jsonschema
import pytest

from nnparity.parity import report


def schema() -> dict[str, Any]:
    """The schema as shipped in the package."""
    text = resources.files("nnparity").joinpath(
        f"schemas/report-{report.SCHEMA_VERSION}.json").read_text(encoding="utf-8")
    return json.loads(text)


_VALIDATOR = jsonschema.Draft202012Validator(schema())


def validate(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` where ``data`` does not follow the schema."""
    _VALIDATOR.validate(data)


@contextmanager
def validating_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While the block runs, every ``nnparity.report`` JSON written is validated first."""
    write = report.atomic_write

    def checked(path: Any, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:  # JUnit XML and other text
            data = None
        if isinstance(data, dict) and data.get("schema") == report.SCHEMA:
            validate(data)
        write(path, text)

    monkeypatch.setattr(report, "atomic_write", checked)
    yield
