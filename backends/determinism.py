"""The determinism profile: one call used by the CLI and by ``parity_tests/conftest.py``.

:func:`apply_determinism` fixes the seeds (Python, NumPy, torch, TensorFlow), turns on
``torch.use_deterministic_algorithms(True)`` and ``tf.config.experimental.enable_op_determinism()``,
and fixes the intra- and inter-op thread counts. A framework that is not installed is skipped; one
that is installed but not imported yet is configured when its backend imports it
(:func:`configure_torch`, :func:`import_tensorflow`), so calling this never costs a framework
import. TensorFlow's oneDNN custom ops are switched off (``TF_ENABLE_ONEDNN_OPTS=0``) before
TensorFlow is imported, whether or not the profile is applied: oneDNN float32 results depend on the
CPU and thread count. An environment variable set by the user is respected.

:func:`describe` reports what a result depends on: versions, thread counts, the CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import platform
import random
import sys
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import numpy as np

TF_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
THREADS_VARIABLE = "NNPARITY_THREADS"
THREADS_MAX = 256
"""The most framework threads a run may ask for (``--threads``, ``$NNPARITY_THREADS``): far above
any CPU's useful count, far below the counts (100000) at which torch and TensorFlow crash while
creating their thread pools."""


@dataclass(frozen=True)
class Profile:
    """The applied settings: ``seed`` and the thread count of every framework."""

    seed: int
    threads: int


_active: Profile | None = None


def apply_determinism(threads: int | None = None, seed: int = 0) -> Profile:
    """Apply the profile now and to frameworks imported later; return it.

    ``threads=None`` reads ``$NNPARITY_THREADS`` and defaults to 1 (the most reproducible
    choice, and the fastest for the small nets of the parity suite); either is checked by
    :func:`thread_count`.
    """
    global _active
    threads = thread_count(threads)
    prepare_tensorflow_environment()
    _active = Profile(seed=seed, threads=threads)
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        configure_torch()
    if "tensorflow" in sys.modules:
        _configure_tensorflow(sys.modules["tensorflow"])
    return _active


def thread_count(threads: int | None) -> int:
    """The framework thread count of a run: ``threads`` (``--threads``), else
    ``$NNPARITY_THREADS``, else 1; a ``ValueError`` naming the option or variable unless it is an
    integer from 1 to :data:`THREADS_MAX`."""
    source, value = "--threads", threads
    if threads is None:
        source, raw = f"${THREADS_VARIABLE}", os.environ.get(THREADS_VARIABLE, "1")
        value = int(raw) if raw.strip().isdigit() and len(raw.strip()) < 10 else raw
    if not isinstance(value, int) or not 1 <= value <= THREADS_MAX:
        raise ValueError(f"{source} must be a positive integer, got {value!r} (at most "
                         f"{THREADS_MAX})")
    return value


def active_profile() -> Profile | None:
    """The profile applied by :func:`apply_determinism`, or ``None``."""
    return _active


def prepare_tensorflow_environment() -> None:
    """Set ``TF_ENABLE_ONEDNN_OPTS=0`` and a quiet log level unless the user set them.

    Has no effect once TensorFlow is imported; :func:`import_tensorflow` calls it first.
    """
    for key, value in TF_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def configure_torch() -> None:
    """Apply the active profile (if any) to torch: seed, deterministic algorithms, threads."""
    if _active is None:
        return
    import torch

    torch.manual_seed(_active.seed)
    torch.use_deterministic_algorithms(True)
    if torch.get_num_threads() != _active.threads:
        torch.set_num_threads(_active.threads)
    # settable only before the first parallel work; describe() reports the real count
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(_active.threads)


def import_tensorflow() -> tuple[ModuleType, ModuleType]:
    """``(tensorflow, keras)``, imported after :func:`prepare_tensorflow_environment` and
    configured with the active profile. Raises ImportError when TensorFlow is not installed."""
    prepare_tensorflow_environment()
    tf = importlib.import_module("tensorflow")
    keras = importlib.import_module("keras")
    _configure_tensorflow(tf)
    return tf, keras


def _configure_tensorflow(tf: ModuleType) -> None:
    if _active is None:
        return
    tf.random.set_seed(_active.seed)
    tf.config.experimental.enable_op_determinism()
    threading = tf.config.threading
    for getter, setter in (
        (threading.get_intra_op_parallelism_threads, threading.set_intra_op_parallelism_threads),
        (threading.get_inter_op_parallelism_threads, threading.set_inter_op_parallelism_threads),
    ):
        if getter() != _active.threads:
            # fails once the runtime is initialised; describe() shows the real count
            with contextlib.suppress(RuntimeError):
                setter(_active.threads)


def _version(*distributions: str) -> str | None:
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe() -> dict[str, Any]:
    """What results depend on, for reports: versions (``None`` when not installed), thread counts
    of the imported frameworks, the CPU, the oneDNN switch and the applied profile."""
    threads: dict[str, int] = {}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        threads["torch_intra_op"] = torch.get_num_threads()
        threads["torch_inter_op"] = torch.get_num_interop_threads()
    if "tensorflow" in sys.modules:
        threading = sys.modules["tensorflow"].config.threading
        threads["tensorflow_intra_op"] = threading.get_intra_op_parallelism_threads()
        threads["tensorflow_inter_op"] = threading.get_inter_op_parallelism_threads()
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": _version("torch"),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": _version("keras"),
        "jax": _version("jax"),
        "optax": _version("optax"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "profile": asdict(_active) if _active else None,
    }
