"""Data layer: validated input/output records, their normalisation, and benchmark loaders."""

from r2dn.data.dataset import SequenceData

__all__ = ["SequenceData"]
