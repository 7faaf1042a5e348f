"""``nnparity verify``: a learner's own backpropagation, side by side with the reference."""
