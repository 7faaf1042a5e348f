"""``nnparity verify``: a learner's own backpropagation, side by side with the reference.

Modules, one job each: :mod:`.adapters` (the ``NNPARITY`` declaration), :mod:`.layout` (the
learner's layout <-> canonical), :mod:`.child` and :mod:`.runner` (the learner's code in a
subprocess), :mod:`.problem` (the test batch and the reference's tensors), :mod:`.diagnose`
(numerically checked causes), :mod:`.session` (compare and judge), :mod:`.output` (table, JSON,
JUnit), :mod:`.vectors` and :mod:`.vectors_doc` (golden vectors for other languages).
"""
