"""System identification: train a model on input/output records, judge it, keep it.

- `fit`: truncated backpropagation through time (state carried) or windowed minibatches (with
  a burn-in or a learned initial-state `Encoder`), checkpoints, resume, data parallelism.
- `TrainConfig`: the settings of a run.
- The engine every training loop is built from: `step`/`train_step`/`train_steps` (pure
  gradient steps, any Optax transformation) and `run_epochs` (the host-side driver: NaN guard,
  SIGINT/SIGTERM, progress, validation, early stopping, checkpoints, callbacks) over `Epoch`s.
- `evaluate`, `write_report`: accuracy in physical units, metrics JSON and plots.
- `certify`: the checks of a model's certificate.
"""

from r2dn.training.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    RunState,
    load_checkpoint,
    load_encoder,
    save_checkpoint,
    save_encoder,
)
from r2dn.training.config import TrainConfig, full_precision
from r2dn.training.engine import (
    Epoch,
    EpochReport,
    Schedule,
    Trainee,
    TrainingDiverged,
    TrainingInterrupted,
    run_epochs,
)
from r2dn.training.evaluate import Check, certify, evaluate, write_report
from r2dn.training.loop import FitResult, fit, mean_squared_error
from r2dn.training.steps import step, train_step, train_steps
from r2dn.training.windows import Encoder, WindowSampler

__all__ = [
    "CHECKPOINT",
    "Check",
    "Checkpoint",
    "Encoder",
    "Epoch",
    "EpochReport",
    "FitResult",
    "RunState",
    "Schedule",
    "TrainConfig",
    "Trainee",
    "TrainingDiverged",
    "TrainingInterrupted",
    "WindowSampler",
    "certify",
    "evaluate",
    "fit",
    "full_precision",
    "load_checkpoint",
    "load_encoder",
    "mean_squared_error",
    "run_epochs",
    "save_checkpoint",
    "save_encoder",
    "step",
    "train_step",
    "train_steps",
    "write_report",
]
