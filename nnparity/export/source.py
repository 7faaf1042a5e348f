"""Where an export's spec comes from: a JSON file as ``to_dict()`` writes it, or a preset name.

A preset's input shape comes from its dataset: an embedded set is loaded (it is small); an image
set of the catalog is 28x28 grey (its IDX files' shape), so no data has to be fetched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from nnparity.datasets import catalog
from nnparity.datasets.named import load_embedded
from nnparity.datasets.split import Split
from nnparity.errors import InputError
from nnparity.files.json_input import spec_file
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.training.presets import PRESETS, preset
from nnparity.training.run import TrainConfig, make_spec

CATALOG_IMAGE = (28, 28)  # every catalog image set: [count, 28, 28] uint8


def _split_shape(config: TrainConfig) -> Split:
    """A split with the dataset's row shape (one row; values unused)."""
    if config.dataset in catalog.DATASETS:
        x = np.zeros((1, *CATALOG_IMAGE), np.uint8)
        return Split(x, np.zeros(1, np.int64), x, np.zeros(1, np.int64))
    return load_embedded(config.dataset, seed=config.seed, n_train=config.n_train)


def load(source: str, overrides: dict[str, Any]) -> tuple[Spec, Optimizer, str]:
    """``(spec, optimizer, title)`` of a preset name or a spec JSON file; ``overrides`` holds
    ``optimizer``, ``lr``, ``momentum``, ``variant`` and ``dtype`` (None: keep)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if source in PRESETS:
        config = TrainConfig.from_dict(preset(source))
        spec = make_spec(config, _split_shape(config))
        base = {"name": config.optimizer, "lr": config.lr, "momentum": config.momentum,
                "eps": config.eps}
        title = f"Preset {source}"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{source}: neither a preset ({', '.join(PRESETS)}) nor a file")
        spec = spec_file(path)
        base, title = {"name": "sgd", "lr": 0.01}, f"The network of {path.name}"
    if "dtype" in given:
        spec = replace(spec, dtype=given.pop("dtype"))
    if "optimizer" in given:
        given["name"] = given.pop("optimizer")
    return spec, Optimizer(**{**base, **given}), title
