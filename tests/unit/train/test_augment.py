"""train.augment: sensor augmentation of packed batches, deterministic and layout-aware."""

from __future__ import annotations

import numpy as np

from core.contract import InputContract, Modality
from train.augment import AugmentConfig, augment_batch, layout_for


def _contract() -> InputContract:
    return InputContract(
        modalities=(Modality("a", "u", 4.0, ("x", "y")), Modality("b", "u", 2.0)),
        class_names=("p", "q"),
        window_s=10.0,
        hop_s=10.0,
    )


def test_only_the_models_columns_change_and_the_same_generator_repeats() -> None:
    c = _contract()
    x = np.random.default_rng(0).normal(size=(16, c.input_length)).astype(np.float32)
    lay = layout_for(c, ["a"])
    assert lay == ((0, 2, 40),)
    out = augment_batch(x.copy(), lay, AugmentConfig(p=1.0), np.random.default_rng(1))
    assert not np.allclose(out[:, :80], x[:, :80])
    np.testing.assert_array_equal(out[:, 80:], x[:, 80:])  # modality b is not the model's
    again = augment_batch(x.copy(), lay, AugmentConfig(p=1.0), np.random.default_rng(1))
    np.testing.assert_array_equal(out, again)


def test_off_or_probability_zero_is_the_identity() -> None:
    c = _contract()
    x = np.random.default_rng(0).normal(size=(4, c.input_length)).astype(np.float32)
    lay = layout_for(c, ["a", "b"])
    off = AugmentConfig(jitter=0, scale=0, magnitude_warp=0, time_warp=0, crop_min=1.0)
    assert not off.active
    np.testing.assert_array_equal(augment_batch(x.copy(), lay, off, np.random.default_rng(0)), x)
    none = AugmentConfig(p=0.0)
    np.testing.assert_array_equal(augment_batch(x.copy(), lay, none, np.random.default_rng(0)), x)


def test_time_transform_is_shared_by_the_modalities_of_a_window() -> None:
    # a ramp in both modalities (in seconds): after the same crop/warp they stay equal in time
    c = _contract()
    t_a, t_b = np.arange(40) / 4.0, np.arange(20) / 2.0
    x = np.concatenate([t_a, t_a, t_b])[None].repeat(8, 0).astype(np.float32)
    cfg = AugmentConfig(p=1.0, jitter=0, scale=0, magnitude_warp=0, time_warp=0.3, crop_min=0.7)
    out = augment_batch(x.copy(), layout_for(c, ["a", "b"]), cfg, np.random.default_rng(3))
    assert not np.allclose(out, x)
    # modality b's samples at 2 Hz sit on every second sample of a's 4 Hz grid (linear maps
    # of a ramp stay ramps, so they agree to interpolation error)
    np.testing.assert_allclose(out[:, 80:], out[:, 0:40:2], atol=0.2)
    assert (np.diff(out[:, :40], axis=1) >= -1e-5).all()  # the time map is monotonic
