"""The adapter declaration: which names in a learner's file hold what, in the learner's layout.

The declaration is a module-level dict called ``NNPARITY`` in the user's file (read here with
:mod:`ast`, never imported: the user's code only runs in the subprocess) or the same dict as JSON
given on the command line (``--adapter``). Keys:

Model and data
- ``spec``: the MLPSpec fields (``input_dim``, ``layers``, ``activations``, ``loss``,
  ``reduction``, ``weight_decay``, ``bias``, ``dtype``), or any other spec's JSON (a layer list
  under ``net``, a CNN's fields with ``"family": "cnn"``); ``--spec`` overrides it. Layers are
  numbered as :mod:`nnparity.verify.netview` says (dense and conv layers, from 1).
- ``layout``: ``"row"`` (the BP lecture: ``x [N, D]``, ``W [in, out]``, ``z = x @ W + b``) or
  ``"column"`` (the Fashion-MNIST report: ``x [D, N]`` column vectors, ``W [out, in]``,
  ``P = W X + b``).
- ``maps``: ``"NHWC"`` (default, the reference's) or ``"NCHW"``: the learner's images, feature
  maps and their deltas; ``kernel``: ``"HWIO"`` (default) or ``"OIHW"``; ``flatten``: the order
  in which the learner's flatten lays a map out, ``"NHWC"`` or ``"NCHW"`` (default: ``maps``'s):
  the rows of the first dense weight after it follow it. Only for a network with feature maps.
- ``bias_shape``: ``"row"`` ``[1, D]`` / ``"column"`` ``[D, 1]`` / ``"flat"`` ``[D]``
  (default: the layout's own).
- ``labels``: ``"onehot"`` (default; ``[N, K]``, or ``[K, N]`` in column layout) or ``"index"``
  (class indices ``[N]``, ``ce`` only).
- ``grads_reduction``: ``"sum"`` or ``"mean"``: what the exposed deltas and gradients are, when
  it differs from the spec (the Fashion-MNIST report sums gradients and divides by N in its update).
- ``grads_after``: ``"backward"`` (default) or ``"update"``: read ``delta``, ``dW`` and ``db``
  after the update step instead (the NumPy blog adds the L2 term to ``dW`` in ``update``).
- ``lr``: the learning rate the user's update uses: a number, or the name of a global in the
  user's file (e.g. ``"learning_rate"``). Default: the optimizer's ``lr``, else 0.1.
- ``optimizer``: the update rule the user's code implements, a dict of
  :data:`OPTIMIZER_KEYS` (``name`` ``sgd``/``momentum``/``adam`` and the hyperparameters of
  :class:`nnparity.reference.optim.Optimizer`; ``weight_decay`` is the spec's L2 lambda);
  without it, one plain SGD step.
- ``relu_at_zero``: ``"any"`` (default: relu'(0) = 1, a valid subgradient, is reported as an
  edge-case warning) or ``0`` (the reference's convention asked for: relu'(0) = 1 fails);
- ``steps``: updates run on the same batch, the user's code carrying its optimiser state
  (default :data:`DEFAULT_STEPS` with an optimizer, 1 without).

Steps (Python expressions, evaluated in the user's module with ``x``, ``y``, ``W`` and ``b``
(lists per layer), ``W1, b1, ...``, ``lr``, ``N`` and the results of earlier steps in scope):
- ``model``: builds the user's model (bound to ``model``), e.g. ``"TwoNet(W1, b1, W2, b2)"``;
- ``forward``: result bound to ``out``, e.g. ``"fead_forward(x, model)"``;
- ``backward``: result bound to ``back``, e.g. ``"model.backward(y)"``;
- ``update``: result bound to ``upd``, e.g. ``"model.update()"``.

Where the numbers are (expressions read after their step; per layer either a template using
``{i}`` (0-based) or ``{l}`` (1-based), or a list with one expression per layer, ``None`` to skip):
- after ``forward``: ``output``, ``z``, ``h``;
- after ``backward``: ``loss``, ``delta`` (dL/dz), ``dW``, ``db``;
- ``W``, ``b``: where the model keeps its weights; the tool writes its weights there after
  ``model`` (in place when an array of that shape and dtype is there, so layers sharing it see
  them; a model that draws random weights is fine) and reads them back after each step as the
  updated parameters when there is an ``update`` step;
- ``a``, ``da``: per PReLU layer (numbered apart, from 1: :mod:`nnparity.verify.slopes`),
  where the model keeps its slope (written there like ``W``) and where its gradient is;
- ``W_new``, ``b_new``: where the updated weights are, when not where ``W``/``b`` say (e.g.
  ``"back[0][{i}]['w']"``); giving them also turns the update comparison on.
"""

