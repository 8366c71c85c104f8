"""Which torch device a component trains or runs on: one list of choices, one default ("auto": CUDA when torch sees
it, else the CPU), one rule. Torch is imported only when a device is resolved."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")
DEFAULT_DEVICE = "auto"


def device_name(choice: str) -> str:
    """The device ``choice`` (one of DEVICES) resolves to here: "cuda" or "cpu". ValueError for cuda without one."""
    if choice not in DEVICES:
        raise ValueError(f"device {choice!r}: use one of {', '.join(DEVICES)}")
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': torch sees no CUDA device; use auto or cpu")
    return choice
