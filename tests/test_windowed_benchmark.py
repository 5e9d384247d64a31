"""``benchmarks/windowed.py`` (windowed against carried-state training, time to the same
validation loss) end to end in its ``--quick`` mode, on the synthetic F-16 files of `conftest`."""

import math
import sys
from pathlib import Path

import pytest

from conftest import write_f16_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import windowed  # noqa: E402

MODES = ["carried (TBPTT)", "windowed, burn-in", "windowed, encoder"]


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    root = write_f16_files(tmp_path_factory.mktemp("f16"), rows=600)
    return windowed.compare(True, root, steps=512, epochs=2, budget=1.5, window=64)


def test_every_mode_is_timed_against_the_carried_target(record):
    assert [r["mode"] for r in record["rows"]] == MODES == list(record["curves"])
    carried = record["curves"][MODES[0]]
    assert len(carried) == 2 and record["target"] == min(p["validation"] for p in carried)
    first = record["rows"][0]
    assert first["reached"] and first["cpu_ratio"] == first["wall_ratio"] == 1.0
    for row, curve in zip(record["rows"], record["curves"].values(), strict=True):
        assert row["best_validation"] == min(p["validation"] for p in curve)
        assert all(math.isfinite(p["validation"]) for p in curve)
        cpu = [p["cpu"] for p in curve]
        assert cpu == sorted(cpu) and cpu[0] > 0  # seconds so far, after every epoch
        if row["reached"]:  # stopped at the first epoch at or below the target
            assert curve[-1]["validation"] <= record["target"]
            assert all(p["validation"] > record["target"] for p in curve[:-1])
            assert row["cpu_ratio"] == pytest.approx(row["cpu"] / first["cpu"])
        else:
            assert row["cpu_ratio"] is None and row["best_validation"] > record["target"]


def test_easier_targets_are_the_carried_modes_best_so_far(record):
    carried = record["curves"][MODES[0]]
    for level in record["levels"]:
        so_far = [p["validation"] for p in carried if p["epoch"] <= level["carried_epoch"]]
        assert level["target"] == min(so_far)
        assert level[MODES[0]]["cpu_ratio"] == 1.0


def test_windowed_decay_is_set_apart_from_the_carried_modes(tmp_path):
    root = write_f16_files(tmp_path, rows=600)
    *_, carried, configs = windowed.setup(True, root, steps=512, epochs=2, decay_every=5)
    assert carried.decay_every != 5
    assert {c.decay_every for c in configs.values()} == {5}
    *_, same = windowed.setup(True, root, steps=512, epochs=2)
    assert {c.decay_every for c in same.values()} == {carried.decay_every}
