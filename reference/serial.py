"""JSON round trips shared by the model specs (``MLPSpec``, ``CNNSpec``).

A spec is a frozen dataclass with a ``family`` field (not an ``__init__`` argument) and a
``to_dict()`` returning JSON-ready values; this mixin adds the rest.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, Self


class SpecSerial:
    """``to_json``, ``from_dict``, ``from_json`` and ``with_`` for a spec dataclass."""

    family: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (each spec defines it)."""
        raise NotImplementedError

    def to_json(self) -> str:
        """Compact JSON text with sorted keys."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; another family or an unknown key is an error."""
        data = dict(data)
        expected = next(f.default for f in fields(cls) if f.name == "family")
        family = data.pop("family", expected)
        if family != expected:
            raise ValueError(f"spec family is {family!r}, expected {expected!r}")
        unknown = sorted(set(data) - {f.name for f in fields(cls) if f.init})
        if unknown:
            raise ValueError(f"unknown spec field(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))
