"""The learner file the sandbox tests build on: a declared two-layer forward pass, to which
each test appends the behaviour it probes (imported by the tests beside this file)."""

HEADER = """\
import os, subprocess, sys, time
import numpy as np

NNPARITY = {
    "spec": {"input_dim": 3, "layers": [4, 2], "activations": ["tanh", "identity"],
             "loss": "l2", "reduction": "sum"},
    "forward": "forward(x, W1, b1, W2, b2)",
    "z": "out[{i}]",
}


def forward(x, W1, b1, W2, b2):
    z1 = x @ W1 + b1
    return [z1, np.tanh(z1) @ W2 + b2]
"""
