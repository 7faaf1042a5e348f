"""The training capability: ``nnparity train`` runs, presets of the source documents,
checkpoints and resuming, ``reproduce`` and its figures."""
