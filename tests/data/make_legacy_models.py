"""Write the legacy model files of `tests/test_legacy_models.py` (run once, with release code).

    PYTHONPATH=. python tests/data/make_legacy_models.py

The files pin the on-disk format (registry kind + constructor kwargs + parameter tree): model
files written before a refactor of the models must still load and predict the same outputs.
"""

from pathlib import Path

import jax
import numpy as np

from r2dn.data import Normalizer
from r2dn.io import TrainedModel, save_model
from r2dn.registry import ModelSpec

HERE = Path(__file__).parent
SPECS = {
    "lipschitz-r2dn": ModelSpec(
        "lipschitz-r2dn",
        dict(nu=2, nx=3, nv=2, ny=2, hidden=[4], gamma=3.0, feedthrough="free"),
    ),
    "contracting-r2dn": ModelSpec(
        "contracting-r2dn", dict(nu=2, nx=3, nv=2, ny=2, hidden=[4], alpha_bar=0.9)
    ),
    "robust-ren": ModelSpec(
        "robust-ren",
        dict(
            nu=2,
            nx=3,
            nv=2,
            ny=2,
            Q=[[-1.0, 0.0], [0.0, -1.0]],
            S=[[0.1, 0.1], [0.1, 0.1]],
            R=[[2.0, 0.0], [0.0, 2.0]],
        ),
    ),
    "lipschitz-ren": ModelSpec("lipschitz-ren", dict(nu=2, nx=3, nv=2, ny=2, gamma=2.0)),
}


def main() -> None:
    u = np.random.default_rng(0).normal(size=(2, 7, 2))
    outputs = {"u": u}
    for i, (kind, spec) in enumerate(SPECS.items()):
        trained = TrainedModel(
            model=spec.build(jax.random.key(i + 1)),
            spec=spec,
            normalizer=Normalizer(
                u_mean=np.array([0.5, -1.0]),
                u_std=np.array([2.0, 0.5]),
                y_mean=np.array([1.0, 0.0]),
                y_std=np.array([3.0, 1.5]),
            ),
            dt=0.5,
            input_names=("u1", "u2"),
            output_names=("y1", "y2"),
        )
        save_model(HERE / f"{kind}.r2dn", trained)
        outputs[kind] = trained.predict(u)
    np.savez(HERE / "legacy_outputs.npz", **outputs)


if __name__ == "__main__":
    main()
