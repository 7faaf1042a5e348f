"""Which backends exist, which are installed, and why one is not.

Backend modules are imported lazily, so ``import nnparity`` needs NumPy only; a missing framework
becomes a reason string (``"not installed: pip install nnparity[torch]"``), never an ImportError;
any other exception while importing one (a broken install) becomes ``"import failed: ..."``.
"""

from __future__ import annotations

import importlib

from .protocol import Backend

# name -> (module, the extra that installs it, the top-level packages that extra brings)
MODULES = {
    "numpy": ("nnparity.backends.numpy_backend", None, ()),
    "torch": ("nnparity.backends.torch_backend", "torch", ("torch",)),
    "tensorflow": ("nnparity.backends.tensorflow_backend", "tensorflow", ("tensorflow", "keras")),
    "jax": ("nnparity.backends.jax_backend", "jax", ("jax", "jaxlib", "optax")),
}
NAMES = tuple(MODULES)

_loaded: dict[str, Backend] = {}
_missing: dict[str, str] = {}


class BackendUnavailable(RuntimeError):
    """A backend that is not installed (or failed to import), with the reason."""


def _load(name: str) -> None:
    if name in _loaded or name in _missing:
        return
    module_name, extra, packages = MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        if missing and missing.split(".")[0] in packages:
            _missing[name] = f"not installed: pip install nnparity[{extra}]"
        else:
            _missing[name] = f"import failed: {exc}"
        return
    except Exception as exc:  # a broken install may raise anything while importing
        _missing[name] = f"import failed: {type(exc).__name__}: {exc}"
        return
    _loaded[name] = module.BACKEND


def get(name: str) -> Backend:
    """The backend called ``name``; raises :class:`BackendUnavailable` with the reason."""
    if name not in MODULES:
        raise BackendUnavailable(f"unknown backend {name!r}; known: {', '.join(NAMES)}")
    _load(name)
    if name in _missing:
        raise BackendUnavailable(f"backend {name!r} is unavailable ({_missing[name]})")
    return _loaded[name]


def available() -> list[str]:
    """Names of the installed backends, in registry order."""
    return [name for name in NAMES if reason(name) is None]


def reason(name: str) -> str | None:
    """Why ``name`` is unavailable, or ``None`` when it is installed."""
    if name not in MODULES:
        return f"unknown backend {name!r}"
    _load(name)
    return _missing.get(name)


def status() -> dict[str, str | None]:
    """Every backend -> ``None`` (installed) or the reason it is not."""
    return {name: reason(name) for name in NAMES}
