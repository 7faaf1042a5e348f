"""Bugs planted into the correct examples of examples/verify by text substitution (a student's
classic mistakes), each with the first divergence verify must locate and the diagnosis it must
name. Imported by the tests beside this file; ``test_verify_examples.py`` counts their codes as
diagnoses with an example."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "verify"


@dataclass(frozen=True)
class Planted:
    """``example`` with each ``(old, new)`` of ``edits`` applied (each ``old`` must occur),
    verified with ``args``; verify must fail first at ``first`` and name ``code``."""

    example: str
    edits: tuple[tuple[str, str], ...]
    first: tuple[str, str]
    code: str
    args: tuple[str, ...] = ()

    def write(self, folder: Path, name: str) -> Path:
        """The faulty file ``<name>.py`` in ``folder``."""
        text = (EXAMPLES / f"{self.example}.py").read_text()
        for old, new in self.edits:
            assert old in text, f"{self.example}: {old!r} not found"
            text = text.replace(old, new)
        path = folder / f"{name}.py"
        path.write_text(text)
        return path


SQUARE = ('--spec={"input_dim": 3, "layers": [6, 6], "activations": ["relu", "identity"], '
          '"loss": "ce", "reduction": "mean", "weight_decay": 1e-3}')  # W2 [6, 6]

CNN = {
    "kernel_not_flipped": Planted(
        "correct_cnn_loops",
        (("rotated = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)",
          "rotated = W.transpose(1, 0, 2, 3)"),),
        ("delta", "conv1"), "kernel-flip"),
    "flatten_order": Planted(
        "correct_cnn_loops",
        (("self.flat = self.pooled.reshape(len(x), -1)",
          "self.flat = self.pooled.transpose(0, 2, 3, 1).reshape(len(x), -1)"),
         ("dpooled = (self.d3 @ p[\"W3\"].T).reshape(self.pooled.shape)",
          "dpooled = (self.d3 @ p[\"W3\"].T).reshape(\n"
          "            self.pooled.transpose(0, 2, 3, 1).shape).transpose(0, 3, 1, 2)")),
        ("forward", "z.dense1"), "flatten-order"),
    "flatten_nchw_declared_nhwc": Planted(
        "correct_cnn_im2col",
        (("self.flat = self.pooled.reshape(len(x), -1)",
          "self.flat = self.pooled.transpose(0, 3, 1, 2).reshape(len(x), -1)"),
         ("(d @ self.W[2].T).reshape(self.pooled.shape)",
          "(d @ self.W[2].T).reshape(\n"
          "            self.pooled.transpose(0, 3, 1, 2).shape).transpose(0, 2, 3, 1)")),
        ("forward", "z.dense1"), "flatten-order"),
    "padding_top_left": Planted(
        "correct_cnn_loops",
        (("top, left = 0, 0", "top, left = 2 * ho - height, 2 * wo - width"),),
        ("forward", "z.dense1"), "padding-side"),
    "maxpool_to_every_cell": Planted(
        "correct_cnn_im2col",
        (("self.mask = windows == out[:, :, None, :, None, :]",
          "self.mask = np.ones(windows.shape, dtype=bool)"),),
        ("delta", "conv2"), "maxpool-all"),
    "conv_bias_missing": Planted(
        "correct_cnn_im2col",
        (("W.reshape(-1, W.shape[3]) + b)", "W.reshape(-1, W.shape[3]))"),),
        ("forward", "z.conv1"), "bias-missing"),
    "conv_hidden_derivative": Planted(
        "correct_cnn_loops",
        (("self.d2 = da2 * (self.z2 > 0)", "self.d2 = da2"),
         ("self.d1 = da1 * (self.z1 > 0)", "self.d1 = da1")),
        ("delta", "conv2"), "hidden-derivative"),
}

MLP = {
    "hidden_derivative": Planted(
        "correct_class_row", (("dz1[self.z1 <= 0] = 0", "pass"),),
        ("delta", "layer1"), "hidden-derivative"),
    "hard_coded_batch": Planted(
        "correct_class_row", (("delta /= self.N", "delta /= 20"),),
        ("delta", "layer2"), "constant-factor"),
    "hard_coded_batch_seen_in_the_update": Planted(
        "correct_function_row",
        (("deltas0 = de_loss_fun(output, labs)", "deltas0 = de_loss_fun(output, labs) / 4"),),
        ("update", "step1.W1"), "constant-factor",
        ('--adapter={"delta": [null, null, null]}',)),
    "one_hot_missing": Planted(
        "correct_class_row", (("delta[range(self.N), output] -= 1", "pass"),),
        ("delta", "layer2"), "one-hot-missing"),
    "bias_decay_in_loss": Planted(
        "correct_class_row",
        (("(np.sum(net.w ** 2) + np.sum(net.w2 ** 2))",
          "(np.sum(net.w ** 2) + np.sum(net.w2 ** 2)\n"
          "                              + np.sum(net.b ** 2) + np.sum(net.b2 ** 2))"),),
        ("loss", "loss"), "weight-decay-on-bias-loss"),
    "constant_gradient": Planted(
        "correct_class_row", (("self.db = np.sum(dz1, axis=0, keepdims=True)", "self.db = 0.0"),),
        ("grad", "b1"), "constant-gradient"),
    "bias_left_out": Planted(
        "correct_class_row",
        (("self.z1 = inputs.dot(self.w) + self.b", "self.z1 = inputs.dot(self.w)"),),
        ("forward", "z.layer1"), "bias-missing"),
    "untransposed_square_weight": Planted(
        "correct_class_row", (("da1 = delta.dot(self.w2.T)", "da1 = delta.dot(self.w2)"),),
        ("delta", "layer1"), "transpose-missing", (SQUARE,)),
    "adam_counter_per_parameter": Planted(
        "correct_adam",
        (('    state["t"] += 1\n    t = state["t"]\n', ""),
         ("        m = BETA1",
          '        state["t"] += 1\n        t = state["t"]\n        m = BETA1')),
        ("update", "step1.b1"), "adam-step-counter"),
    "momentum_sign": Planted(
        "correct_momentum",
        (("self.vW[i] = self.mu * self.vW[i] + self.dW[i]",
          "self.vW[i] = self.mu * self.vW[i] - self.lr * self.dW[i]"),
         ("self.W[i] = self.W[i] - self.lr * self.vW[i]", "self.W[i] = self.W[i] - self.vW[i]")),
        ("update", "step1.W1"), "sign"),
}
