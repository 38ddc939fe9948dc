"""Inference methods: amortized NPE and sequential SNPE (APT)."""

from .npe import NPE, drop_invalid
from .snpe import SNPE, atomic_loss

__all__ = ["NPE", "SNPE", "drop_invalid", "atomic_loss"]
