"""Config validation: impossible values fail with one clear MemgruError; presets and JSON round trips."""

import pytest

from memgru.config import DeviceConfig, ExperimentConfig, ModelConfig, QuantConfig, TrainConfig
from memgru.errors import MemgruError


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"prog_sigma": -0.1}, "prog_sigma"),
        ({"read_sigma": 1.5}, "read_sigma"),
        ({"g_min": 5.0, "g_max": 5.0}, "g_min < g_max"),
        ({"g_min": 10.0, "g_max": 1.0}, "g_min < g_max"),
        ({"rows": 0}, "rows"),
        ({"cols": 3}, "even"),
        ({"states": 1}, "states"),
        ({"adc_bits": 1}, "adc_bits"),
        ({"dac_bits": 33}, "dac_bits"),
        ({"stuck_hrs": 0.7, "stuck_lrs": 0.7}, "stuck"),
        ({"bias": "analog"}, "bias"),
        ({"slicing": "maybe"}, "slicing"),
        ({"drift_time": 0.0}, "drift_time"),
    ],
)
def test_device_config_rejects_impossible_values(kwargs, words):
    with pytest.raises(MemgruError, match=words):
        DeviceConfig(**kwargs)


@pytest.mark.parametrize("bits", [0, 1, 17, 31, 33, -4])
def test_quant_config_rejects_bad_bits(bits):
    with pytest.raises(MemgruError, match="bits"):
        QuantConfig(weight_bits=bits)
    with pytest.raises(MemgruError, match="bits"):
        QuantConfig(act_bits=bits)


def test_quant_config_levels():
    assert QuantConfig(weight_bits=6).weight_levels == 31
    assert QuantConfig(weight_bits=6).levels_per_device == 32
    assert QuantConfig().weight_float and QuantConfig().levels_per_device == 0
    with pytest.raises(MemgruError, match="act_points"):
        QuantConfig(act_points=("input", "everything"))


def test_presets_differ_only_where_expected():
    ideal, rram = DeviceConfig.ideal(), DeviceConfig.rram_1t1r()
    assert ideal.prog_sigma == ideal.read_sigma == ideal.stuck_hrs == ideal.stuck_lrs == ideal.drift_nu == 0
    assert ideal.adc_bits == ideal.dac_bits == 32
    assert rram.prog_sigma > 0 and rram.read_sigma > 0 and rram.adc_bits == 8 and rram.states == 32
    assert DeviceConfig.rram_1t1r(prog_sigma=0.1).prog_sigma == 0.1
    with pytest.raises(MemgruError, match="unknown device preset"):
        DeviceConfig.preset("pcm")


def test_configs_round_trip_through_dicts():
    for cfg in (QuantConfig(weight_bits=5, act_bits=7, act_points=("input",)), DeviceConfig.rram_1t1r(),
                ModelConfig(kind="gru_regressor", n_features=3, n_outputs=1), TrainConfig(weight_noise=0.1)):
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
    exp = ExperimentConfig(task="soc", model=ModelConfig(hidden=16), train=TrainConfig(epochs=3))
    assert ExperimentConfig.from_dict(exp.to_dict()) == exp
    with pytest.raises(MemgruError, match="unknown DeviceConfig field"):
        DeviceConfig.from_dict({"prog_sigmaa": 0.1})
