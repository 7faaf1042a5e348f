"""``nnparity teach --out DIR``: build the static teaching page (``index.html``, ``style.css``,
figures and model files beside it; no network, no CDN).

Everything on the page is produced during the build: the reference's code is read from the live
functions, every parity number is measured now, the traps run now, the model files are exported
now, the training curves come from a run made now (or from metrics files given).
"""

from __future__ import annotations

import contextlib
import inspect
import platform
import tempfile
import time
from datetime import UTC, datetime
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType

import numpy as np

from nnparity.backends.compare import TOLERANCES
from nnparity.export.writers import WRITERS
from nnparity.files.atomic import remove_leftovers, write_text
from nnparity.files.escape import html_url
from nnparity.files.outputs import make_output_folder
from nnparity.stopping import check_stop
from nnparity.training.presets import preset
from nnparity.training.run import TrainConfig, run_training

from . import (
    backward_exercise,
    cnn_exercises,
    exercises,
    figures,
    gpu_report,
    norm_exercises,
    page,
    residual_exercise,
    textbook,
)
from .backward_exercise import BackwardExercise
from .derivations import CITES, DERIVATIONS
from .measure import DTYPES, FRAMEWORKS, Framework, Measurement, load, measure
from .networks import SEED_NETWORKS, model_file, write_networks
from .sections import Block, blocks
from .sources import BY_KEY, SOURCES
from .traps import TRAPS

TITLE = "Backpropagation, four ways, measured"
LIVE_RUN = "seed000-iris"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _numpy_pane(block: Block) -> str:
    """The textbook form, and the reference's own code in a fold."""
    reference = "\n\n".join(f"# {name}\n" + inspect.getsource(fn)
                            for name, fn in block.sources())
    form = getattr(textbook, block.function)
    return (page.code(page.source_of(form, textbook))
            + page.fold("how the reference makes it fast",
                        "<p>The reference's code (read from its source now); a test asserts that "
                        "the textbook form above equals it on random float64 inputs.</p>"
                        + page.code(reference)))


def _framework_pane(block: Block, feed: ModuleType) -> str:
    """The code a user writes, and the harness that feeds it the example in a fold."""
    shown = feed.BLOCKS
    harness = feed.feeder(block.function)
    return (page.code(page.source_of(getattr(shown, block.function), shown))
            + page.fold("the harness that feeds it the example (not part of the lesson)",
                        page.code(page.source_of(harness, feed))))


def _exercise_part(key: str) -> str:
    """The section's exercise, its planted bug run through ``nnparity verify`` now; or why the
    section has none."""
    cnn = cnn_exercises.BY_KEY.get(key)
    if cnn is not None:
        return _cnn_exercise_part(cnn)
    module: ModuleType = next((m for m in (norm_exercises, residual_exercise)
                               if key in m.BY_KEY), exercises)
    exercise = module.BY_KEY.get(key)
    if exercise is None:
        return (f'<p class="note">No exercise: {page.esc(exercises.WITHOUT_EXERCISE[key])}.'
                "</p>")
    with tempfile.TemporaryDirectory(prefix="nnparity-exercise-") as folder:
        _, result = module.verify(exercise, "bug", Path(folder))
    return page.exercise(exercise.task, exercise.file_name, exercise.function,
                         module.declaration_source(exercise),
                         (backward_exercise.stub if isinstance(exercise, BackwardExercise)
                          else exercises.stub)(exercise), exercise.bug, exercise.solution, result,
                         " ".join(exercise.options))


def _cnn_exercise_part(exercise: cnn_exercises.CNNExercise) -> str:
    with tempfile.TemporaryDirectory(prefix="nnparity-exercise-") as folder:
        path = Path(folder) / f"bug_{exercise.file_name}"
        path.write_text(cnn_exercises.source(exercise, "bug"))
        _, result = exercises.verify_file(path, exercise.options)
    return page.exercise(exercise.task, exercise.file_name, " and ".join(exercise.functions),
                         cnn_exercises.declaration_source(exercise),
                         cnn_exercises.stubs(exercise), exercise.planted, exercise.solution,
                         result, " ".join(exercise.options))


