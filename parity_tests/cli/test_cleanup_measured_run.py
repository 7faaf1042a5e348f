"""What a command measured by ``bench`` (:func:`nnparity.bench.peakmem.run_measured`) starts
dies with it: on its normal exit and on a timeout."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from cleanup_processes import cleaned, left  # parity_tests/, beside the conftest

from nnparity.bench.peakmem import run_measured


@pytest.mark.parametrize("then", ["exit 0", "sleep 1000"], ids=["exits", "times-out"])
def test_a_measured_command_leaves_no_process(then):
    marker = f"cleanup-{uuid.uuid4().hex}"
    argv = ["/bin/sh", "-c", f"MARK={marker} sleep 1000 >/dev/null 2>&1 </dev/null &\n{then}"]
    with cleaned(marker):
        if then == "exit 0":
            assert run_measured(argv).returncode == 0
        else:
            with pytest.raises(subprocess.TimeoutExpired):
                run_measured(argv, timeout=2)
        assert left(marker) == []
