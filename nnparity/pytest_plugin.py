"""The pytest plugin (entry point ``pytest11``, installed with nnparity): the ``parity`` fixture.

``parity(model, loss=..., optimizer=..., input_shape=...)`` takes the arguments of
:func:`nnparity.check_model`, checks the model and returns the :class:`nnparity.Report`; on a
mismatch it fails the test with the table and the diagnoses. An error in the model's own code
(:class:`nnparity.ModelError`) or a model the reference cannot express
(:class:`nnparity.InputError`) fails the test too, with its one line. Each call is independent
of the others, so it works under pytest-xdist (``pytest -n``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nnparity.api import Report, check_model
from nnparity.errors import NnparityError

Parity = Callable[..., Report]


def _parity(model: Any, **kwargs: Any) -> Report:
    """:func:`nnparity.check_model`, failing the test unless the model matches."""
    try:
        result = check_model(model, **kwargs)
    except NnparityError as exc:
        pytest.fail(f"nnparity could not check the model: {exc}", pytrace=False)
    if not result.ok:
        pytest.fail(result.failure_text(), pytrace=False)
    return result


@pytest.fixture
def parity() -> Parity:
    """Check a model against nnparity's reference; fail the test on a mismatch."""
    return _parity
