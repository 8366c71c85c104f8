"""Process-wide glibc malloc tuning for the project's torch training loops (learner, reward classifier).

glibc hands every block above its mmap threshold (a few hundred KB, so every image batch and activation) fresh pages
from the OS and returns them on free, so each training step page-faults through all of its tensors again. Keeping
freed memory in the heap made a CPU learner update about 1.4x faster here and halves the reward classifier's
augmentation time. Call once at start-up, like torch.set_num_threads; it is the caller's choice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def configure_cpu_allocator() -> bool:
    """Make glibc malloc keep and reuse large freed blocks instead of unmapping them. Returns False where it does
    not apply (not Linux glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold, largest = -1, -3, ctypes.c_int(2**31 - 1)
        return bool(libc.mallopt(m_mmap_threshold, largest)) and bool(libc.mallopt(m_trim_threshold, largest))
    except (OSError, AttributeError):
        return False
