"""Tests of training (`r2dn.training`): TBPTT, checkpoints and resume, divergence, parallelism."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from r2dn.data import Normalizer, SequenceData
from r2dn.registry import ModelSpec
from r2dn.training import (
    CHECKPOINT,
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    certify,
    evaluate,
    fit,
    load_checkpoint,
    mean_squared_error,
    write_report,
)

SPEC = ModelSpec("lipschitz-r2dn", dict(nu=1, nx=2, nv=2, ny=1, hidden=[4], gamma=2.0))
T, L = 64, 16  # four segments per epoch
CONFIG = TrainConfig(epochs=4, segment_length=L, lr=3e-2, washout=8)
FROZEN = optax.set_to_zero()  # one object for all tests, so its compiled steps are shared


def system_data(batch: int = 2, steps: int = T, seed: int = 0) -> SequenceData:
    """Records of ``x⁺ = 0.7x + tanh(u)``, ``y = x + 1`` (a nonzero mean for the normaliser)."""
    u = np.random.default_rng(seed).normal(size=(batch, steps, 1))
    x, y = np.zeros((batch, 1)), np.empty_like(u)
    for t in range(steps):
        y[:, t] = x + 1
        x = 0.7 * x + np.tanh(u[:, t])
    return SequenceData(u=u, y=y, dt=0.5, input_names=("u",), output_names=("y",))


def params(model) -> list[np.ndarray]:
    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def assert_same_params(a, b, **tolerance) -> None:
    for x, y in zip(params(a), params(b), strict=True):
        np.testing.assert_allclose(x, y, **tolerance)


def interrupt_after(epoch: int):
    def callback(report):
        if report.epoch == epoch:
            raise KeyboardInterrupt

    return callback


def test_mean_squared_error_sums_records_and_outputs_and_averages_time():
    y = jnp.zeros((2, 4, 3))
    y_hat = y.at[0, 1, 2].set(2.0).at[1, 3, 0].set(1.0)
    assert float(mean_squared_error(y, y_hat)) == pytest.approx((4.0 + 1.0) / 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"segment_length": 2.5}, "segment_length must be a positive integer"),
        ({"decay_every": 0}, "decay_every must be a positive integer"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"decay_rate": 1.5}, r"decay_rate must lie in \(0, 1\]"),
        ({"clip": 0.0}, "clip must be positive or None"),
        ({"clip_mode": "norm"}, "clip_mode must be 'elementwise' or 'global_norm'"),
        ({"washout": -1}, "washout must be a non-negative integer"),
        ({"optimizer": "adamm"}, "'adamm' is not an Optax optimiser"),
        ({"optimizer": "clip"}, "'clip' is not an Optax optimiser taking a learning rate"),
        ({"optimizer": "__class__"}, "'__class__' is not an Optax optimiser"),
        ({"seed": 1e23}, "seed must be a non-negative integer; got 1e"),
        ({"seed": 2**64}, "seed must be less than 2..63"),
        ({"lr": "fast"}, "lr must be a number; got 'fast'"),
        ({"mode": "online"}, "mode must be one of 'carried', 'windowed'; got 'online'"),
        ({"initial_state": "zero"}, "initial_state must be one of 'burn_in', 'encoder'"),
        ({"matmul_precision": "max"}, "matmul_precision must be one of"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"window_length": 16, "burn_in": 16}, "burn_in 16 leaves nothing of a window"),
        ({"restore_best": "yes"}, "restore_best must be True or False"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_config_round_trips_and_rejects_unknown_keys():
    config = TrainConfig(epochs=3, decay_every=2, patience=4)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown training settings \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})


def test_staircase_schedule_decays_every_n_epochs_down_to_the_floor():
    schedule = TrainConfig(lr=1e-3, decay_every=2, min_lr=1e-5).schedule(steps_per_epoch=3)
    lrs = [float(schedule(step)) for step in (0, 5, 6, 11, 12, 100)]
    np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-6)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("elementwise", [-1.0, -0.04, 1.0]), ("global_norm", [-0.8, -0.004, 0.6])],
)
def test_clipping_modes(mode, expected):
    config = TrainConfig(optimizer="sgd", lr=1.0, clip=1.0, clip_mode=mode)
    optimizer = config.optimizer_for(steps_per_epoch=1)
    grads = jnp.array([8.0, 0.04, -6.0])  # global norm 10.0001
    updates, _ = optimizer.update(grads, optimizer.init(grads))
    np.testing.assert_allclose(updates, expected, rtol=1e-4)
    assert config.optimizer_for(1) is optimizer  # reused, so compiled steps are reused


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("mode", ["elementwise", "global_norm"])
def test_elementwise_optimisers_run_on_one_flat_vector_with_the_same_updates(name, mode):
    config = TrainConfig(optimizer=name, lr=0.1, clip=0.5, clip_mode=mode)
    flat = config.optimizer_for(steps_per_epoch=1)
    clip = optax.clip if mode == "elementwise" else optax.clip_by_global_norm
    plain = optax.chain(clip(0.5), getattr(optax, name)(0.1))
    keys = jax.random.split(jax.random.key(0), 3)
    params = {"a": jax.random.normal(keys[0], (3, 4)), "b": jax.random.normal(keys[1], (5,))}
    # Its state holds counts and vectors of all 3·4 + 5 parameters, never per-array moments.
    assert all(leaf.shape in ((), (17,)) for leaf in jax.tree.leaves(flat.init(params)))
    states = flat.init(params), plain.init(params)
    for k in jax.random.split(keys[2], 3):
        grads = jax.tree.map(lambda p, k=k: jax.random.normal(k, p.shape), params)
        (u_flat, s_flat), (u_plain, s_plain) = (
            opt.update(grads, state, params)
            for opt, state in zip((flat, plain), states, strict=True)
        )
        states = s_flat, s_plain
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), u_flat, u_plain)
        params = optax.apply_updates(params, u_flat)


def test_epoch_seconds_count_what_follows_the_training_steps():
    """An epoch's time includes validation, the checkpoint and the callbacks after it (the
    last epoch's too), so "trained in X s" is the whole run, not just the optimiser steps."""
    pause, epochs = 0.05, 3
    result = fit(SPEC, system_data(), system_data(seed=1),
                 dataclasses.replace(CONFIG, epochs=epochs), progress=False,
                 callbacks=[lambda report: time.sleep(pause)])  # fmt: skip
    assert len(result.state.history["seconds"]) == epochs
    assert sum(result.state.history["seconds"]) >= epochs * pause


