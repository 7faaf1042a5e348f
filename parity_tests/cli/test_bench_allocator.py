"""The bench pins glibc's allocator, so that freed blocks are reused rather than handed back to
the system and faulted in again at the next step (a cost that depended on what ran before)."""

import resource

import numpy as np
import pytest

from nnparity.allocator import pin_allocator


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_pinned_allocator_reuses_freed_blocks_without_page_faults():
    if not pin_allocator():
        pytest.skip("the C library has no mallopt (not glibc): the bench leaves it as it is")

    def cycle() -> None:  # allocated, written and freed, as a training step's temporaries
        for mib in (8, 16, 24):
            np.ones(mib << 17)

    cycle()  # first touch of the heap's pages
    before = _page_faults()
    cycle()
    cycle()
    # Unpinned, a fresh process faulted 2001 times here (glibc maps the largest block anew).
    assert _page_faults() - before < 50


PROBE = """
import contextlib, io, resource, sys
import numpy as np
from nnparity.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["train", "--epochs", "1"])
assert code == 0, code
def cycle():
    for mib in (8, 16, 24):
        np.ones(mib << 17)
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
cycle(); cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_train_runs_in_the_process_bench_measures():
    """``nnparity train`` pins the allocator as ``bench`` does: after a training run the freed
    blocks are reused without page faults (a fresh process faults about 2000 times here)."""
    if not pin_allocator():
        pytest.skip("the C library has no mallopt (not glibc): the bench leaves it as it is")
    import subprocess
    import sys

    faults = subprocess.run([sys.executable, "-c", PROBE], capture_output=True,
                            text=True, timeout=120, check=True).stdout
    assert int(faults) < 50
