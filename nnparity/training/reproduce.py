"""``nnparity reproduce``: train the source documents' configurations and set our figures beside
theirs.

Each row trains one preset for several seeds and reports the final test accuracy as mean and
spread (min-max), with the seed's reported figure and the wall time per run. ``quick`` runs a
shortened version (one seed, at most ``QUICK_EPOCHS`` epochs, long full-batch runs cut to a
tenth, image sets cut to ``QUICK_ROWS`` training rows): a smoke test of the pipeline, not a
reproduction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context

import numpy as np

from nnparity.backends import registry
from nnparity.backends.determinism import apply_determinism
from nnparity.cluster import connect
from nnparity.datasets import catalog
from nnparity.parallel import blas_threads_per_worker, die_with_parent, worker_count
from nnparity.reference.train import Trainer, error_rate
from nnparity.training.presets import preset
from nnparity.training.run import TrainConfig, run_training

QUICK_EPOCHS = 2
QUICK_ROWS = 2000


@dataclass(frozen=True)
class Row:
    """One configuration to reproduce: a preset and what the source document reported for it."""

    label: str
    preset: str
    reported: str
    seeds: int | None = None  # fewer seeds than the command's for expensive rows
    probes: tuple[int, ...] = ()  # also report accuracy on the batch about to train at these steps


ROWS = (
    Row("BP lecture MNIST sigmoid [30,20,10], SGD 0.03", "seed000-mnist-sigmoid", "96.17 %"),
    Row("BP lecture MNIST relu [30,5,10], SGD 0.001", "seed000-mnist-relu", "96.18 %"),
    Row("BP lecture iris [20,20,3] sigmoid", "seed000-iris", "(no figure)"),
    Row("Notes' TwoLayerNet 784-50-10", "seed002-twolayer", "(no figure)"),
    Row("Notes' FC 784-256-PReLU-10, SGD 0.1", "seed002-fc-prelu-lr0.1", "97.39 %"),
    Row("Notes' FC 784-256-PReLU-10, SGD 0.01", "seed002-fc-prelu-lr0.01", "92.61 %"),
    Row("NumPy blog iris ThreeNet 20/20", "seed003-iris", "100 %"),
    Row("NumPy blog MNIST ThreeNet 200/80", "seed003-mnist", "97.92 %"),
    Row("Fashion-MNIST softmax MLP 256/128 (the report: 32.15 % by regression)",
        "fashion-mlp",
        "> 88 % expected"),
    Row("Notes' CNN, Adam 1e-4, batch 50, their 1000 steps", "seed002-cnn-1000",
        "batch accuracy at steps 0-700: 6, 82, 92, 98, 94, 96, 94, 98 %; test accuracy not shown",
        seeds=1, probes=tuple(range(0, 1000, 100))),
    Row("Notes' CNN, Adam 1e-4, batch 50, 5 epochs", "seed002-cnn",
        "98 % batch accuracy at step 700", seeds=1, probes=(700,)),
    Row("Notes' CNN, Adam 1e-4, batch 50, 20,000 steps (beyond the notes)", "seed002-cnn-20000",
        "≥ 99.0 % (our target)", seeds=1),
    Row("Fashion-MNIST, the notes' CNN, 15 epochs", "fashion-cnn", "> 91 % expected",
        seeds=1),
    Row("Notes' CNN with batchnorm after each conv, 1000 steps (beyond the notes)",
        "seed002-cnn-bn", "(no figure)", seeds=1),
)


@dataclass
class Outcome:
    """Accuracies (%) over seeds, and seconds per run."""

    row: Row
    backend: str
    accuracies: list[float] = field(default_factory=list)
    first_epoch: list[float] = field(default_factory=list)
    probes: list[list[float]] = field(default_factory=list)  # per seed, one per probe step
    seconds: list[float] = field(default_factory=list)
    dataset_note: str = ""

    @property
    def summary(self) -> str:
        """Final test accuracy (mean and spread), with the step probes (mean over seeds) and
        epoch 1 (when the run has more than one epoch)."""
        acc = np.array(self.accuracies)
        text = f"{acc[0]:.2f} %" if len(acc) == 1 else (
            f"{acc.mean():.2f} % ({acc.min():.2f}-{acc.max():.2f}, {len(acc)} seeds)")
        steps = self.row.probes
        if self.probes:
            span = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}-{steps[-1]}"
            values = ", ".join(f"{v:.0f}" for v in np.mean(self.probes, axis=0))
            text += f"; batch accuracy at {span}: {values} %"
        if self.first_epoch:
            text += f"; after epoch 1: {np.mean(self.first_epoch):.2f} %"
        return text


def quick_config(config: TrainConfig) -> TrainConfig:
    """The shortened run of ``--quick``."""
    epochs = config.epochs // 10 if config.epochs > 1000 else min(config.epochs, QUICK_EPOCHS)
    rows = QUICK_ROWS if config.dataset in catalog.DATASETS else config.n_train
    return TrainConfig.from_dict({**config.__dict__, "epochs": max(epochs, 1), "n_train": rows})


@dataclass
class SeedRun:
    """One seed's run of a row: final and first-epoch test accuracy (%; no first epoch for a
    one-epoch run), the step probes, time."""

    accuracy: float
    first_epoch: float | None
    probes: list[float]
    seconds: float
    dataset_note: str


def run_seed(row: Row, seed: int, backend: str, quick: bool, data_dir: str | None,
             variant: str | None = None, threads: int | None = None) -> SeedRun:
    """Train ``row`` once with ``seed`` (a module-level function, so worker processes can run
    it), in the optimiser ``variant`` given or else the backend's native one, under the
    determinism profile with ``threads`` framework threads (``None``: ``$NNPARITY_THREADS`` or
    1), as ``nnparity train`` runs."""
    apply_determinism(threads=threads, seed=seed)
    config = TrainConfig.from_dict({**preset(row.preset), "seed": seed, "backend": backend,
                                    "variant": variant})
    if quick:
        config = quick_config(config)
    probes: list[float] = []
    started = time.perf_counter()
    result = run_training(config, data_dir=data_dir, force=True,
                          on_step=_probe(row.probes, probes) if row.probes else None)
    epochs = result.history.epochs
    first = 100 * (1 - epochs[0].test_error) if len(epochs) > 1 else None
    return SeedRun(100 * (1 - epochs[-1].test_error), first, probes,
                   time.perf_counter() - started, result.split.note)


def reproduce(
    rows: list[Row], *, plan: list[tuple[str, int]], quick: bool, data_dir: str | None,
    on_done: Callable[[Outcome], None] | None = None, jobs: int = 1, threads: int | None = None,
    scheduler: str | None = None,
) -> list[Outcome]:
    """Train every row on each ``(backend, seeds)`` of ``plan`` (one seed when ``quick``; a
    row's own ``seeds`` caps it), row by row, ``jobs`` seeds at a time in worker processes (never
    more workers than the most seeds of a row: :func:`nnparity.parallel.worker_count`; the
    results do not depend on ``jobs``), each with ``threads`` framework threads. With a Dask
    ``scheduler`` address, every seed's run of every row is one task on that cluster instead
    (:mod:`nnparity.cluster`): the same outcomes, each reported when its last seed is in."""
    outcomes = []

    def count(row: Row, seeds: int) -> int:
        return 1 if quick else min(seeds, row.seeds or seeds)

    if scheduler is not None:
        runs = [SeedTask(row, backend, seed) for row in rows for backend, seeds in plan
                for seed in range(count(row, seeds))]
        return _on_cluster(runs, scheduler, partial(_run_task, quick=quick, data_dir=data_dir,
                                                    threads=threads), on_done)
    workers = worker_count(jobs, max(count(row, seeds) for row in rows for _, seeds in plan))
    pool = None
    if workers > 1:
        with blas_threads_per_worker(workers):  # the cores shared out, not a BLAS pool each
            pool = get_context("spawn").Pool(workers, initializer=die_with_parent)
    try:
        for row in rows:
            for backend, seeds in plan:
                one = partial(run_seed, row, backend=backend, quick=quick, data_dir=data_dir,
                              threads=threads)
                outcome = Outcome(row, backend)
                for r in (pool.map if pool else map)(one, range(count(row, seeds))):
                    _add(outcome, r)
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome)
    except BaseException:  # Ctrl-C, SIGTERM turned into an exception, an error: stop the workers
        if pool:
            pool.terminate()
        raise
    finally:
        if pool:
            pool.close()
            pool.join()
    return outcomes


def _add(outcome: Outcome, run: SeedRun) -> None:
    """One seed's run into its row's outcome."""
    outcome.accuracies.append(run.accuracy)
    outcome.first_epoch.extend([] if run.first_epoch is None else [run.first_epoch])
    if run.probes:
        outcome.probes.append(run.probes)
    outcome.seconds.append(run.seconds)
    outcome.dataset_note = run.dataset_note


@dataclass(frozen=True)
class SeedTask:
    """One training run of a cluster's reproduce: ``row`` on ``backend`` with ``seed``."""

    row: Row
    backend: str
    seed: int