def test_fit_learns_and_shows_progress(capsys):
    data = system_data()
    result = fit(
        SPEC,
        data,
        system_data(seed=1),
        dataclasses.replace(CONFIG, epochs=12),
    )
    history = result.state.history
    assert history["train"][-1] < 0.3 * history["train"][0]
    assert history["validation"][-1] < 0.6 * history["validation"][0]  # the first is after epoch 1
    assert len(history["seconds"]) == result.state.epoch == 12
    progress = capsys.readouterr().err
    # stderr is not a terminal here: one line per epoch, no carriage-return bar
    lines = progress.strip().splitlines()
    assert len(lines) == 12 and "\r" not in progress
    assert lines[-1].startswith("epoch 12/12 train=") and "lr=0.03" in lines[-1]
    assert "validation=" in lines[-1] and "elapsed=" in lines[-1]
    trained = result.trained
    assert trained.spec == SPEC and trained.dt == 0.5 and trained.output_names == ("y",)
    assert trained.normalizer.to_dict() == Normalizer.fit(data).to_dict()


@pytest.mark.parametrize(
    ("steps", "length"),
    [(T, L), (T, 2), (68, 4)],  # segments per compiled call: all 4; 16 twice; 1 (17 is prime)
)
def test_state_is_carried_from_segment_to_segment(steps, length):
    """Without parameter updates, the mean segment loss is that of one free run over all T."""
    data = system_data(steps=steps)
    config = dataclasses.replace(CONFIG, segment_length=length)
    result = fit(SPEC, data, None, config, optimizer=FROZEN, progress=False)
    trained, normalizer = result.trained, result.trained.normalizer

    def loss(u, y):  # in the model's (normalised) units
        return float(
            mean_squared_error(
                normalizer.normalize_y(y), normalizer.normalize_y(trained.predict(u))
            )
        )

    carried = loss(data.u, data.y)
    assert result.state.history["train"][0] == pytest.approx(carried, rel=1e-5)
    # Restarting every segment from the zero state would give another loss: off by ten times
    # the tolerance within which the carried loss is matched.
    segments = [a.reshape(2 * steps // length, length, 1) for a in (data.u, data.y)]
    restarted = loss(*segments) / (steps // length)
    assert abs(restarted - carried) > 1e-4 * carried


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tmp_path):
    train, validation = system_data(), system_data(seed=1)
    straight = fit(SPEC, train, validation, CONFIG, run_dir=tmp_path / "a", progress=False)
    with pytest.raises(KeyboardInterrupt):
        fit(
            SPEC,
            train,
            validation,
            CONFIG,
            run_dir=tmp_path / "b",
            progress=False,
            callbacks=[interrupt_after(2)],
        )
    checkpoint = load_checkpoint(tmp_path / "b" / CHECKPOINT, CONFIG.optimizer_for(T // L))
    assert checkpoint.state.epoch == 2 and len(checkpoint.state.history["train"]) == 2
    resumed = fit(
        SPEC, train, validation, CONFIG, run_dir=tmp_path / "b", resume=True, progress=False
    )
    assert resumed.state.epoch == 4
    assert_same_params(resumed.trained.model, straight.trained.model, rtol=1e-6, atol=1e-7)
    for series in ("train", "validation", "lr"):
        np.testing.assert_allclose(
            resumed.state.history[series], straight.state.history[series], rtol=1e-6
        )
    final = load_checkpoint(tmp_path / "b" / CHECKPOINT, CONFIG.optimizer_for(T // L))
    assert_same_params(final.run.model, straight.trained.model, rtol=1e-6, atol=1e-7)


def test_resume_refuses_a_changed_run_or_a_missing_checkpoint(tmp_path):
    train = system_data()
    config = dataclasses.replace(CONFIG, epochs=1)
    with pytest.raises(FileNotFoundError, match="no checkpoint checkpoint.r2dn in"):
        fit(SPEC, train, None, config, run_dir=tmp_path, resume=True, progress=False)
    fit(SPEC, train, None, config, run_dir=tmp_path, progress=False)
    changed = dataclasses.replace(CONFIG, epochs=2, lr=0.5)
    with pytest.raises(ValueError, match=r"cannot resume: .*training settings.*'lr': 0\.03"):
        fit(SPEC, train, None, changed, run_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match=r"cannot resume: .*normalizer: saved"):
        fit(SPEC, system_data(seed=3), None, config, run_dir=tmp_path, resume=True, progress=False)


def poison(step: int) -> optax.GradientTransformation:
    """Turns the updates of optimiser step ``step`` (0-based) into NaN."""

    def update(updates, count, params=None):
        updates = jax.tree.map(lambda g: jnp.where(count == step, jnp.nan, g), updates)
        return updates, count + 1

    return optax.GradientTransformation(lambda params: jnp.zeros((), jnp.int32), update)


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    segments = T // L
    optimizer = optax.chain(optax.adam(1e-2), poison(2 * segments + 1))  # epoch 3, 2nd update
    models = {}
    with pytest.raises(TrainingDiverged, match=f"at epoch 3, segment 3 of {segments}.*intact"):
        fit(
            SPEC,
            system_data(),
            None,
            CONFIG,
            optimizer=optimizer,
            run_dir=tmp_path,
            progress=False,
            callbacks=[lambda report: models.__setitem__(report.epoch, report.model)],
        )
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT, optimizer)
    assert checkpoint.state.epoch == 2
    assert all(np.isfinite(p).all() for p in params(checkpoint.run.model))
    assert_same_params(checkpoint.run.model, models[2], rtol=0, atol=0)


def test_early_stopping_and_restore_best():
    train, validation = system_data(), system_data(seed=1)
    frozen = fit(
        SPEC,
        train,
        validation,
        dataclasses.replace(CONFIG, epochs=10, patience=2),
        optimizer=FROZEN,
        progress=False,
    )
    assert frozen.state.epoch == 3 and frozen.state.best_epoch == 1
    assert "early stopping: no validation improvement in 2 epochs" in frozen.state.stop_reason

    models = {}
    config = dataclasses.replace(CONFIG, epochs=6, restore_best=True)
    result = fit(
        SPEC,
        train,
        validation,
        config,
        progress=False,
        callbacks=[lambda report: models.__setitem__(report.epoch, report.model)],
    )
    losses = result.state.history["validation"]
    assert result.state.best_epoch == int(np.argmin(losses)) + 1
    assert_same_params(result.trained.model, models[result.state.best_epoch], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("spec", "data", "config", "message"),
    [
        (
            ModelSpec("lipschitz-r2dn", SPEC.kwargs | {"nu": 2}),
            system_data(),
            CONFIG,
            "nu=2 inputs",
        ),
        (SPEC, system_data(), TrainConfig(segment_length=T + 1), f"at most {T}"),
        (
            SPEC,
            system_data(),
            TrainConfig(segment_length=L, washout=T),
            "washout 64 leaves nothing",
        ),
    ],
)
def test_fit_rejects_data_that_does_not_fit(spec, data, config, message):
    with pytest.raises(ValueError, match=message):
        fit(spec, data, system_data(seed=1), config, progress=False)


def test_report_is_in_physical_units(tmp_path):
    train, validation = system_data(), system_data(seed=1)
    result = fit(SPEC, train, validation, dataclasses.replace(CONFIG, epochs=2), progress=False)
    summary, files = write_report(
        result.trained, validation, tmp_path, washout=8, history=result.state.history
    )
    assert [f.name for f in files] == [
        "metrics.json",
        "prediction_0.png",
        "prediction_1.png",
        "loss.png",
    ]
    assert json.loads(files[0].read_text()) == summary == evaluate(result.trained, validation, 8)
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files[1:])
    # The validation loss is in normalised units: RMSE(phys) = y_std · sqrt(loss / batch).
    y_std = result.trained.normalizer.y_std[0]
    expected = y_std * np.sqrt(result.state.history["validation"][-1] / validation.batch)
    assert summary["overall"]["rmse"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="differ from the model's"):
        evaluate(result.trained, SequenceData(validation.u, validation.y, 0.5, ("v",), ("y",)), 8)


SIZES = {k: v for k, v in SPEC.kwargs.items() if k != "gamma"}


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (ModelSpec("contracting-r2dn", SIZES), 3),
        (ModelSpec("robust-r2dn", SIZES | {"Q": [[-1.0]], "S": [[0.2]], "R": [[2.0]]}), 4),
    ],
)
def test_certify_a_fresh_model_passes_every_applicable_check(spec, names):
    """(Lipschitz models are certified at the end of every `r2dn fit`, see test_cli.py.)"""
    checks = certify(spec.build(jax.random.key(3)), key=jax.random.key(0), search_steps=30)
    assert len(checks) == names
    assert all(check.passed for check in checks), checks


PARALLEL = textwrap.dedent(
    """
    import dataclasses, json, sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    import test_training as t
    from r2dn.training import fit
    data, devices, runs = t.system_data(batch=4), [], []
    base = t.TrainConfig.from_dict(json.loads(sys.argv[2]))
    for n in (2, 1):
        config = dataclasses.replace(base, optimizer="sgd", lr=0.01, devices=n)
        runs.append(fit(t.SPEC, data, None, config, progress=False,
                        callbacks=[lambda r: devices.append(len(r.model.lti.X.devices()))]))

    def relative(a, b):
        # initial=0: a parameter may have no entries (a factor of size 0)
        diff = np.max(np.abs(np.subtract(a, b)), initial=0.0)
        return float(diff / (1 + np.max(np.abs(b), initial=0.0)))

    print(json.dumps({
        "devices": jax.device_count(),
        "used": devices,
        "loss": relative(*(r.state.history["train"] for r in runs)),
        "params": max(map(relative, *(t.params(r.trained.model) for r in runs))),
    }))
    """
)


WINDOWED = dataclasses.replace(
    CONFIG, mode="windowed", window_length=16, batch_size=4, burn_in=4, steps_per_epoch=4
)


@pytest.mark.slow  # a second JAX process with two forced devices: compiles everything again
@pytest.mark.parametrize("config", [CONFIG, WINDOWED], ids=["carried", "windowed"])
def test_data_parallel_matches_one_device(config):
    """Two forced host devices in a fresh process (XLA_FLAGS must be set before jax starts).

    Plain, stable gradient descent: at initialisation (zero biases) the scales ``d`` of φ's
    relu layers do not change φ, so their gradient is round-off, which Adam would turn into
    full learning-rate steps whose sign differs with the device count.
    """
    env = os.environ | {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", PARALLEL, str(Path(__file__).parent), json.dumps(config.to_dict())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2
    assert result["used"] == [2] * CONFIG.epochs + [1] * CONFIG.epochs
    assert result["loss"] < 1e-5 and result["params"] < 1e-5


def test_reduce_on_plateau_is_told_the_loss(tmp_path):
    """A constant loss is a plateau: the scale drops, which needs ``value=`` in every update."""
    optimizer = optax.chain(
        optax.set_to_zero(), optax.contrib.reduce_on_plateau(patience=1, factor=0.5)
    )
    fit(SPEC, system_data(), None, CONFIG, optimizer=optimizer, run_dir=tmp_path, progress=False)
    opt_state = load_checkpoint(tmp_path / CHECKPOINT, optimizer).opt_state
    assert float(opt_state[1].scale) < 1.0


def test_fit_takes_any_optax_transformation_reduce_on_plateau_included():
    optimizer = optax.chain(optax.adam(1e-3), optax.contrib.reduce_on_plateau())
    result = fit(SPEC, system_data(), None, CONFIG, optimizer=optimizer, progress=False)
    assert np.isfinite(result.state.history["train"]).all()


def test_sigterm_stops_like_sigint_and_keeps_the_last_epoch(tmp_path):
    def terminate(report):
        if report.epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="SIGTERM in epoch 3.*checkpoint") as caught:
        fit(SPEC, system_data(), None, CONFIG, run_dir=tmp_path, callbacks=[terminate])
    assert caught.value.checkpoint == tmp_path / CHECKPOINT
    assert load_checkpoint(tmp_path / CHECKPOINT, CONFIG.optimizer_for(T // L)).state.epoch == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed


def test_divergence_in_the_first_epoch_claims_no_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        fit(SPEC, system_data(), None, CONFIG, optimizer=poison(0), run_dir=tmp_path)
    assert not (tmp_path / CHECKPOINT).exists()