from __future__ import annotations

import ast
import threading
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nnparity.errors import InputError
from nnparity.files.json_input import parse_json, read_json
from nnparity.reference.family import Spec, spec_from_dict
from nnparity.reference.optim import Optimizer

from .edges import CONVENTIONS
from .netview import ParamLayer, has_maps, param_layers
from .norms import NORM_ROLES, NormLayer, child_plan, norm_layers, with_verify_defaults
from .notebook import convert, is_notebook
from .slopes import SLOPE_ROLES, SlopeLayer, slope_layers

NAME = "NNPARITY"
LAYOUTS = ("row", "column")
BIAS_SHAPES = ("row", "column", "flat")
LABELS = ("onehot", "index")
MAP_LAYOUTS = ("NHWC", "NCHW")
KERNEL_LAYOUTS = ("HWIO", "OIHW")
CALLS = ("model", "forward", "backward", "update")
FORWARD_ROLES = ("z", "h")
BACKWARD_ROLES = ("delta", "dW", "db")
UPDATE_ROLES = ("W_new", "b_new")
PER_LAYER = ("z", "h", "delta", "dW", "db", "W", "b", "W_new", "b_new")
SCALARS = ("output", "loss")
OPTIONS = ("spec", "layout", "maps", "kernel", "flatten", "bias_shape", "labels",
           "grads_reduction", "grads_after", "lr", "optimizer", "steps", "relu_at_zero")
KEYS = (*OPTIONS, *CALLS, *SCALARS, *PER_LAYER, *NORM_ROLES, *SLOPE_ROLES)
OPTIMIZER_KEYS = ("name", "lr", "momentum", "beta1", "beta2", "eps", "variant", "weight_decay")
DEFAULT_STEPS = 3  # with an optimizer: enough for momentum's and Adam's state to matter
MAX_STEPS = 100


@dataclass(frozen=True)
class Adapter:
    """A validated declaration; ``roles`` maps a per-layer role to one expression per layer."""

    spec: Spec
    layout: str = "row"
    maps: str = "NHWC"
    kernel: str = "HWIO"
    flatten: str = "NHWC"
    bias_shape: str = "row"
    labels: str = "onehot"
    grads_reduction: str = "sum"
    grads_after: str = "backward"
    lr: float | str = 0.1
    calls: dict[str, str] = field(default_factory=dict)
    scalars: dict[str, str] = field(default_factory=dict)
    roles: dict[str, list[str | None]] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None
    steps: int = 1
    relu_at_zero: str | int = "any"
    norm_roles: dict[str, list[str | None]] = field(default_factory=dict)  # :mod:`.norms`

    def make_optimizer(self, lr: float) -> Optimizer:
        """The reference optimiser of the declaration (plain SGD without one) at ``lr``."""
        options = {k: v for k, v in (self.optimizer or {}).items() if k != "weight_decay"}
        return Optimizer(**{"name": "sgd", **options, "lr": options.get("lr", lr)})

    @cached_property
    def layers(self) -> list[ParamLayer]:
        """The learner's layers, numbered from 1 (:mod:`nnparity.verify.netview`)."""
        return param_layers(self.spec)

    @cached_property
    def norms(self) -> list[NormLayer]:
        """The learner's normalisation layers, numbered from 1 (:mod:`nnparity.verify.norms`)."""
        return norm_layers(self.spec)

    @cached_property
    def slopes(self) -> list[SlopeLayer]:
        """The PReLU layers, numbered from 1 apart (:mod:`nnparity.verify.slopes`)."""
        return slope_layers(self.spec)

    @property
    def depth(self) -> int:
        """How many layers have weights (a batchnorm, numbered apart, is not one of them)."""
        return _depth(self.spec)

    @property
    def bias(self) -> bool:
        """True when every layer has a bias (the ``b`` list has one per layer)."""
        return all(layer.bias for layer in self.layers)

    @property
    def compares_updates(self) -> bool:
        """True when updated parameters are read (an ``update`` step or ``W_new``/``b_new``)."""
        return "update" in self.calls or any(r in self.roles for r in UPDATE_ROLES)

    def to_json(self) -> dict[str, Any]:
        """What the subprocess needs (plain JSON)."""
        return {"layout": self.layout, "bias_shape": self.bias_shape, "labels": self.labels,
                "lr": self.lr, "grads_after": self.grads_after, "calls": self.calls,
                "steps": self.steps,
                "scalars": self.scalars,
                "roles": self.roles, "depth": self.depth, "bias": self.bias,
                "norms": child_plan(self.norms, self.norm_roles, self.compares_updates),
                "slopes": len(self.slopes)}


