"""``nnparity info``: versions, installed backends and the machine."""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

from nnparity import __version__
from nnparity.backends import registry
from nnparity.backends.determinism import describe, prepare_tensorflow_environment

HELP = "show versions, installed backends and the machine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def _framework_version(name: str) -> str:
    module = {"numpy": np}.get(name) or sys.modules.get(name)
    return getattr(module, "__version__", "?")


def run(args: argparse.Namespace) -> int:
    prepare_tensorflow_environment()
    print(f"nnparity   {__version__}")
    print(f"python     {platform.python_version()} ({platform.machine()}, {os.cpu_count()} CPUs)")
    print(f"platform   {platform.platform()}")
    env = describe()
    print(f"cpu        {env['cpu']}")
    print(f"oneDNN     TF_ENABLE_ONEDNN_OPTS={env['TF_ENABLE_ONEDNN_OPTS']}")
    print("backends:")
    for name, why in registry.status().items():
        state = f"installed ({_framework_version(name)})" if why is None else why
        print(f"  {name:<11}{state}")
    return 0
