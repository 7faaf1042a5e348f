"""The speed capability (``nnparity bench``): backends timed in one run, the bare NumPy floor
and framework loops beside them, sweeps and peak memory; not tests."""
