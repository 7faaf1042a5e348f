"""The ``nnparity`` command line.

Each subcommand lives in ``nnparity/commands/<name>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Exit codes: 0 success, 1 a check failed,
2 bad usage or bad input, 130/143 stopped by SIGINT/SIGTERM (:mod:`nnparity.stopping`).
Expected errors print one line on stderr (``--debug`` shows the traceback); command modules
import frameworks only inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import traceback
import zipfile
from types import ModuleType

from nnparity import __version__, commands, jax_cache, supervisor
from nnparity.backends.registry import BackendUnavailable
from nnparity.errors import NnparityError
from nnparity.files import outputs
from nnparity.files.escape import terminal_line
from nnparity.stopping import Stopped, check_stop, stop_on_signals

ORDER = ("info", "check", "gradcheck", "fuzz", "train", "reproduce", "data", "verify", "vectors",
         "bench", "teach", "export")


def _command_modules() -> dict[str, ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return {n: importlib.import_module(f"nnparity.commands.{n}") for n in names}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="nnparity",
        description="Reference NumPy backpropagation and parity checks against PyTorch and "
        "TensorFlow.",
        epilog="Exit codes: 0 success, 1 a check failed, 2 bad usage or input (one line naming "
        "the file, option or value; the limits are in docs/limits.md), 130/143 stopped by "
        "Ctrl-C/SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"nnparity {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules().items():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks for errors")
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line (``argv``, else the process's own); returns the exit code. The
    process's own ``check`` of model files runs in a supervised child (:mod:`nnparity.supervisor`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    files = list(args.port or args.model_file or []) if args.command == "check" else []
    if files and argv is None and not supervisor.in_child():
        return supervisor.supervise(sys.argv[1:], files, f"nnparity {args.command}")
    jax_cache.enable()
    with stop_on_signals():
        code = _run(args)
    supervisor.finished(code)
    return code


def _run(args: argparse.Namespace) -> int:
    """The command's exit code; an expected error as one line on stderr (module docstring)."""
    try:
        code = int(args.run(args) or 0)
        check_stop()
        return code
    except KeyboardInterrupt as exc:
        stopped = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        kept = f"; kept {', '.join(stopped.kept)}" if stopped.kept else ""
        print(f"nnparity {args.command}: stopped by {stopped}{kept}", file=sys.stderr)
        return stopped.exit_code
    except (zipfile.BadZipFile, EOFError) as exc:
        if args.debug:  # the traceback, then the same line and exit code
            traceback.print_exc()
        print(f"nnparity {args.command}: error: a file is damaged or truncated "
              f"({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2
    except MemoryError as exc:
        if args.debug:  # the traceback, then the same line and exit code
            traceback.print_exc()
        detail = f" ({exc})" if str(exc) else ""
        print(f"nnparity {args.command}: error: out of memory{detail}: lower the sizes "
              "(--batch, --layers, --rows, ...)", file=sys.stderr)
        return 2
    except (NnparityError, BackendUnavailable, ValueError, OSError, FloatingPointError) as exc:
        if args.debug:  # the traceback, then the same line and exit code
            traceback.print_exc()
        code = exc.exit_code if isinstance(exc, NnparityError) else 2
        if isinstance(exc, FloatingPointError):
            code = 1
        print(f"nnparity {args.command}: error: {terminal_line(exc)}", file=sys.stderr)
        return code
    finally:
        outputs.release()  # FIFOs written to: their readers see the end of the stream
