"""``make demo``: identify the cascaded-tanks benchmark with a certified Lipschitz R2DN.

Runs ``r2dn fit`` with the settings below on the benchmark data shipped with r2dn (one
estimation and one validation record of 1,024 samples): trains, prints the validation RMSE,
NRMSE and fit per output and the training time, checks the certificate, and writes the model,
its metrics and plots (loss curve, predicted against measured output) to ``runs/demo/``.
"""

import os

from r2dn.cli import app

#: ``r2dn fit`` options of the demo.
ARGS = [
    "--data", "cascaded-tanks",
    "--model", "lipschitz-r2dn",
    "--gamma", "5",
    "--nx", "8",
    "--nv", "16",
    "--hidden", "32,32",
    "--epochs", "1500",
    "--segment-length", "256",
    "--lr", "3e-3",
    "--decay-every", "750",
    "--validate-every", "50",
    "--washout", "50",
    "--out", "runs/demo",
    "--overwrite",
]  # fmt: skip


def main() -> None:
    """Run the demo; exits with the code of ``r2dn fit`` (non-zero if a certificate check fails)."""
    _one_core()
    print("r2dn fit " + " ".join(ARGS), flush=True)
    app(["fit", *ARGS], prog_name="r2dn")


def _one_core() -> None:
    """Run on one CPU core (where the OS allows it), before JAX starts its threads.

    A model this small gains nothing from a second core, while XLA's hand-offs between threads
    stall whenever other processes keep the cores busy: measured on a shared 2-core machine,
    a training step took ~2 ms on one core and 0.1-0.7 s spread over two.
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


if __name__ == "__main__":
    main()
