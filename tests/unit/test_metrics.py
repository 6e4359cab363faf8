"""Metric kernels against scipy / plain-formula references, edge cases, xarray wrappers, and
hypothesis properties."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cortexfit.exceptions import ConfigError
from cortexfit.metrics import (
    pearson,
    pearson_kernel,
    r2,
    r2_kernel,
    rmse,
    rmse_kernel,
    spearman_brown,
)

RNG = np.random.default_rng(12345)


def _rows(shape):
    return RNG.normal(size=shape) * RNG.uniform(0.1, 50, size=shape[:-1] + (1,)) + 3.0


def _loop(ref, a, b):
    """Apply a 1-D reference to every broadcast row pair."""
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape[:-1])
    for idx in np.ndindex(out.shape):
        out[idx] = ref(a[idx], b[idx])
    return out


def _r2_ref(pred, data):
    return 1.0 - np.sum((data - pred) ** 2) / np.sum((data - data.mean()) ** 2)


# ------------------------------------------------------------------ references


@pytest.mark.parametrize("shape_a, shape_b", [
    ((50,), (50,)),
    ((7, 50), (7, 50)),
    ((3, 1, 40), (4, 40)),        # broadcasting over leading dims
    ((2, 3, 5, 30), (3, 1, 30)),
])
def test_kernels_match_references(shape_a, shape_b):
    a, b = _rows(shape_a), _rows(shape_b)
    expected_shape = np.broadcast_shapes(shape_a[:-1], shape_b[:-1])
    r = pearson_kernel(a, b)
    assert r.shape == expected_shape
    np.testing.assert_allclose(
        r, _loop(lambda x, y: scipy.stats.pearsonr(x, y).statistic, a, b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        rmse_kernel(a, b), _loop(lambda x, y: np.sqrt(np.mean((x - y) ** 2)), a, b),
        rtol=1e-12)
    np.testing.assert_allclose(r2_kernel(a, b), _loop(_r2_ref, a, b), rtol=1e-12)


def test_r2_is_prediction_for_data_not_symmetric():
    data = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 1.0, 1.0, 8.0])
    assert r2_kernel(pred, data) == pytest.approx(1 - (1 + 4 + 16) / 5.0)
    assert r2_kernel(data, pred) != pytest.approx(r2_kernel(pred, data))
    # predicting the data's own mean scores exactly 0
    assert r2_kernel(np.full(4, data.mean()), data) == pytest.approx(0.0, abs=1e-15)


def test_large_and_tiny_magnitudes():
    a, b = _rows((5, 60)), _rows((5, 60))
    base_r, base_r2 = pearson_kernel(a, b), r2_kernel(a, b)
    for scale in (1e-200, 1e200):
        np.testing.assert_allclose(pearson_kernel(a * scale, b * scale), base_r, atol=1e-12)
        np.testing.assert_allclose(r2_kernel(a * scale, b * scale), base_r2, rtol=1e-10)
        np.testing.assert_allclose(rmse_kernel(a * scale, b * scale) / scale,
                                   rmse_kernel(a, b), rtol=1e-10)


# ------------------------------------------------------------------ edge cases


def test_constant_rows_are_defined_never_nan():
    t = np.linspace(0, 1, 25)
    varying = np.sin(6 * t)
    const = np.full(25, 0.1)          # mean(0.1, ...) is not exactly 0.1 in floating point
    assert pearson_kernel(const, varying) == 0.0
    assert pearson_kernel(varying, const) == 0.0
    assert pearson_kernel(const, const) == 0.0
    # R² with constant data: 1.0 for the exact prediction, 0.0 otherwise (sklearn's
    # force_finite convention), never NaN or -inf
    assert r2_kernel(const, const) == 1.0
    assert r2_kernel(varying, const) == 0.0
    assert r2_kernel(const + 1e-9, const) == 0.0
    assert rmse_kernel(const, const) == 0.0
    # a single sample is a constant row
    assert pearson_kernel([1.0], [2.0]) == 0.0
    assert r2_kernel([2.0], [2.0]) == 1.0
    # R² of a constant prediction for varying data is finite
    assert np.isfinite(r2_kernel(const, varying))


def test_non_finite_inputs_give_nan_for_that_row_only():
    a, b = _rows((3, 20)), _rows((3, 20))
    a[1, 4] = np.nan
    b[2, 0] = np.inf
    for kernel in (pearson_kernel, rmse_kernel, r2_kernel):
        out = kernel(a, b)
        assert np.isfinite(out[0])
        assert np.isnan(out[1]) and np.isnan(out[2])


@pytest.mark.parametrize("a, b", [
    (np.zeros(5), np.zeros(6)),        # different numbers of samples
    (np.zeros((2, 0)), np.zeros((2, 0))),
    (np.float64(1.0), np.zeros(3)),
    (np.zeros((2, 5)), np.zeros((3, 5))),  # leading dims do not broadcast
])
def test_kernel_shape_errors(a, b):
    for kernel in (pearson_kernel, rmse_kernel, r2_kernel):
        with pytest.raises(ConfigError):
            kernel(a, b)


def test_spearman_brown():
    r = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(spearman_brown(r, 2), 2 * r / (1 + r))
    np.testing.assert_allclose(spearman_brown(r, 1), r)
    # composition: doubling twice is quadrupling; halving undoes doubling
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 2), 2), spearman_brown(r, 4))
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 2), 0.5), r, atol=1e-15)
    # against the model it comes from: R_m = 1 / (1 + rho / m)
    rho, m, n = 3.0, 16, 8
    assert spearman_brown(1 / (1 + rho / m), n / m) == pytest.approx(1 / (1 + rho / n))
    # no reliable signal: negative reliability is 0, and stays 0
    np.testing.assert_array_equal(spearman_brown([-0.3, -1.0], 4), [0.0, 0.0])
    with pytest.raises(ConfigError):
        spearman_brown(0.5, 0)


# ------------------------------------------------------------------ xarray wrappers


def _da(values, dims, name="x", units="Hz", **coords):
    base = {"time": np.arange(values.shape[-1]) * 0.02,
            "unit": [f"u{i}" for i in range(values.shape[dims.index("unit")])]
            if "unit" in dims else None,
            "condition": ["left", "right"][: values.shape[dims.index("condition")]]
            if "condition" in dims else None}
    base.update(coords)
    return xr.DataArray(values, dims=dims, name=name, attrs={"units": units},
                        coords={k: v for k, v in base.items() if k in dims})


def test_wrappers_match_kernels_with_labels_and_units():
    model = _da(_rows((2, 4, 30)), ("condition", "unit", "time"))
    # data has an extra leading dim (split) and another dim order: broadcast, aligned
    data = _da(_rows((2, 4, 2, 30)).transpose(2, 1, 0, 3), ("split", "unit", "condition", "time"))
    data = data.assign_coords(split=["train", "heldout"])
    for func, kernel, units in ((pearson, pearson_kernel, "1"), (rmse, rmse_kernel, "Hz"),
                                (r2, r2_kernel, "1")):
        out = func(model, data)
        assert out.name == func.__name__
        assert set(out.dims) == {"condition", "unit", "split"}
        assert out.attrs["units"] == units and out.attrs["long_name"]
        assert list(out["split"].values) == ["train", "heldout"]
        for s in ("train", "heldout"):
            got = out.sel(split=s).transpose("condition", "unit").values
            ref = kernel(model.values, data.sel(split=s).transpose(
                "condition", "unit", "time").values)
            np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_wrapper_over_another_dim():
    a = _da(_rows((3, 30)), ("unit", "time"))
    b = _da(_rows((3, 30)), ("unit", "time"))
    out = pearson(a, b, dim="unit")
    assert out.dims == ("time",)
    np.testing.assert_allclose(out.values, pearson_kernel(a.values.T, b.values.T))


def test_wrapper_errors():
    a = _da(_rows((3, 30)), ("unit", "time"))
    shifted = a.assign_coords(time=a["time"] + 0.01)
    with pytest.raises(ConfigError, match="coordinates"):
        pearson(a, shifted)                       # mismatched labels: no silent reindex
    with pytest.raises(ConfigError, match="dimension"):
        rmse(a, a, dim="trial")
    with pytest.raises(ConfigError, match="units"):
        rmse(a, a.assign_attrs(units="spikes/bin"))
    with pytest.raises(ConfigError, match="DataArray"):
        r2(a.values, a)
    # units of the rmse: taken from whichever side has them; none when neither has
    assert "units" not in rmse(a.drop_attrs(), a.drop_attrs()).attrs
    assert rmse(a.drop_attrs(), a).attrs["units"] == "Hz"


# ------------------------------------------------------------------ properties

_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def _pairs(draw, batch=False):
    n = draw(st.integers(1, 40))
    shape = (draw(st.integers(1, 4)), n) if batch else (n,)
    a = draw(hnp.arrays(np.float64, shape, elements=_values))
    b = draw(hnp.arrays(np.float64, shape, elements=_values))
    return a, b


@settings(max_examples=300, deadline=None)
@given(_pairs(batch=True))
def test_pearson_properties(pair):
    a, b = pair
    r = pearson_kernel(a, b)
    assert np.all(np.isfinite(r))
    assert np.all((r >= -1.0) & (r <= 1.0))
    np.testing.assert_array_equal(r, pearson_kernel(b, a))        # exactly symmetric
    np.testing.assert_array_equal(pearson_kernel(a, -b), -r)      # sign flip
    varying = np.ptp(a, axis=-1) > 0
    np.testing.assert_allclose(pearson_kernel(a, a)[varying], 1.0, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(_pairs(batch=True))
def test_rmse_properties(pair):
    a, b = pair
    e = rmse_kernel(a, b)
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    np.testing.assert_array_equal(e, rmse_kernel(b, a))
    np.testing.assert_array_equal(rmse_kernel(a, a), 0.0)
    # bounded by the largest absolute difference
    assert np.all(e <= np.max(np.abs(a - b), axis=-1) * (1 + 1e-12))


@settings(max_examples=300, deadline=None)
@given(_pairs(batch=True))
def test_r2_properties(pair):
    pred, data = pair
    out = r2_kernel(pred, data)
    assert not np.any(np.isnan(out))
    assert np.all(out <= 1.0)
    np.testing.assert_array_equal(r2_kernel(data, data), 1.0)
    # the best constant prediction (the data's mean) scores 0 on varying data
    varying = np.ptp(data, axis=-1) > 0
    mean_pred = np.broadcast_to(data.mean(-1, keepdims=True), data.shape)
    np.testing.assert_allclose(r2_kernel(mean_pred, data)[varying], 0.0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(_pairs(), st.floats(0.01, 100.0), st.floats(-1e3, 1e3))
def test_pearson_affine_invariance(pair, scale, shift):
    a, b = pair
    if np.ptp(a) < 1e-3 * (np.max(np.abs(a)) + 1.0) or np.ptp(b) == 0:
        return  # round-off of the affine map itself would dominate
    np.testing.assert_allclose(pearson_kernel(a * scale + shift, b), pearson_kernel(a, b),
                               atol=1e-6)
