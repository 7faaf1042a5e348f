"""``nnparity fuzz``: random ``net`` specs run on every backend against the reference, each
disagreement shrunk to a small spec that ``nnparity check --spec`` replays.

Modules, one job each: :mod:`.draw` (the seeded specs, a field generator per layer kind),
:mod:`.run` (one spec on the backends, one task of a run), :mod:`.shrink` (the delta-debugging
loop), :mod:`.findings` (the ``--json`` document and the spec files). Tasks run in this process
or on a Dask cluster through :mod:`nnparity.cluster`.
"""
