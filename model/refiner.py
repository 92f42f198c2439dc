"""Recurrent regression (paper Sec. III-C): K steps of SIP -> shared LSTM -> per-step linear map.

The paper writes dS^k = R^k (F^k + F~^k) + b^k, which needs the LSTM state F~ to be as wide as
F (C p, e.g. 96 x 68 = 6528): an LSTM that wide has hundreds of millions of weights. We regress
from the concatenation [F^k ; F~^k] instead, which contains R (F + F~) as the special case of
equal halves of R, and lets the LSTM width be chosen freely (config.lstm_hidden).

Shapes inside the refiner are normalised to the crop (x / input_size), so the regression
targets are O(0.01-0.1) whatever the input size. Each step's loss is ||S* - S^k - dS^k||^2 with
S^k taken as given (detached), as in cascaded regression; features and the LSTM still learn
from every step.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import DRRConfig
from .sip import BoxGather


class RecurrentRefiner(nn.Module):
    # Adam moves every weight by ~lr per step whatever the gradient's size; with ~1000 inputs
    # an unscaled regressor output would move by a sizeable part of the crop per step and the
    # steps diverge (seen here: S1..S8 each worse than S0). This is a per-layer learning rate.
    OUTPUT_SCALE = 0.02

    def __init__(self, cfg: DRRConfig, channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.box7 = max(1, int(round(cfg.box)))
        self.box6 = max(1, int(round(cfg.box / 2)))
        feat = cfg.num_points * channels * (2 if cfg.sip_deconv6 else 1)
        # SIP features of a from-scratch backbone vary wildly in scale; LayerNorm keeps the
        # regression stable (observed in the prototype, see drr-method.md).
        self.norm = nn.LayerNorm(feat)
        self.lstm = nn.LSTMCell(feat, cfg.lstm_hidden) if cfg.recurrent else None
        reg_in = feat + (cfg.lstm_hidden if cfg.recurrent else 0)
        self.regressors = nn.ModuleList(nn.Linear(reg_in, 2 * cfg.num_points) for _ in range(cfg.steps))
        for r in self.regressors:  # start as a near-identity update
            nn.init.normal_(r.weight, std=1e-3)
            nn.init.zeros_(r.bias)

    def forward(self, d6: torch.Tensor, d7: torch.Tensor, s0: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """s0 in input pixels (B, p, 2). Returns shapes S^0..S^K and the updates dS^0..dS^{K-1}
        (both in input pixels; the updates keep their gradient)."""
        size = float(self.cfg.input_size)
        b = s0.shape[0]
        # fp32 maps (bf16 under CUDA autocast); each step gathers only its boxes' pixels (sip.py)
        sip7 = BoxGather(d7.float(), self.box7)
        sip6 = BoxGather(d6.float(), self.box6, scale=0.5) if self.cfg.sip_deconv6 else None
        h = c = None
        if self.lstm is not None:
            h = s0.new_zeros(b, self.cfg.lstm_hidden)
            c = s0.new_zeros(b, self.cfg.lstm_hidden)
        shapes, updates = [s0], []
        s = s0
        for step in range(self.cfg.steps):
            f = sip7(s)
            if sip6 is not None:
                f = torch.cat([f, sip6(s)], dim=-1)
            f = self.norm(f.reshape(b, -1))
            if self.lstm is not None:
                h, c = self.lstm(f, (h, c))
                f = torch.cat([f, h], dim=-1)
            ds = self.regressors[step](f).float().reshape(b, -1, 2) * (size * self.OUTPUT_SCALE)
            updates.append(ds)
            # kept inside a margin around the crop: a wild early step must not push the points
            # so far out that every later SIP box samples the same border pixels
            s = (s.detach() + ds).clamp(-0.25 * size, 1.25 * size)
            shapes.append(s)
        return shapes, updates
