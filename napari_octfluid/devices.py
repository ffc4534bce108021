"""Choosing where the model runs: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceUnavailableError(RuntimeError):
    """The user asked for a device this machine does not have."""


def resolve_device(choice: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is missing is refused clearly."""
    if choice not in DEVICE_CHOICES:
        raise DeviceUnavailableError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if choice == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (choice == "cuda" and not cuda) or (choice == "mps" and not mps):
        raise DeviceUnavailableError(
            f"{choice.upper()} was asked for but this machine has none "
            "(or this PyTorch build cannot use it): choose 'auto' or 'cpu'."
        )
    return torch.device(choice)


def default_batch_size(device: torch.device) -> int:
    return 32 if device.type == "cuda" else 4


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def step_down_after_out_of_memory(
    error: BaseException, device: torch.device, batch_size: int, what: str
) -> tuple[torch.device, int, str]:
    """The next try after ``error``: half the batch; at a batch of one, the CPU; on the CPU, a ``MemoryError``
    that says what to do. Errors other than running out of memory are raised again. ``what`` names the unit of
    work in the messages ("B-scan", "crop"). Returns the device, the batch size and a notice for the user."""
    if not is_out_of_memory(error):
        raise error
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if batch_size > 1:
        return device, batch_size // 2, f"Out of memory on {device}: going on with batch size {batch_size // 2}."
    if device.type != "cpu":
        return torch.device("cpu"), 1, f"Out of memory even one {what} at a time: going on on the CPU (slower)."
    raise MemoryError(
        f"Not enough memory for even one {what} on the CPU: close other programs, or use a smaller scan or crop."
    ) from error
