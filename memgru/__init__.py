"""memgru: lightweight GRU networks on memristor (RRAM) crossbar arrays.

Map a GRU onto 1T1R crossbars, quantize it (symmetric weights, asymmetric activations, 2-16 bit),
train it to survive device variation, and measure what happens.

Example:
    >>> import torch, memgru
    >>> from memgru import QuantConfig, DeviceConfig, convert
    >>> model = torch.nn.GRU(4, 8, batch_first=True)
    >>> mem = convert(model, quant=QuantConfig(weight_bits=6, act_bits=8), device=DeviceConfig.rram_1t1r(), seed=0)
    >>> type(mem).__name__
    'CrossbarGRU'
"""

from memgru.config import DeviceConfig, ExperimentConfig, ModelConfig, QuantConfig, TrainConfig
from memgru.errors import MemgruError
from memgru.layers import (
    CrossbarGRU,
    CrossbarLinear,
    calibrate,
    convert,
    noisy_weights,
    reprogram,
    set_weight_noise,
)

__version__ = "0.1.0"

__all__ = [
    "CrossbarGRU",
    "CrossbarLinear",
    "DeviceConfig",
    "ExperimentConfig",
    "MemgruError",
    "ModelConfig",
    "QuantConfig",
    "TrainConfig",
    "__version__",
    "calibrate",
    "convert",
    "noisy_weights",
    "reprogram",
    "set_weight_noise",
]
