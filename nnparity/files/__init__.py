"""Files in and out: the one atomic writer, the one reader of ``.npz`` and of JSON input, weight
files, the rule for output paths, and the one escaping rule per target."""
