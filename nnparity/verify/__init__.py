"""``nnparity verify``: a learner's own backpropagation, side by side with the reference.

Modules, one job each: :mod:`.adapters` (the ``NNPARITY`` declaration), :mod:`.layout` (the
learner's layout <-> canonical), :mod:`.sandbox` (the confined, bounded learner process; the
fallback without bubblewrap: :mod:`.fallback`, :mod:`.launcher`, :mod:`.confine`; the scratch
copy: :mod:`.scratch`),
:mod:`.child` and :mod:`.runner` (the learner's code in that process, its results back over a
pipe), :mod:`.problem` (the test batch and the reference's tensors), :mod:`.mistakes` (the
reference with a classic mistake built in), :mod:`.diagnose` (numerically checked causes),
:mod:`.edges` (the edge-case verdict),
:mod:`.session` (compare and judge), :mod:`.grade` (one file or many), :mod:`.output` (table,
JSON, JUnit, one line per student), :mod:`.vectors` and :mod:`.vectors_doc` (golden vectors for
other languages).
"""