def _depth(spec: Spec) -> int:
    """How many layers of ``spec`` have weights: its layer names but its batchnorms'."""
    return len(spec.layer_names) - sum(layer.kind == "batchnorm" for layer in spec.net)


PARSE_LOCK = threading.Lock()
"""Held by every ``ast.parse`` here: CPython 3.11's parser is not safe to run from two threads
at once (``SystemError: AST constructor recursion depth mismatch``, seen when ``verify DIR
--jobs N`` read two declarations together)."""


def parse(source: str, **options: Any) -> ast.AST:
    """``ast.parse(source, **options)``, one thread at a time (:data:`PARSE_LOCK`)."""
    with PARSE_LOCK:
        return ast.parse(source, **options)


def read_declaration(path: Path) -> dict[str, Any]:
    """The literal ``NNPARITY = {...}`` (or ``dict(...)``) of a Python file, or of any code
    cell of a notebook, without running it."""
    text, where = _source(path)
    try:
        tree = parse(text, filename=str(path))
    except SyntaxError as exc:
        raise InputError(f"{where(exc.lineno or 0)}: syntax error: {exc.msg}") from None
    for node in tree.body:
        target = _assigned_name(node)
        if target == NAME:
            try:
                declaration = _literal(node.value)  # type: ignore[union-attr]
            except ValueError as exc:
                raise InputError(f"{where(node.lineno)}: {NAME} must be a literal dict of "
                                 f"strings, numbers, lists and dicts ({exc})") from None
            if not isinstance(declaration, dict):
                raise InputError(f"{where(node.lineno)}: {NAME} must be a literal dict, not "
                                 f"{type(declaration).__name__}")
            return declaration
    return {}


def _source(path: Path) -> tuple[str, Callable[[int], str]]:
    """The file's Python source (a notebook's code cells as one script) and how to cite a line
    of it (``file.py:12``; ``net.ipynb, cell 3, line 2``)."""
    if is_notebook(path):
        script = convert(path)
        return script.source, lambda line: str(path.parent / script.where(line))
    try:
        with tokenize.open(path) as stream:  # decoded as Python does: a BOM, a coding cookie
            return stream.read(), lambda line: f"{path}:{line}"
    except (UnicodeDecodeError, SyntaxError) as exc:  # SyntaxError: the coding line's
        why = exc.reason if isinstance(exc, UnicodeDecodeError) else exc.msg
        raise InputError(f"{path}: not Python source in UTF-8 or the encoding its coding line "
                         f"declares ({why})") from None


def _assigned_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        return node.target.id
    return None


def _literal(node: ast.expr) -> Any:
    """``ast.literal_eval`` that also accepts ``dict(key=literal, ...)`` calls."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
            and not node.args and all(k.arg for k in node.keywords):
        return {k.arg: _literal(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError(f"line {node.lineno}: '**' unpacking is not a literal")
        return {_literal(k): _literal(v)  # type: ignore[arg-type]
                for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"line {node.lineno}: {ast.unparse(node)!r} is not a literal") from None


def parse_json_option(text: str, what: str) -> dict[str, Any]:
    """A JSON object given inline or as the path of a ``.json`` file (``--spec``/``--adapter``)."""
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise InputError(f"{what}: {text!r} is neither JSON text nor an existing file")
        data = read_json(path)
    else:
        data = parse_json(text, what)
    if not isinstance(data, dict):
        raise InputError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def make_spec(data: Any, where: str) -> Spec:
    """The spec of a declaration's ``spec`` entry (an MLP's fields, a ``net`` layer list, or a
    spec with its ``family``), with the error pointing at ``where``; exit 2 for a spec whose
    parameters cannot be handed to the learner."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: no spec: give 'spec' in {NAME} or --spec")
    try:
        spec = spec_from_dict(with_verify_defaults(data))
        param_layers(spec)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: invalid spec: {exc}") from None
    return spec


