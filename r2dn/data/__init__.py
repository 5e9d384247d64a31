"""Data layer: validated input/output records, their normalisation, and benchmark loaders."""

from r2dn.data.dataset import SequenceData
from r2dn.data.normalize import Normalizer

__all__ = ["Normalizer", "SequenceData"]