def _block_section(block: Block, modules: dict[str, ModuleType | str]) -> str:
    cols = [("NumPy: the textbook form", _numpy_pane(block))]
    results: list[tuple[Framework, str | list[Measurement]]] = []
    for framework in FRAMEWORKS:
        module = modules[framework.key]
        if isinstance(module, str):
            cols.append((framework.title, f'<p class="note">not installed: {page.esc(module)}'
                                          "</p>"))
            results.append((framework, module))
            continue
        cols.append((framework.title, _framework_pane(block, module)))
        results.append((framework, [measure(block, module, dtype) for dtype in DTYPES]))
    body = (f"<p>{page.esc(block.intro)}</p>"
            f'<div class="formulas"><div><h4>{block.labels[0]}</h4>{page.math(block.forward)}'
            f"</div><div><h4>{block.labels[1]}</h4>{page.math(block.backward)}</div></div>"
            f'<p class="shapes">Shapes: {page.esc(block.shapes)}</p>'
            + page.derivation(DERIVATIONS[block.key])
            + page.citations([BY_KEY[key] for key in CITES[block.key]])
            + page.columns(cols)
            + "<h4>Measured now, on the fixed example above (max over its tensors)</h4>"
            + page.parity_table(block.key, results)
            + _exercise_part(block.key))
    return page.section(block.key, block.title, body)


def _tf32_section() -> str:
    found = gpu_report.latest()
    if found is None:
        body = ("<p>TF32 (TensorFloat-32) lets an NVIDIA GPU round the inputs of float32 matrix "
                "products to a 10-bit mantissa (a relative rounding of up to 2^-11, about 5e-4), "
                "far above the float32 tolerance of 1e-5. It cannot be recomputed on a CPU, so "
                "this section reads a committed report.</p>"
                '<p class="note">No GPU measurement has been committed yet. '
                f"{page.esc(gpu_report.HOW)}</p>")
    else:
        path, data = found
        where = gpu_report.where(data) or "environment not given"
        body = (f"<p>From the committed report <code>{page.esc(path.name)}</code>, created "
                f"{page.esc(data.get('created'))} ({page.esc(where)}),"
                f" command {page.esc(data.get('command'))}: summary "
                f"{page.esc(data.get('summary'))}. Worst float32 errors:</p>"
                + page.table(("backend", "where", "max rel"), gpu_report.worst_float32(data))
                + f'<p class="note">Not recomputed here (no GPU). {page.esc(gpu_report.HOW)}</p>')
    return page.section("trap-tf32", "Trap: TF32 on a GPU", body)


ACTIVATIONS_FIGURE = "figures/activations.svg"


def training_figure(stem: str) -> str:
    """The figure of a training run (the live one, or a metrics file's), relative to the page."""
    return f"figures/train-{stem}.svg"


def files_written(out: Path, metrics: list[Path]) -> list[Path]:
    """Every file :func:`build` writes into ``out`` (checked against the inputs up front)."""
    names = ["index.html", "style.css", ACTIVATIONS_FIGURE, training_figure(LIVE_RUN),
             *(training_figure(path.stem) for path in metrics),
             *(model_file(preset, framework) for preset, _ in SEED_NETWORKS
               for framework in WRITERS)]
    return [out / name for name in names]


def _figures_section(out: Path, metrics: dict[Path, dict[str, np.ndarray]]) -> str:
    plt = figures.pyplot()
    if plt is None:
        return page.section("figures", "Figures", '<p class="note">not installed: matplotlib '
                            "(pip install nnparity[teach]) draws the figures.</p>")
    figures.activation_curves(plt, out / ACTIVATIONS_FIGURE)
    parts = ["<h3>Activations and their derivatives (the reference's functions)</h3>",
             f'<img class="figure" src="{html_url(ACTIVATIONS_FIGURE)}" alt="activation curves">']
    config = TrainConfig.from_dict(preset(LIVE_RUN))
    start = time.perf_counter()
    history = run_training(config).history
    seconds = time.perf_counter() - start
    columns = {"epoch": [], "loss": [], "train_error": [], "test_error": []}
    for record in history.epochs:
        for key, values in columns.items():
            values.append(getattr(record, key))
    figures.training_curves(plt, {k: np.array(v) for k, v in columns.items()},
                            LIVE_RUN, out / training_figure(LIVE_RUN))
    parts += [f"<h3>Training: the BP lecture's iris network ({LIVE_RUN})</h3>",
              f"<p>Source run: <code>nnparity train --preset {LIVE_RUN}</code> (numpy backend, "
              f"seed {config.seed}, {config.epochs} epochs), made while generating this page in "
              f"{seconds:.1f} s; final test error "
              f"{100 * history.epochs[-1].test_error:.2f} %.</p>",
              f'<img class="figure" src="{html_url(training_figure(LIVE_RUN))}" '
              'alt="training curves">']
    for path, columns in metrics.items():
        figures.training_curves(plt, columns, path.name, out / training_figure(path.stem))
        parts += [f"<h3>Training: {page.esc(path.name)}</h3>",
                  f"<p>Source run: the metrics file <code>{page.esc(path.name)}</code> "
                  "(written by <code>nnparity train --metrics</code>).</p>",
                  f'<img class="figure" src="{html_url(training_figure(path.stem))}" '
                  'alt="training curves">']
    return page.section("figures", "Figures", "".join(parts))


