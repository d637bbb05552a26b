"""Shared test settings: deterministic torch, one thread (tests are small; threads only add noise)."""

import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
