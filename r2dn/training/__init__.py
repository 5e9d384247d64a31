"""System identification: train a model on input/output records, judge it, keep it.

- `fit`: truncated backpropagation through time, checkpoints, resume, data parallelism.
- `TrainConfig`: the settings of a run.
- `evaluate`, `write_report`: accuracy in physical units, metrics JSON and plots.
- `certify`: the checks of a model's certificate.
"""

from r2dn.training.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    RunState,
    load_checkpoint,
    save_checkpoint,
)
from r2dn.training.config import TrainConfig, full_precision
from r2dn.training.evaluate import Check, certify, evaluate, write_report
from r2dn.training.loop import (
    EpochReport,
    FitResult,
    TrainingDiverged,
    TrainingInterrupted,
    fit,
    mean_squared_error,
)

__all__ = [
    "CHECKPOINT",
    "Check",
    "Checkpoint",
    "EpochReport",
    "FitResult",
    "RunState",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "certify",
    "evaluate",
    "fit",
    "full_precision",
    "load_checkpoint",
    "mean_squared_error",
    "save_checkpoint",
    "write_report",
]
