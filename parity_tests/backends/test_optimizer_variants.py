"""The reference's optimiser variants against the frameworks' own optimisers, step by step.

``torch`` must reproduce ``torch.optim.SGD``/``Adam``/``AdamW`` (and the JAX backend's
``optax.sgd``/``adam``) and ``keras`` must reproduce ``keras.optimizers.SGD``/``Adam``/``AdamW``
to float64 rounding; the two Adam variants themselves differ (epsilon placement, Keras' float32
hyperparameters), and one test shows by how much.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.backends.compare import FLOAT64_WATCH, compare_tensor, tolerance
from nnparity.reference import MLPSpec, Optimizer, init_params, init_state, step
from nnparity.reference.train import NumpyTrainer

STEPS = 10
SHAPES = {"W1": (3, 4), "b1": (1, 4)}


def _problem(seed: int = 0) -> tuple[dict, list[dict]]:
    """Params and ``STEPS`` gradient dicts (random, float64)."""
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s) * 10.0 ** rng.integers(-3, 2) for k, s in SHAPES.items()}
             for _ in range(STEPS)]
    return params, grads


def _reference(optimizer: Optimizer, params: dict, grads: list[dict]) -> list[dict]:
    state, out = init_state(optimizer, params), []
    for g in grads:
        params, state = step(optimizer, params, g, state)
        out.append(params)
    return out


def _worst(framework: list[dict], reference: list[dict]) -> float:
    """Worst relative error over every step and tensor."""
    return max(compare_tensor("update", k, f[k], r[k], 0.0).max_rel
               for f, r in zip(framework, reference, strict=True) for k in r)


CONFIGS = {
    "sgd": {"name": "sgd", "lr": 0.03},
    "momentum": {"name": "momentum", "lr": 0.03, "momentum": 0.8},
    "adam": {"name": "adam", "lr": 0.003, "beta1": 0.8, "beta2": 0.95},
    "adamw": {"name": "adamw", "lr": 0.003, "beta1": 0.8, "beta2": 0.95, "decay": 0.05},
}


@pytest.mark.torch
@pytest.mark.parametrize("config", CONFIGS)
def test_torch_variant_equals_torch_optim(config: str) -> None:
    import torch

    optimizer = Optimizer(**CONFIGS[config], variant="torch")
    params, grads = _problem()
    tensors = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in params.values()]
    if optimizer.name == "adamw":
        opt = torch.optim.AdamW(tensors, lr=optimizer.lr, eps=optimizer.eps,
                                betas=(optimizer.beta1, optimizer.beta2),
                                weight_decay=optimizer.decay)
    elif optimizer.name == "adam":
        opt = torch.optim.Adam(tensors, lr=optimizer.lr, betas=(optimizer.beta1, optimizer.beta2),
                               eps=optimizer.eps)
    else:
        opt = torch.optim.SGD(tensors, lr=optimizer.lr,
                              momentum=optimizer.momentum if config == "momentum" else 0.0)
    got = []
    for g in grads:
        for t, k in zip(tensors, params, strict=True):
            t.grad = torch.from_numpy(g[k].copy())
        opt.step()
        got.append({k: t.detach().numpy().copy() for k, t in zip(params, tensors, strict=True)})
    worst = _worst(got, _reference(optimizer, params, grads))
    print(f"torch.optim {config}: max rel {worst:.1e}")
    assert worst <= FLOAT64_WATCH


@pytest.mark.jax
@pytest.mark.parametrize(("config", "l2"), [*((c, 0.0) for c in CONFIGS),
                                            *((c, 0.05) for c in ("sgd", "momentum", "adam"))])
def test_torch_variant_equals_the_jax_backends_optax(config: str, l2: float) -> None:
    """Also with ``l2`` (torch.optim's ``weight_decay``: ``optax.add_decayed_weights`` first)."""
    import optax

    from nnparity.backends.jax_backend import scope, transformation

    optimizer = Optimizer(**CONFIGS[config], variant="torch", l2=l2)
    params, grads = _problem()
    with scope():
        tx = transformation(optimizer)
        current, state, got = params, tx.init(params), []
        for g in grads:
            updates, state = tx.update(g, state, current)
            current = optax.apply_updates(current, updates)
            got.append({k: np.asarray(v) for k, v in current.items()})
    worst = _worst(got, _reference(optimizer, params, grads))
    print(f"optax {config}, l2 {l2}: max rel {worst:.1e}")
    assert worst <= FLOAT64_WATCH


@pytest.mark.torch
@pytest.mark.parametrize("config", ["sgd", "momentum", "adam"])
def test_l2_is_torch_optims_weight_decay_on_every_parameter(config: str) -> None:
    import torch

    optimizer = Optimizer(**CONFIGS[config], variant="torch", l2=0.05)
    params, grads = _problem()
    tensors = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in params.values()]
    kwargs = {"lr": optimizer.lr, "weight_decay": 0.05}
    opt = (torch.optim.Adam(tensors, betas=(optimizer.beta1, optimizer.beta2), eps=optimizer.eps,
                            **kwargs) if config == "adam" else
           torch.optim.SGD(tensors, momentum=optimizer.momentum if config == "momentum" else 0,
                           **kwargs))
    got = []
    for g in grads:
        for t, k in zip(tensors, params, strict=True):
            t.grad = torch.from_numpy(g[k].copy())
        opt.step()
        got.append({k: t.detach().numpy().copy() for k, t in zip(params, tensors, strict=True)})
    assert _worst(got, _reference(optimizer, params, grads)) <= FLOAT64_WATCH
    with pytest.raises(ValueError, match="torch variant"):
        Optimizer(**CONFIGS[config], variant="keras", l2=0.05)


