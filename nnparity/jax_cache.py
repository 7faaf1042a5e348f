"""JAX's persistent compilation cache for nnparity's own commands (not for the Python API).

XLA compiles one program per model, batch shape and optimiser; ``nnparity check`` compiles about
240 of them, most in under a second each, which JAX's default cache skips (its threshold is one
second of compile time). The command line turns the cache on under nnparity's cache folder
(``$XDG_CACHE_HOME/nnparity/jax``, beside the datasets) with no threshold, so that a second run
loads the compiled programs instead of compiling them again. A cached program is looked up by a
key JAX computes from the program, the compile options, the JAX and jaxlib versions and the
device: a run that changes any of them compiles afresh, and the results are computed as before
(the cache holds code, never results).

The cache is bounded (:data:`MAX_BYTES`, least recently used entries evicted), which makes JAX
lock it with ``filelock`` around every read and write, so that two processes (``pytest -n 2``,
two terminals) never read an entry half written; without ``filelock`` the cache stays off.
Nothing is changed when the user configures the cache themselves (``JAX_COMPILATION_CACHE_DIR``
set) or turns it off with ``NNPARITY_JAX_CACHE=off``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from nnparity.datasets.cache import cache_root

OFF_VARIABLE = "NNPARITY_JAX_CACHE"
MAX_BYTES = 512 * 2**20
"""The cache's bound: about 2 MB holds the default matrix's ~240 programs."""


def settings(folder: Path) -> dict[str, str | float | int]:
    """JAX's configuration options and their values for ``folder``."""
    return {
        "jax_compilation_cache_dir": str(folder),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_compilation_cache_max_size": MAX_BYTES,
    }


def enable(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Turn the cache on for this process and its children; the folder, or None when left off
    (the user's own setting, ``NNPARITY_JAX_CACHE=off``, or no ``filelock``)."""
    if environ.get(OFF_VARIABLE, "").lower() == "off" or "JAX_COMPILATION_CACHE_DIR" in environ:
        return None
    if importlib.util.find_spec("filelock") is None:
        return None
    folder = cache_root() / "jax"
    values = settings(folder)
    if "jax" in sys.modules:  # imported already: JAX read its environment then
        import jax

        for name, value in values.items():
            jax.config.update(name, value)
    environ.update({name.upper(): str(value) for name, value in values.items()})
    return folder
