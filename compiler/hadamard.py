"""The block-Hadamard rotation of LUT layers' inputs and weights (``hadamard`` option of a LUT
method): its own module because the fits (:mod:`.lut_methods`) and the training arithmetic
(:mod:`.trainable`) both rotate, and the fits call the training arithmetic to tune themselves."""

from __future__ import annotations

import math

import torch

__all__ = ["hadamard_t"]


def hadamard_t(x: torch.Tensor, size: int) -> torch.Tensor:
    """Rotate each run of ``size`` values of the last axis by H_size / sqrt(size) (as golden.mx.hadamard)."""
    shape = x.shape
    if shape[-1] % size:
        raise ValueError(f"Hadamard size {size} does not divide the {shape[-1]} features; pick a size "
                         f"that divides K.")
    y = x.reshape(-1, size)
    h = 1
    while h < size:
        y = y.reshape(-1, size // (2 * h), 2, h)
        y = torch.stack([y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]], dim=2).reshape(-1, size)
        h *= 2
    return (y / math.sqrt(size)).reshape(shape)
