"""Task models: GRU classifier, GRU regressor (one value per step) and a Dilated-Convolution baseline.

All are plain `torch.nn` models built from `nn.GRU` / `nn.Linear`, so `memgru.convert` maps every
weight matrix onto crossbars (the baseline's convolutions are `nn.Linear` over unfolded windows).

Example:
    >>> import torch
    >>> from memgru.config import ModelConfig
    >>> model = build_model(ModelConfig(kind="gru_classifier", n_features=64, n_outputs=10, hidden=384, layers=2))
    >>> count_parameters(model)                       # the paper's ~1.4 M-parameter GRU
    1409290
    >>> model(torch.randn(2, 173, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from memgru.config import ModelConfig


class _GRUBackbone(nn.Module):
    """Stacked GRU (batch first), dropout and a linear head: what both GRU task models share."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gru = nn.GRU(cfg.n_features, cfg.hidden, cfg.layers, batch_first=True,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.n_outputs)


class GRUClassifier(_GRUBackbone):
    """Stacked GRU over [B, T, F] features, pooled over time, then a linear head -> logits [B, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] for inputs [B, T, F]."""
        out, h_n = self.gru(x)
        pooled = out.mean(dim=1) if self.cfg.pooling == "mean" else h_n[-1]
        return self.head(self.drop(pooled))


class GRURegressor(_GRUBackbone):
    """Stacked GRU with a linear head at every step: [B, T, F] -> [B, T, n_outputs] (e.g. SOC per second)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step outputs [B, T, n_outputs] for inputs [B, T, F]."""
        return self.forward_state(x)[0]

    def forward_state(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-step outputs [B, T, n_outputs], final hidden state [layers, B, hidden]) starting from `h0`
        (zeros when None): a long trace run chunk by chunk gives the same outputs as in one piece, which
        is what truncated back-propagation through time (`TrainConfig.tbptt_steps`) relies on."""
        out, h_n = self.gru(x, h0)
        return self.head(self.drop(out)), h_n


class DilatedConv1d(nn.Module):
    """Causal-free ('same') dilated 1-D convolution written as `nn.Linear` over unfolded time windows,
    so it maps onto a crossbar like any other matrix: rows = in_channels x kernel, columns = out_channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, dilation: int = 1) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.proj = nn.Linear(in_channels * kernel, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, C_in] -> [B, T, C_out]."""
        span = self.dilation * (self.kernel - 1)
        padded = F.pad(x.transpose(1, 2), (span // 2, span - span // 2))
        windows = padded.unfold(2, span + 1, 1)[..., :: self.dilation]  # [B, C_in, T, kernel]
        b, c, t, k = windows.shape
        return self.proj(windows.permute(0, 2, 1, 3).reshape(b, t, c * k))


class DilatedCNN(nn.Module):
    """Dilated-convolution classifier in the spirit of Chen et al. 2019 (the paper's reference [15]):
    blocks of dilated convolutions (dilation 1, 2, 4, ...) with ReLU and residual connections, global
    average pooling over time and a linear head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(cfg.n_features, cfg.hidden)
        self.blocks = nn.ModuleList(
            DilatedConv1d(cfg.hidden, cfg.hidden, kernel=3, dilation=2**i) for i in range(cfg.layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.hidden) for _ in range(cfg.layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, cfg.n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] for inputs [B, T, F]."""
        h = F.relu(self.inp(x))
        for conv, norm in zip(self.blocks, self.norms, strict=True):
            h = h + F.relu(conv(norm(h)))
        return self.head(self.drop(h.mean(dim=1)))


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised model for `cfg` (seed torch before calling for reproducible weights)."""
    kinds = {"gru_classifier": GRUClassifier, "gru_regressor": GRURegressor, "dilated_cnn": DilatedCNN}
    return kinds[cfg.kind](cfg)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
