"""Devices and float32 precision on GPUs: where a parity run computes, pinned to full float32.

On NVIDIA GPUs since Ampere, PyTorch lets cuDNN convolutions use TF32 by default (a 10-bit
mantissa: unit roundoff 2^-11 = 4.9e-4), and TF32 matmuls when
``torch.backends.cuda.matmul.allow_tf32`` or ``set_float32_matmul_precision("high")`` is set. A
float32 parity run would then measure TF32 rounding against a 1e-5 tolerance. Parity runs pin
full float32 (:func:`pin_torch_precision`) unless ``--allow-tf32`` asks for the user's
defaults; :func:`precision_flags` records every flag for the report's environment, and
:func:`tf32_note` explains a float32 failure whose size is that of TF32 rounding.
"""

from __future__ import annotations

import sys
from typing import Any

DEVICES = ("cpu", "cuda")
TF32_ROUNDOFF = 2.0**-11  # unit roundoff of a 10-bit mantissa
TF32_EXPLAINS = 4 * TF32_ROUNDOFF  # a first divergence up to a few TF32 roundings


def check_device(framework: str, device: str) -> None:
    """``ValueError`` (one line) unless ``framework`` (``torch``) can compute on ``device``."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device cuda: {framework} sees no CUDA device "
                             "(torch.cuda.is_available() is False)")


def pin_torch_precision(allow_tf32: bool = False) -> None:
    """Full-precision float32 on GPU (TF32 off for cuBLAS and cuDNN, matmul precision
    ``highest``), or, with ``allow_tf32``, the user's defaults left as they are."""
    if allow_tf32 or "torch" not in sys.modules:
        return
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def precision_flags(device: str = "cpu") -> dict[str, Any]:
    """Every precision flag of the imported frameworks and the device's name, for reports."""
    flags: dict[str, Any] = {"device": device}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        matmul = torch.backends.cuda.matmul
        flags.update({
            "torch_cuda_matmul_allow_tf32": matmul.allow_tf32,
            "torch_cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch_matmul_allow_fp16_reduced_precision_reduction":
                matmul.allow_fp16_reduced_precision_reduction,
            "torch_matmul_allow_bf16_reduced_precision_reduction":
                matmul.allow_bf16_reduced_precision_reduction,
            "torch_cuda_version": torch.version.cuda,
            "torch_cudnn_version": torch.backends.cudnn.version()
            if torch.backends.cudnn.is_available() else None,
        })
        if device == "cuda" and torch.cuda.is_available():
            flags["device_name"] = torch.cuda.get_device_name()
    return flags


def tf32_note(dtype: str, max_rel: float, allow_tf32: bool) -> str | None:
    """Why a float32 first divergence of ``max_rel`` is the size of TF32 rounding, when TF32
    was allowed; else None."""
    if not allow_tf32 or dtype != "float32" or not max_rel <= TF32_EXPLAINS:
        return None
    return (f"the size of TF32 rounding (10-bit mantissa, unit roundoff {TF32_ROUNDOFF:.1e}; "
            "--allow-tf32 let cuBLAS/cuDNN use it): run without --allow-tf32 for full float32")
