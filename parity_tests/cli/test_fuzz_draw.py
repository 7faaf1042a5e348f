"""``nnparity fuzz``'s drawing and shrinking, without running a backend: every layer kind has a
field generator, every spec drawn is valid, the same seed draws the same specs, and the shrink
loop reaches a minimal failing spec."""

from __future__ import annotations

from collections import Counter

from nnparity.fuzz.draw import GENERATORS, draw
from nnparity.fuzz.shrink import shrink
from nnparity.reference.layers import KINDS
from nnparity.reference.netspec import NetSpec

DRAWS = 400


def test_every_layer_kind_has_a_field_generator() -> None:
    missing = sorted(set(KINDS) - set(GENERATORS))
    assert not missing, (f"layer kind(s) {', '.join(missing)} have no field generator in "
                         "nnparity/fuzz/draw.py GENERATORS: add one row per kind")
    assert not sorted(set(GENERATORS) - set(KINDS)), "a generator for a kind that does not exist"


def test_drawn_specs_are_valid_and_cover_every_kind() -> None:
    kinds: Counter[str] = Counter()
    for index in range(DRAWS):
        drawn = draw(7, index)
        spec = NetSpec.from_dict(drawn.spec)
        assert len(spec.net) == len(drawn.spec["net"])
        kinds.update(layer["kind"] for layer in drawn.spec["net"])
    assert sorted(set(KINDS) - set(kinds)) == []
    for field in ("loss", "reduction", "dtype", "init"):
        assert len({draw(7, i).spec[field] for i in range(DRAWS)}) > 1, field
    assert len({draw(7, i).optimizer for i in range(DRAWS)}) == 3


def test_same_seed_draws_the_same_specs_in_any_order() -> None:
    forward = [draw(1, i) for i in range(20)]
    backward = [draw(1, i) for i in reversed(range(20))][::-1]
    assert forward == backward
    assert [d.spec for d in forward] != [draw(2, i).spec for i in range(20)]


def test_shrink_keeps_what_fails_and_drops_the_rest() -> None:
    drawn = next(d for d in (draw(3, i) for i in range(200))
                 if len(d.spec["net"]) >= 6 and any(x["kind"] == "tanh" for x in d.spec["net"]))
    calls = []

    def fails(spec: dict) -> bool:
        calls.append(spec)
        return any(layer["kind"] == "tanh" for layer in spec["net"])

    shrunk = shrink(drawn.spec, fails)
    kinds = [layer["kind"] for layer in shrunk.spec["net"]]
    assert "tanh" in kinds and len(kinds) <= 3, kinds
    assert shrunk.runs == len(calls) <= 60
    NetSpec.from_dict(shrunk.spec)
    assert shrink(drawn.spec, fails, budget=2).runs <= 2