def _run_task(task: SeedTask, quick: bool, data_dir: str | None,
              threads: int | None) -> SeedRun:
    return run_seed(task.row, task.seed, task.backend, quick, data_dir, threads=threads)


def _on_cluster(runs: list[SeedTask], scheduler: str, train: Callable[[SeedTask], SeedRun],
                on_done: Callable[[Outcome], None] | None) -> list[Outcome]:
    """Every run of ``runs`` a task on ``scheduler``; outcomes in ``runs``' order, each passed
    to ``on_done`` as soon as its seeds are all in (a seed's results in seed order)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, task in enumerate(runs):
        groups.setdefault((task.row.preset, task.backend), []).append(index)
    results: dict[int, SeedRun] = {}
    outcomes: dict[tuple[str, str], Outcome] = {}
    with connect(scheduler) as cluster:
        for done in cluster.run(train, runs):
            results[done.index] = done.value
            task = runs[done.index]
            key = (task.row.preset, task.backend)
            if all(i in results for i in groups[key]):
                outcome = outcomes[key] = Outcome(task.row, task.backend)
                for i in groups[key]:
                    _add(outcome, results[i])
                if on_done:
                    on_done(outcome)
    return [outcomes[key] for key in groups]


def _probe(
    steps: tuple[int, ...], probes: list[float]
) -> Callable[[Trainer, int, np.ndarray, np.ndarray], None]:
    """The three-framework notes' measurement: accuracy on the batch about to be trained at each
    of ``steps`` (evaluated without dropout, before the update), appended to ``probes``."""

    def on_step(trainer: Trainer, step: int, x: np.ndarray, y: np.ndarray) -> None:
        if step in steps:
            probes.append(100 * (1 - error_rate(trainer.predict(x), y)))

    return on_step


def cell(outcome: Outcome) -> str:
    """One backend's cell of the results table: the summary and the seconds per run."""
    return f"{outcome.summary} · {np.mean(outcome.seconds):.1f} s/run"


def markdown_table(outcomes: list[Outcome], quick: bool) -> str:
    """The results table (docs/reproduction.md): a row per configuration, a column per backend
    that ran."""
    backends = [name for name in registry.NAMES if any(o.backend == name for o in outcomes)]
    by_row: dict[str, dict[str, Outcome]] = {}
    for o in outcomes:
        by_row.setdefault(o.row.preset, {})[o.backend] = o
    lines = ["| configuration | preset | reported | " + " | ".join(backends) + " |",
             "|---|---|---|" + "---|" * len(backends)]
    for cells in by_row.values():
        first = next(iter(cells.values()))
        note = f" [{first.dataset_note}]" if first.dataset_note else ""
        shown = [cell(cells[b]) if b in cells else "–" for b in backends]
        lines.append(f"| {first.row.label}{note} | `{first.row.preset}` | {first.row.reported} | "
                     + " | ".join(shown) + " |")
    if quick:
        lines.append("\n(--quick: shortened runs, not reproductions)")
    return "\n".join(lines)
