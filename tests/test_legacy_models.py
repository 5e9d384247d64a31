"""Model files written by an earlier release keep loading and predicting the same outputs.

The files in ``tests/data`` were written by ``tests/data/make_legacy_models.py`` with the code
before the models were recomposed of parts; never regenerate them to make this test pass.
"""

from pathlib import Path

import numpy as np
import pytest

from r2dn.io import load_model

DATA = Path(__file__).parent / "data"
KINDS = ["lipschitz-r2dn", "contracting-r2dn", "robust-ren", "lipschitz-ren"]


@pytest.mark.parametrize("kind", KINDS)
def test_legacy_model_file_loads_and_predicts_the_stored_outputs(kind):
    stored = np.load(DATA / "legacy_outputs.npz")
    trained = load_model(DATA / f"{kind}.r2dn")
    assert trained.spec.kind == kind
    np.testing.assert_allclose(trained.predict(stored["u"]), stored[kind], rtol=1e-5, atol=1e-5)
