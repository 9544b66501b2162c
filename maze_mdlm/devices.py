"""Device choice shared by the command line and the agents: ``auto``, ``cpu`` or ``cuda``."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


class DeviceUnavailableError(ValueError):
    """Raised when CUDA is asked for and torch sees no CUDA device."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (or None) -> CUDA when torch sees a GPU, else CPU; ``cpu`` / ``cuda`` / ``cuda:N``
    or a ``torch.device`` as given.

    Raises:
        DeviceUnavailableError: ``cuda`` was asked for and torch sees no CUDA device.
        ValueError: an unknown device name.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r} (expected one of {', '.join(DEVICES)})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {str(device)!r} was asked for, but torch sees no CUDA device")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {str(device)!r} (expected one of {', '.join(DEVICES)})")
    return resolved
