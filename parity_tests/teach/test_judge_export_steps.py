"""The NumPy export's optimiser step is the reference's formula (written once, in
``reference/optim.py``): three steps of every optimiser the writers render give the reference's
bits, and an optimiser no writer renders is refused by the command line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from nnparity.cli import main
from nnparity.export import source
from nnparity.export.writers import OPTIMIZERS
from nnparity.reference import optim
from nnparity.reference.family import init_params


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_numpy_export_steps_are_the_reference_bits(optimizer: str, tmp_path: Path) -> None:
    path = tmp_path / f"iris_{optimizer}.py"
    assert main(["export", "--framework", "numpy", "seed000-iris", "--optimizer", optimizer,
                 "--lr", "0.05", "--dtype", "float64", "-o", str(path)]) == 0
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    opt = optim.Optimizer(optimizer, lr=0.05, momentum=module.__dict__.get("MOMENTUM", 0.9),
                          eps=module.__dict__.get("EPS"))
    spec, _, _ = source.load("seed000-iris", {"dtype": "float64"})
    params = init_params(spec, seed=1)
    rng = np.random.default_rng(3)
    grads = [{k: rng.standard_normal(p.shape) for k, p in params.items()} for _ in range(3)]
    ours, their = (params, optim.init_state(opt, params)), (params, module.init_state(params))
    for g in grads:
        ours = optim.step(opt, ours[0], g, ours[1])
        their = module.step(their[0], their[1], g)
    for k in params:
        assert np.array_equal(their[0][k], ours[0][k]), f"{optimizer} {k}"


def test_export_refuses_an_optimizer_no_writer_renders(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["export", "--framework", "numpy", "seed000-iris", "--optimizer", "adamw",
              "-o", str(tmp_path / "out.py")])
    assert stop.value.code == 2
    assert "invalid choice: 'adamw'" in capsys.readouterr().err
    assert not (tmp_path / "out.py").exists()
