"""``nnparity export``: a spec as a standalone, idiomatic model file per framework.

:mod:`.graph` turns a spec into a neutral list of layers (with TensorFlow's SAME padding worked
out); one writer per framework (:mod:`.torch_file`, :mod:`.keras_file`, :mod:`.jax_file`,
:mod:`.numpy_file`) renders it as Python source that imports only its framework (never nnparity).
"""
