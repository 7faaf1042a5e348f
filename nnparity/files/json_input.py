"""The one reader of JSON input: spec files (:func:`spec_file`), ``--spec``/``--adapter``,
results files, the ``spec`` and ``meta`` entries of weights files, checkpoints and vectors,
downloaded data.

Anything that is not JSON becomes a :class:`JSONInputError` (exit 2) naming where the text came
from: a syntax error (with its line), text that is not UTF-8, or nesting deeper than the
interpreter can decode (``[`` x 100000 would otherwise raise ``RecursionError``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nnparity.errors import InputError
from nnparity.reference.family import Spec, spec_from_dict


class JSONInputError(InputError, ValueError):
    """JSON input that cannot be read (exit 2; a ``ValueError`` for callers that catch those)."""


def parse_json(text: str | bytes, where: str | os.PathLike[str]) -> Any:
    """``text`` decoded as JSON; :class:`JSONInputError` naming ``where`` otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"{where}: not JSON ({exc.msg}, line {exc.lineno} column "
                             f"{exc.colno})") from None
    except RecursionError:
        raise JSONInputError(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:  # not UTF-8, an integer of too many digits
        raise JSONInputError(f"{where}: not JSON ({exc})") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON file ``path`` decoded; :class:`JSONInputError` naming it when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise JSONInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_json(data, path)


def spec_file(path: str | os.PathLike[str]) -> Spec:
    """The model spec in the JSON file ``path`` (an MLP, a CNN, or a ``net`` list of layers);
    :class:`InputError` naming the file and what is wrong otherwise."""
    data = read_json(path)
    try:
        return spec_from_dict(data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a spec: {exc}") from None