def build_adapter(declaration: dict[str, Any], spec: Spec | None, where: str) -> Adapter:
    """Validate a declaration (``spec`` given separately overrides the declared one)."""
    unknown = sorted(set(declaration) - set(KEYS))
    if unknown:
        raise InputError(f"{where}: unknown {NAME} key(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(KEYS)}")
    spec = spec or make_spec(declaration.get("spec"), where)
    layout = _choice(declaration, "layout", LAYOUTS, "row", where)
    options = dict(
        layout=layout,
        **_map_layouts(declaration, spec, where),
        bias_shape=_choice(declaration, "bias_shape", BIAS_SHAPES, layout, where),
        labels=_choice(declaration, "labels", LABELS, "onehot", where),
        grads_reduction=_choice(declaration, "grads_reduction", ("sum", "mean"),
                                spec.reduction, where),
        grads_after=_choice(declaration, "grads_after", ("backward", "update"), "backward",
                            where),
    )
    if options["labels"] == "index" and spec.loss != "ce":
        raise InputError(f"{where}: labels 'index' needs the 'ce' loss, the spec has "
                         f"{spec.loss!r}")
    lr = declaration.get("lr", (declaration.get("optimizer") or {}).get("lr", 0.1))
    if "lr" in (declaration.get("optimizer") or {}) and declaration["optimizer"]["lr"] != lr:
        raise InputError(f"{where}: lr {lr!r} and optimizer lr "
                         f"{declaration['optimizer']['lr']!r} differ: give one")
    if isinstance(lr, bool) or not isinstance(lr, int | float | str) or \
            (not isinstance(lr, str) and not lr > 0):
        raise InputError(f"{where}: lr must be a positive number or a global's name, got {lr!r}")
    optimizer = _optimizer(declaration.get("optimizer"), where)
    if optimizer and "weight_decay" in optimizer:
        wd = optimizer["weight_decay"]
        if spec.weight_decay not in (0.0, wd):
            raise InputError(f"{where}: optimizer weight_decay {wd!r} and spec weight_decay "
                             f"{spec.weight_decay!r} differ: give one")
        spec = spec.with_(weight_decay=float(wd))
    steps = declaration.get("steps", DEFAULT_STEPS if optimizer else 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise InputError(f"{where}: steps must be a whole number from 1 to {MAX_STEPS}, "
                         f"got {steps!r}")
    relu_at_zero = declaration.get("relu_at_zero", "any")
    if relu_at_zero not in CONVENTIONS or isinstance(relu_at_zero, bool):
        raise InputError(f"{where}: relu_at_zero must be \"any\" or 0, got {relu_at_zero!r}")
    calls = {k: _expression(declaration[k], k, where) for k in CALLS if k in declaration}
    scalars = {k: _expression(declaration[k], k, where) for k in SCALARS if k in declaration}
    depth = _depth(spec)
    roles = {k: _per_layer(declaration[k], k, depth, where)
             for k in PER_LAYER if k in declaration}
    norm_roles = _norm_roles(declaration, spec, where)
    prelus = len(slope_layers(spec))
    roles |= {k: _per_layer(declaration[k], k, prelus, where)
              for k in SLOPE_ROLES if k in declaration}
    if not all(layer.bias for layer in param_layers(spec)):
        for role in ("b", "db", "b_new"):
            roles.pop(role, None)
    adapter = Adapter(spec, lr=lr, calls=calls, scalars=scalars, roles=roles,
                      optimizer=optimizer, steps=steps, relu_at_zero=relu_at_zero,
                      norm_roles=norm_roles, **options)
    _check_steps(adapter, where)
    return adapter


def _norm_roles(declaration: dict[str, Any], spec: Spec, where: str
                ) -> dict[str, list[str | None]]:
    """The per-norm-layer roles of :mod:`.norms`, one expression per norm layer."""
    given = [k for k in NORM_ROLES if k in declaration]
    layers = norm_layers(spec)
    if given and not layers:
        raise InputError(f"{where}: {', '.join(given)} declared, but the spec's network has no "
                         "batchnorm or layernorm layer")
    running = [k for k in given if k.startswith("running_")]
    if running and not any(layer.mean for layer in layers):
        raise InputError(f"{where}: {', '.join(running)} declared, but the spec's network has "
                         "no batchnorm layer (a layernorm keeps no running statistics)")
    return {k: _per_layer(declaration[k], k, len(layers), where, "norm layer") for k in given}


def _map_layouts(declaration: dict[str, Any], spec: Spec, where: str) -> dict[str, str]:
    """``maps``, ``kernel`` and ``flatten`` as declared (exit 2 for them on a network without
    feature maps)."""
    given = [k for k in ("maps", "kernel", "flatten") if k in declaration]
    if given and not has_maps(spec):
        raise InputError(f"{where}: {', '.join(given)} declared, but the spec's network has no "
                         "feature maps")
    maps = _choice(declaration, "maps", MAP_LAYOUTS, "NHWC", where)
    return {"maps": maps, "kernel": _choice(declaration, "kernel", KERNEL_LAYOUTS, "HWIO", where),
            "flatten": _choice(declaration, "flatten", MAP_LAYOUTS, maps, where)}


def _optimizer(value: Any, where: str) -> dict[str, Any] | None:
    """The declared ``optimizer`` dict, checked by building the reference optimiser from it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"{where}: optimizer must be a dict like {{'name': 'adam', 'lr': 0.01}}"
                         f", got {value!r}")
    unknown = sorted(set(value) - set(OPTIMIZER_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown optimizer key(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(OPTIMIZER_KEYS)}")
    for key, number in value.items():
        if key not in ("name", "variant") and (isinstance(number, bool)
                                               or not isinstance(number, int | float)):
            raise InputError(f"{where}: optimizer {key} must be a number, got {number!r}")
    if value.get("weight_decay", 0) < 0:
        raise InputError(f"{where}: optimizer weight_decay must be >= 0")
    try:
        Optimizer(**{"lr": 0.1, **{k: v for k, v in value.items() if k != "weight_decay"}})
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: optimizer: {exc}") from None
    return dict(value)


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], default: str,
            where: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise InputError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _expression(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: {NAME}[{key!r}] must be a Python expression as a string, "
                         f"got {value!r}")
    try:
        parse(value.replace("{i}", "0").replace("{l}", "1"), mode="eval")
    except SyntaxError as exc:
        raise InputError(f"{where}: {NAME}[{key!r}] = {value!r} is not a Python expression "
                         f"({exc.msg})") from None
    return value


def _per_layer(value: Any, key: str, depth: int, where: str,
               layer: str = "layer") -> list[str | None]:
    """One expression per layer from a ``{i}``/``{l}`` template or an explicit list."""
    if isinstance(value, str):
        if "{i}" not in value and "{l}" not in value:
            raise InputError(f"{where}: {NAME}[{key!r}] = {value!r} names one thing for "
                             f"{depth} {layer}s: use {{i}} (0-based) or {{l}} (1-based), or a "
                             "list")
        return [_expression(value.replace("{i}", str(i)).replace("{l}", str(i + 1)), key, where)
                for i in range(depth)]
    if isinstance(value, list):
        if len(value) != depth:
            raise InputError(f"{where}: {NAME}[{key!r}] lists {len(value)} expressions for "
                             f"{depth} {layer}s")
        return [None if v is None else _expression(v, key, where) for v in value]
    raise InputError(f"{where}: {NAME}[{key!r}] must be a template string or a list, "
                     f"got {value!r}")


def _check_steps(adapter: Adapter, where: str) -> None:
    declared = set(adapter.roles) | set(adapter.scalars) | set(adapter.norm_roles)
    if not adapter.calls.keys() & {"forward", "backward", "update"}:
        raise InputError(f"{where}: {NAME} names no step to run: give 'forward', 'backward' "
                         "and/or 'update' expressions")
    if "forward" not in adapter.calls and "backward" not in adapter.calls \
            and declared & {*FORWARD_ROLES, "output"}:
        raise InputError(f"{where}: z/h/output are declared but there is no 'forward' step")
    if adapter.grads_after == "update" and "update" not in adapter.calls:
        raise InputError(f"{where}: grads_after is 'update' but there is no 'update' step")
    if "backward" not in adapter.calls and declared & {*BACKWARD_ROLES, "loss"}:
        raise InputError(f"{where}: loss/delta/dW/db are declared but there is no 'backward' "
                         "step")
    if adapter.compares_updates and not ({"W", "W_new"} & set(adapter.roles)):
        raise InputError(f"{where}: an update is run but neither 'W' nor 'W_new' says where the "
                         "updated weights are")
    if not declared - {"W", "b", "gamma", "beta"} and not adapter.compares_updates:
        raise InputError(f"{where}: {NAME} exposes nothing to compare: declare output, z, h, "
                         "loss, delta, dW, db or the updated weights")