@pytest.mark.tensorflow
@pytest.mark.parametrize("config", CONFIGS)
def test_keras_variant_equals_keras_optimizers(config: str) -> None:
    import keras

    optimizer = Optimizer(**CONFIGS[config], variant="keras")
    params, grads = _problem()
    variables = [keras.Variable(v.copy(), dtype="float64") for v in params.values()]
    if optimizer.name == "adamw":
        opt = keras.optimizers.AdamW(learning_rate=optimizer.lr, beta_1=optimizer.beta1,
                                     beta_2=optimizer.beta2, epsilon=optimizer.eps,
                                     weight_decay=optimizer.decay)
    elif optimizer.name == "adam":
        opt = keras.optimizers.Adam(learning_rate=optimizer.lr, beta_1=optimizer.beta1,
                                    beta_2=optimizer.beta2, epsilon=optimizer.eps)
    else:
        momentum = optimizer.momentum if config == "momentum" else 0.0
        opt = keras.optimizers.SGD(learning_rate=optimizer.lr, momentum=momentum)
    got = []
    for g in grads:
        opt.apply_gradients(zip([g[k] for k in params], variables, strict=True))
        got.append({k: v.numpy().copy() for k, v in zip(params, variables, strict=True)})
    worst = _worst(got, _reference(optimizer, params, grads))
    print(f"keras.optimizers {config}: max rel {worst:.1e}")
    assert worst <= FLOAT64_WATCH


@pytest.mark.tensorflow
def test_keras_rounds_the_learning_rate_to_float32() -> None:
    """Keras keeps a float learning rate in a float32 variable even for float64 weights: the
    step is ``p - float32(lr) g``, 1.5e-8 relative away from ``p - lr g`` for lr = 0.05."""
    import keras

    p, g = np.array([1.0]), np.array([1.0])
    variable = keras.Variable(p.copy(), dtype="float64")
    keras.optimizers.SGD(learning_rate=0.05).apply_gradients([(g, variable)])
    assert variable.numpy()[0] == p[0] - float(np.float32(0.05)) * g[0]
    assert abs(variable.numpy()[0] - (p[0] - 0.05 * g[0])) > tolerance("float64") * 1e-2


def test_adam_variants_drift_apart() -> None:
    """Ten Adam steps on one MLP, torch vs keras formulation, each with its default epsilon and
    with a shared epsilon: the parameters differ far beyond the float64 tolerance."""
    spec = MLPSpec(4, (8, 3), ("tanh", "identity"), "ce", "mean")
    params = init_params(spec, "xavier", seed=0)
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((16, 4)), rng.integers(0, 3, 16)) for _ in range(STEPS)]
    drifts = {}
    for label, eps in (("default eps (1e-8 vs 1e-7)", None), ("same eps 1e-8", 1e-8)):
        finals = []
        for variant in ("torch", "keras"):
            trainer = NumpyTrainer(spec, params, Optimizer("adam", lr=1e-3, eps=eps,
                                                           variant=variant))
            for x, y in batches:
                trainer.step(x, y)
            finals.append(trainer.params())
        drifts[label] = max(compare_tensor("update", k, finals[1][k], finals[0][k], 0.0).max_rel
                            for k in params)
    for label, drift in drifts.items():
        print(f"Adam torch vs keras after {STEPS} steps, {label}: max rel {drift:.2e}")
        assert drift > tolerance("float64")
