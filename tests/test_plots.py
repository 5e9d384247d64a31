"""Tests of the PNG plots."""

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from r2dn import plots
from r2dn.plots import plot_loss, plot_prediction

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> np.ndarray:
    """The image at `path` (height, width, channels), after checking it is a real PNG."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 10_000  # axes, curves and text, not an empty canvas
    image = matplotlib.image.imread(path)
    assert image.std() > 0.05  # not a blank image
    return image


def test_plot_loss_writes_png(tmp_path):
    history = {"train": [1.0, 0.5, 0.2, 0.1], "validation": [1.2, 0.7, 0.4]}
    path = plot_loss(history, tmp_path / "new" / "dir" / "loss.png")
    assert path == tmp_path / "new" / "dir" / "loss.png"
    read_png(path)


@pytest.mark.parametrize("history", [{}, {"train": []}])
def test_plot_loss_rejects_empty_history(tmp_path, history):
    with pytest.raises(ValueError, match="non-empty loss series"):
        plot_loss(history, tmp_path / "loss.png")


def test_plot_prediction_writes_one_panel_per_channel(tmp_path):
    time = np.arange(400) / 400
    y = np.stack([np.sin(2 * np.pi * k * time) for k in (1, 2, 3)], axis=-1)
    y_hat = 0.9 * y + 0.05
    one = read_png(plot_prediction(y[:, :1], y_hat[:, :1], tmp_path / "one.png", dt=1 / 400))
    three_path = tmp_path / "sub" / "three.png"
    plot_prediction(y, y_hat, three_path, dt=1 / 400, names=["a1", "a2", "a3"], washout=40)
    three = read_png(three_path)
    assert three.shape[0] > 2 * one.shape[0]  # the figure grows with the number of channels
    assert three.shape[1] == one.shape[1]


def test_a_long_record_gets_its_error_a_zoomed_window_and_spectra(tmp_path, monkeypatch):
    """50,000 samples drawn whole are a solid band: each channel also shows y − ŷ, the last
    2 % of the record, and the amplitude spectra of measured, predicted and error."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    steps, dt = 50_000, 1 / 400
    time = np.arange(steps) * dt
    y = np.stack([np.sin(2 * np.pi * 3 * time), np.sin(2 * np.pi * 7 * time)], axis=-1)
    y_hat = 0.9 * y
    plot_prediction(y, y_hat, tmp_path / "p.png", dt=dt, washout=100)
    (fig,) = figures
    for i, (row, hz) in enumerate(zip(fig.subfigs, (3, 7), strict=True)):
        full, zoomed, residual, spectral = row.axes
        assert full.lines[0].get_xdata().size == steps
        np.testing.assert_array_equal(zoomed.lines[0].get_xdata(), time[steps - steps // 50 :])
        np.testing.assert_allclose(residual.lines[0].get_ydata(), y[:, i] - y_hat[:, i])
        assert spectral.get_yscale() == "log"
        assert [line.get_label() for line in spectral.lines] == ["measured", "predicted", "error"]
        frequencies, amplitude = spectral.lines[0].get_data()
        assert frequencies[np.argmax(amplitude)] == pytest.approx(hz, abs=0.01)


@pytest.mark.parametrize(
    ("y_hat_shape", "kwargs", "message"),
    [
        ((100, 2), {}, "same shape"),
        ((100, 3), {"names": ["a", "b"]}, r"2 names \('a', 'b'\) given for 3 output channels"),
        ((100, 3), {"washout": 100}, "washout must be in"),
    ],
)
def test_plot_prediction_rejects_bad_input(tmp_path, y_hat_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_prediction(np.ones((100, 3)), np.ones(y_hat_shape), tmp_path / "p.png", **kwargs)


def test_plot_prediction_needs_a_single_record(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(T, ny\) \(one record\)"):
        plot_prediction(np.ones((2, 100, 3)), np.ones((2, 100, 3)), tmp_path / "p.png")
