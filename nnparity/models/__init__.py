"""Users' own PyTorch and Keras models checked against the reference (``nnparity check
--model-file``): loading the file (:mod:`.source`), mapping its traced structure onto a spec
(:mod:`.structure`), running the user's model (:mod:`.torch_model`, :mod:`.keras_model`), the
check (:mod:`.check`), ports between two files (:mod:`.port`, ``--port``), the weight-conversion
mistakes a port's weights are searched for (:mod:`.conversion`), weights in the frameworks' own
files (:mod:`.native_weights`) and diagnoses (:mod:`.diagnose`)."""
