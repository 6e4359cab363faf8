"""Declared constraints (cortexfit/params.py) and RLSFit's declarations."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cortexfit.exceptions import ConfigError
from cortexfit.fit import RLSFit
from cortexfit.fit.estimator import PARAMETER_CONSTRAINTS
from cortexfit.params import AnyOf, Interval, Options, pydantic_bounds, validate


def test_intervals_accept_and_reject_at_their_ends():
    positive = Interval(0, None, "neither")
    assert positive.accepts(1e-9) and positive.accepts(3) and not positive.accepts(0)
    assert not positive.accepts(float("inf")) and not positive.accepts(float("nan"))
    assert not positive.accepts(True) and not positive.accepts("1") and not positive.accepts(None)
    unit = Interval(0, 1, "right")
    assert unit.accepts(1) and not unit.accepts(0) and not unit.accepts(1.0001)
    whole = Interval(1, None, integer=True)
    assert whole.accepts(1) and whole.accepts(np.int64(5)) and not whole.accepts(2.0)
    assert Interval(None, None, none_ok=True).accepts(None)


def test_options_are_strict_about_kind():
    flag = Options(True, False)
    assert flag.accepts(True) and not flag.accepts(1) and not flag.accepts("True")
    k = AnyOf(Options("all"), Interval(1, None, integer=True))
    assert k.accepts("all") and k.accepts(10) and not k.accepts(0) and not k.accepts("some")


def test_one_message_names_the_setting_the_value_and_the_range():
    with pytest.raises(ConfigError) as info:
        validate({"lam": Interval(0, None, "neither")}, {"lam": -1.0}, where="RLSFit")
    text = str(info.value)
    assert "lam" in text and "-1.0" in text and "> 0" in text


def test_pydantic_bounds_follow_the_closed_ends():
    assert pydantic_bounds(Interval(0, 1, "neither")) == {"gt": 0, "lt": 1}
    assert pydantic_bounds(Interval(0, None, "left")) == {"ge": 0}
    assert pydantic_bounds(Interval(1, None, integer=True)) == {"ge": 1}
    assert pydantic_bounds(Options("a")) == {}


def test_every_rlsfit_setting_is_declared_and_its_default_valid():
    settings = {f.name for f in dataclasses.fields(RLSFit)}
    undeclared = settings - set(PARAMETER_CONSTRAINTS)
    # bias: a number or one per neuron (the simulator checks it); neuron_model: the
    # registry; checkpoint: a path; network: a Network; validator: a callable
    assert undeclared == {"bias", "neuron_model", "checkpoint", "network", "validator"}
    for preset in (RLSFit(), RLSFit.for_recordings()):
        validate(PARAMETER_CONSTRAINTS, preset.settings())


@pytest.mark.parametrize("name,value", [("frac_exc", 1.0), ("k_plastic", 0), ("loops", 0),
                                        ("rate_gate", "yes"), ("checkpoint_every", 0),
                                        ("form", "spikes"), ("seed", -1), ("dale", 1)])
def test_rlsfit_refuses_out_of_range_settings_by_name(name, value):
    with pytest.raises(ConfigError, match=name):
        RLSFit(**{name: value}, progress=False)._check()