def _intro(modules: dict[str, ModuleType | str]) -> str:
    rows = [("numpy (the reference)", _version("numpy"))]
    rows += [(f.title, _version(f.distribution) if not isinstance(modules[f.key], str)
              else "not installed") for f in FRAMEWORKS]
    tolerances = ", ".join(f"{dtype} {family}: {tol:g}" for (dtype, family), tol in
                           TOLERANCES.items())
    body = ("<p>Each building block of backpropagation, four ways: the formula and its "
            "derivation, the textbook form in NumPy (equal, by a test, to the reference's "
            "optimised code, which a fold shows as read from its source when this page was "
            "generated), and the PyTorch, Keras and JAX code a user writes. The framework code "
            "shown is the code that was run to produce the numbers beside it (the harness that "
            "feeds it the example's weights is in a fold): on a fixed small example, in "
            "float64 and float32, each output is compared with the reference's (max abs and max "
            "rel error; relative to the reference tensor's largest entry). Tolerances: "
            f"{page.esc(tolerances)}. Framework code works in its framework's own layout "
            "(PyTorch: NCHW, OIHW, Linear.weight [D_out, D_in]); the harness converts from and "
            "to the reference's (NHWC, HWIO, W [D_in, D_out]).</p>"
            + page.table(("framework", "version"), rows))
    return page.section("about", "What this page shows", body, "intro")


def build(out: Path, metrics: dict[Path, dict[str, np.ndarray]] | None = None) -> Path:
    """Write the page into ``out`` with the training curves of ``metrics`` (metrics files read by
    :func:`.figures.read_metrics`, by path); returns the path of ``index.html``.

    Temporary files left in ``out`` by a build that was killed outright are removed first; a
    build that fails or is stopped removes the folders it created that are still empty (the
    files it finished stay)."""
    folders = (out, out / "models", out / "figures")  # the page's own folders inside ``out``
    created = [folder for folder in folders if not folder.exists()]
    make_output_folder(out)
    for folder in folders:
        folder.mkdir(exist_ok=True)
        remove_leftovers(folder)
    try:
        return _write(out, metrics or {})
    except BaseException:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise


def _write(out: Path, metrics: dict[Path, dict[str, np.ndarray]]) -> Path:
    start = time.perf_counter()
    modules = {f.key: load(f) for f in FRAMEWORKS}
    loaded = {k: m for k, m in modules.items() if not isinstance(m, str)}
    all_blocks = blocks()
    parts = [_intro(modules)]
    nav = [("about", "What this page shows")]
    for block in all_blocks:
        check_stop()  # between sections: a stop swallowed by a framework's hook
        parts.append(_block_section(block, modules))
        nav.append((block.key, block.title))
    for trap in TRAPS:
        check_stop()
        parts.append(page.section(trap.key, trap.title, page.trap_body(
            trap.text, inspect.getsource(trap.run), trap.run(loaded)), "trap"))
        nav.append((trap.key, trap.title))
    parts.append(_tf32_section())
    nav.append(("trap-tf32", "Trap: TF32 on a GPU"))
    for seed in write_networks(out):
        check_stop()
        key = f"net-{seed.preset}"
        parts.append(page.section(key, seed.title, page.network_section(seed), "network"))
        nav.append((key, seed.title))
    parts.append(_figures_section(out, metrics))
    nav.append(("figures", "Figures"))
    parts.append(page.section("sources", "Sources", page.source_list(SOURCES), "sources"))
    nav.append(("sources", "Sources"))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = (f"Generated by <code>nnparity teach</code> on {stamp} in "
              f"{time.perf_counter() - start:.1f} s (Python {platform.python_version()}, "
              f"{page.esc(platform.machine())}).")
    css = resources.files("nnparity.teach").joinpath("style.css").read_text()
    write_text(out / "style.css", page.stylesheet(css))
    index = out / "index.html"
    write_text(index, page.document(TITLE, nav, "".join(parts), footer))
    return index
