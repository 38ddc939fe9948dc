"""Inference methods: amortized NPE and sequential SNPE (APT or truncated proposals)."""

from .npe import NPE, drop_invalid
from .snpe import SNPE, atomic_loss
from .tsnpe import TSNPE, TruncatedPrior

__all__ = ["NPE", "SNPE", "TSNPE", "TruncatedPrior", "drop_invalid", "atomic_loss"]
