"""glibc's allocator pinned for training: freed blocks stay in the heap for the next step.

Every nnparity process that trains (``nnparity train``, ``reproduce``, ``bench``) pins it the
same way, so that ``bench`` measures the process ``train`` runs.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
TRIM_BYTES, MMAP_BYTES = 256 << 20, 32 << 20  # 32 MiB: the largest mmap threshold glibc takes


def pin_allocator() -> bool:
    """Fix glibc malloc's trim and mmap thresholds for this process (256 MiB, 32 MiB), so that a
    freed block stays in the heap for the next step. Left to itself glibc moves both as the
    process frees memory, and a trainer that allocates per step then pays page faults or not
    depending on what ran before it (the reference at batch 256: 600 faults and twice the CPU
    time per step after the batch-20 benchmark, none when run first; in a plain ``train``
    process 1.53-1.89x the bare NumPy loop's epoch instead of 1.05x). The trim threshold exceeds
    what a step frees at the top of the heap: the notes' CNN at batch 50 frees 64-96 MiB there
    at the end of each step, and with a 64 MiB threshold glibc gave it back and faulted it in
    again, 5,600 page faults and 30 ms of system time a step (a process left to glibc's own
    thresholds stops faulting after its second step). False where the C
    library has no ``mallopt`` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)) and bool(mallopt(M_MMAP_THRESHOLD,
                                                                         MMAP_BYTES))
