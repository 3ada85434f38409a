"""CUDA when available, else CPU; an explicit choice (`--device`, OPENAUTOGLM_DEVICE) wins."""

from __future__ import annotations


def pick_device(requested: str | None = None) -> str:
    if requested:
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def half_precision_dtype(device: str):
    """bf16 where the GPU supports it, fp16 on other GPUs, fp32 on CPU."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
