"""Data layer: validated input/output records, their normalisation, and benchmark loaders."""

from r2dn.data import benchmarks
from r2dn.data._fetch import DownloadError
from r2dn.data.benchmarks import Benchmark
from r2dn.data.dataset import SequenceData
from r2dn.data.loaders import load_cascaded_tanks, load_csv, load_f16, load_inputs, load_npz
from r2dn.data.normalize import Normalizer

__all__ = [
    "Benchmark",
    "DownloadError",
    "Normalizer",
    "SequenceData",
    "benchmarks",
    "load_cascaded_tanks",
    "load_csv",
    "load_f16",
    "load_inputs",
    "load_npz",
]
