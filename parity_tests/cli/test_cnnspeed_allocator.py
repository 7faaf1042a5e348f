"""The pinned allocator keeps a CNN step's freed memory for the next step: no page faults per
step (with a 64 MiB trim threshold the notes' CNN faulted 5,600 times a step, 30 ms of system
time, because each step frees more than that at the top of the heap)."""

import os
import subprocess
import sys

import pytest

from nnparity.allocator import pin_allocator

PROBE = """
import resource
from nnparity.allocator import pin_allocator
from nnparity.bench.speed import cnn_step
pin_allocator()
step = cnn_step("numpy")
for _ in range(2):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_cnn_step_in_a_pinned_process_faults_no_pages():
    if not pin_allocator():
        pytest.skip("the C library has no mallopt (not glibc): the bench leaves it as it is")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # as the bench runs it
    faults = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=120, check=True, env=env).stdout
    assert int(faults) < 100, f"{faults.strip()} page faults in two warm steps"
