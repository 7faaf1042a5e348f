"""How much memory a run needs, how much there is, and the check between the two.

:func:`estimate_bytes` takes the largest of three moments of a run, in the spec's dtype: the
backward pass (parameters, optimiser state, gradients, and the ``working_values`` of the spec's
family for the batch: activations, deltas, im2col matrices), the optimiser update (in place:
parameters, state and gradients, and the temporaries of the largest parameter's update) and
evaluation; then adds the data arrays the
command holds and the interpreter with NumPy. Measured within about 10 % of the peak RSS when
the sized parts dominate (``parity_tests/cli/test_memory.py`` holds it to 30 %).

:func:`available_bytes` is ``MemAvailable``, or the cgroup (v2 or v1) memory limit less its
usage or the address-space rlimit less this process's size when lower, less a margin.
:func:`check_memory` refuses a run that does not fit with an :class:`InputError` (exit 2)
naming both figures and what to lower.
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

import numpy as np

from nnparity.errors import InputError
from nnparity.reference import Optimizer, network
from nnparity.reference.family import Spec
from nnparity.reference.optim import OPTIMIZERS, init_state

BASELINE_BYTES = 60 * 2**20
"""Python, NumPy and nnparity imported (measured: about 45 MiB)."""

def optimizer_slots(name: str) -> int:
    """State tensors the optimiser ``name`` keeps per parameter (momentum ``v``; Adam ``m``,
    ``v``), as :func:`nnparity.reference.optim.init_state` makes them."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return sum(key.endswith(".p") for key in init_state(Optimizer(name), {"p": np.zeros(1)}))

OPTIMIZER_TEMPORARIES = {"sgd": 1, "momentum": 1, "adam": 0}
"""Temporaries of one parameter's size alive at once in :func:`nnparity.reference.optim.update`
(``lr g``; ``lr v``; none for Adam, which works through two scratch buffers of
``optim.ADAM_CHUNK`` values)."""

EVAL_ROWS = 10000
"""Rows :func:`nnparity.reference.train.predict_all` passes to a model at a time."""

MARGIN_FRACTION, MARGIN_MIN = 0.05, 256 * 2**20
"""What :func:`available_bytes` keeps back: 5 % of the figure, at least 256 MiB."""


def param_count(spec: Spec) -> int:
    """Number of parameter values of ``spec``."""
    return sum(math.prod(shape) for shape in spec.param_shapes().values())


def estimate_bytes(spec: Spec, batch: int, *, optimizer: str = "sgd", eval_rows: int = 0,
                   data_bytes: int = 0) -> int:
    """Peak bytes of a run of ``spec``: training steps on ``batch`` rows with ``optimizer``
    (a name of :data:`nnparity.reference.optim.OPTIMIZERS`), evaluation of ``eval_rows`` rows
    (0: none), plus ``data_bytes`` of data the command holds and the interpreter's baseline."""
    model = network
    itemsize = np.dtype(spec.dtype).itemsize
    count, slots = param_count(spec), optimizer_slots(optimizer)
    backward = count * (2 + slots) + model.working_values(spec, batch)
    largest = max(math.prod(shape) for shape in spec.param_shapes().values())
    update = count * (2 + slots) + largest * OPTIMIZER_TEMPORARIES[optimizer]
    evaluation = count * (1 + slots) + model.working_values(
        spec, min(eval_rows, EVAL_ROWS), training=False)
    return BASELINE_BYTES + data_bytes + itemsize * max(backward, update, evaluation)


MODEL_CHECK_ROWS, MODEL_CHECK_COPIES = 4, 3
"""A model check's batch rows (``nnparity.models.check.BATCH``) and the copies of a batch it
holds at once (the NumPy batch, the framework's tensor, the reference's)."""


def model_input_bytes(input_shape: tuple[int, ...]) -> int:
    """The least a check of a user's model with inputs of ``input_shape`` needs: its float64
    batches alone, and the interpreter's baseline (the model's own activations come on top)."""
    values = math.prod(input_shape) * MODEL_CHECK_ROWS * MODEL_CHECK_COPIES
    return BASELINE_BYTES + 8 * values


JSON_VALUE_BYTES = 170
"""Peak bytes per value of a JSON twin written with ``indent``: a Python float in a list, its
text and the encoder's chunks (measured: 164)."""


def vector_bytes(spec: Spec, batch: int) -> int:
    """Bytes that exporting one golden vector on ``batch`` rows holds besides the run itself:
    every tensor of one step (input, targets, labels, parameters, each dense or conv layer's
    ``z``, ``h`` and delta, gradients, updated parameters) in the spec's dtype and again in the
    JSON twin."""
    outputs = sum(math.prod(shape) for layer, shape in zip(spec.net, spec.layer_shapes[1:],
                                                           strict=True) if layer.role == "param")
    values = (batch * (math.prod(spec.input_shape) + 2 * spec.output_dim + 1 + 3 * outputs)
              + 3 * param_count(spec))
    return values * (np.dtype(spec.dtype).itemsize + JSON_VALUE_BYTES)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo(field: str) -> int | None:
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        if name == field:
            return int(rest.split()[0]) * 1024
    return None


def cgroup_room(proc: Path = Path("/proc/self/cgroup"),
                root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Limit less usage of this process's memory cgroup (v2 ``memory.max``, or v1
    ``memory.limit_in_bytes``), read from ``proc`` and the hierarchy under ``root``; None when
    there is no limit or it cannot be read."""
    try:
        entries = proc.read_text().splitlines()
    except OSError:
        return None
    for entry in entries:
        parts = entry.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            base, limit_file, usage_file = root, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            base, limit_file = root / "memory", "memory.limit_in_bytes"
            usage_file = "memory.usage_in_bytes"
        else:
            continue
        for folder in (base / path.lstrip("/"), base):
            limit = _read_int(folder / limit_file)
            if limit is not None and limit < 2**60:
                return limit - (_read_int(folder / usage_file) or 0)
    return None


def _rlimit_room() -> int | None:
    """``RLIMIT_AS`` less this process's virtual size; None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pages = 0
    return soft - pages * os.sysconf("SC_PAGE_SIZE")


def available_bytes() -> int | None:
    """Bytes a run may still allocate: the lowest of ``MemAvailable``, the cgroup's room and the
    rlimit's room, less a margin; None when none of them can be read (not Linux)."""
    figures = [f for f in (_meminfo("MemAvailable"), cgroup_room(), _rlimit_room())
               if f is not None]
    if not figures:
        return None
    room = min(figures)
    return max(room - max(int(room * MARGIN_FRACTION), MARGIN_MIN), 0)


def human(size: float) -> str:
    """``size`` bytes as ``1.2 GB`` (powers of 1000; two significant figures below 10)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(size) < 1000 or unit == "PB":
            return f"{size:.1f} {unit}" if unit != "B" and abs(size) < 10 else f"{size:.0f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def check_memory(needed: int, what: str, hint: str, force: bool = False) -> None:
    """Refuse (``InputError``, exit 2) when ``needed`` bytes exceed what is available, naming
    ``what`` needs them and the ``hint`` (what to lower); ``force`` skips the check."""
    if force:
        return
    available = available_bytes()
    if available is not None and needed > available:
        raise InputError(f"{what} needs ~{human(needed)}, {human(available)} available: {hint} "
                         "(or --force to try anyway)")
