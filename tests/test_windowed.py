"""Tests of windowed minibatch training (`TrainConfig(mode="windowed")`, `training.windows`)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_training import SPEC, assert_same_params, interrupt_after, params, system_data

from r2dn.certificates import check_lmi
from r2dn.training import (
    CHECKPOINT,
    TrainConfig,
    WindowSampler,
    fit,
    load_checkpoint,
    load_encoder,
    save_encoder,
)

WINDOWED = TrainConfig(
    mode="windowed",
    epochs=4,
    window_length=16,
    batch_size=4,
    burn_in=4,
    steps_per_epoch=4,
    lr=3e-2,
    washout=8,
)
ENCODED = dataclasses.replace(
    WINDOWED, initial_state="encoder", encoder_context=8, encoder_width=8, encoder_depth=1
)


def records():
    """Three records of two lengths (64 and 40 steps), as two `SequenceData`."""
    return [system_data(batch=2), system_data(batch=1, steps=40, seed=2)]


def test_sampler_is_a_pure_function_of_key_and_step_and_stays_inside_the_records():
    sample = WindowSampler(lengths=(64, 40, 10), window=16, context=8, batch_size=512)
    key = jax.random.key(0)
    records, starts = (np.asarray(a) for a in sample(key, 3))
    again = [np.asarray(a) for a in sample(key, 3)]
    np.testing.assert_array_equal(records, again[0])
    np.testing.assert_array_equal(starts, again[1])
    assert not np.array_equal(starts, np.asarray(sample(key, 4)[1]))
    lengths = np.array(sample.lengths)[records]
    assert (starts >= 8).all() and (starts + 16 <= lengths).all()
    # Uniform over positions: record 0 has 41 of the 41 + 17 positions; record 2 has none.
    assert set(records.tolist()) == {0, 1}
    assert abs(np.mean(records == 0) - 41 / 58) < 0.08


def test_windowed_training_learns_from_records_of_different_lengths():
    result = fit(
        SPEC,
        records(),
        system_data(seed=1),
        dataclasses.replace(WINDOWED, epochs=12),
        progress=False,
    )
    history = result.state.history
    assert len(history["train"]) == 12 and result.encoder is None
    assert history["train"][-1] < 0.5 * history["train"][0]
    assert history["validation"][-1] < history["validation"][0]
    assert check_lmi(result.trained.model).holds


def test_the_encoder_is_trained_with_the_model_and_saved(tmp_path):
    result = fit(SPEC, records(), system_data(seed=1), ENCODED, run_dir=tmp_path, progress=False)
    fresh = fit(SPEC, records(), None, dataclasses.replace(ENCODED, epochs=1), progress=False)
    assert result.encoder is not None
    assert not np.allclose(params(result.encoder)[0], params(fresh.encoder)[0])
    checkpoint = load_checkpoint(tmp_path / CHECKPOINT, ENCODED.optimizer_for(4))
    assert_same_params(checkpoint.encoder, result.encoder, rtol=0, atol=0)
    path = save_encoder(tmp_path / "encoder.r2dn", result.encoder, SPEC, ENCODED)
    assert_same_params(load_encoder(path), result.encoder, rtol=0, atol=0)
    x0 = result.encoder(jnp.zeros((8, 1)), jnp.zeros((8, 1)))
    assert x0.shape == (result.trained.model.nx,)


@pytest.mark.parametrize("config", [WINDOWED, ENCODED], ids=["burn-in", "encoder"])
def test_interrupted_and_resumed_windowed_run_is_bit_identical(tmp_path, config):
    train, validation = records(), system_data(seed=1)
    straight = fit(SPEC, train, validation, config, progress=False)
    with pytest.raises(KeyboardInterrupt):
        fit(
            SPEC,
            train,
            validation,
            config,
            run_dir=tmp_path,
            progress=False,
            callbacks=[interrupt_after(2)],
        )
    resumed = fit(SPEC, train, validation, config, run_dir=tmp_path, resume=True, progress=False)
    assert resumed.state.epoch == config.epochs
    assert_same_params(resumed.trained.model, straight.trained.model, rtol=0, atol=0)
    if config.initial_state == "encoder":
        assert_same_params(resumed.encoder, straight.encoder, rtol=0, atol=0)
    assert resumed.state.history["train"] == straight.state.history["train"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            dataclasses.replace(WINDOWED, window_length=65, burn_in=0),
            "window_length 65 = 65 steps exceeds every training record .the longest has 64",
        ),
        (
            dataclasses.replace(ENCODED, window_length=60),
            r"window_length 60 \+ encoder_context 8 = 68 steps exceeds every training record",
        ),
    ],
)
def test_windows_longer_than_every_record_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        fit(SPEC, records(), None, config, progress=False)


def test_carried_mode_refuses_records_of_different_lengths():
    with pytest.raises(ValueError, match="mode='windowed'"):
        fit(SPEC, records(), None, TrainConfig(segment_length=16), progress=False)
