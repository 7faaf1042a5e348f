"""Every layer kind of the reference has a section on the teaching page (``nnparity teach``):
a new kind fails here until it gets one or an exemption naming why not."""

from __future__ import annotations

from nnparity.reference.layers import KINDS
from nnparity.teach.sections import blocks

SECTION_OF_KIND = {  # layer kind -> the page section that teaches it
    "dense": "dense", "conv2d": "conv-valid", "maxpool": "maxpool", "flatten": "flatten",
    "dropout": "dropout", "prelu": "prelu", "gelu": "gelu", "layernorm": "layernorm",
    "batchnorm": "batchnorm", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu",
    "identity": "identity", "relu3": "relu3", "avgpool": "avgpool",
    "global_avgpool": "global-avgpool", "residual": "residual"}
WITHOUT_SECTION = {  # layer kind -> why the page has no section for it yet
    "leaky_relu": "not written yet (issue 22)"}


def test_every_layer_kind_has_a_teaching_section_or_an_exemption() -> None:
    missing = sorted(set(KINDS) - set(SECTION_OF_KIND) - set(WITHOUT_SECTION))
    assert not missing, f"no teaching section for layer kind(s) {', '.join(missing)}"
    keys = {block.key for block in blocks()}
    absent = {kind: key for kind, key in SECTION_OF_KIND.items() if key not in keys}
    assert not absent, f"sections named for kinds are not on the page: {absent}"


def test_the_exemptions_are_current() -> None:
    stale = sorted(set(WITHOUT_SECTION) - set(KINDS))
    assert not stale, f"exempted kinds that do not exist: {stale}"
    assert not set(WITHOUT_SECTION) & set(SECTION_OF_KIND)
