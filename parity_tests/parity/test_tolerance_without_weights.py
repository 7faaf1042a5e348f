"""A network without dense or conv weights still has a tolerance: the dense row (found by the
fuzzer: a spec shrunk to one batchnorm layer raised "no tolerance for dtype 'float32'")."""

from __future__ import annotations

import pytest

from nnparity.backends.compare import tolerance, tolerance_for
from nnparity.reference.netspec import NetSpec


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_network_without_weights_is_judged_at_the_dense_row(dtype: str) -> None:
    spec = NetSpec.from_dict({"family": "net", "input_shape": [3], "loss": "mse",
                              "dtype": dtype, "net": [{"kind": "batchnorm"}]})
    assert tolerance_for(spec) == tolerance(dtype, ("dense",))
