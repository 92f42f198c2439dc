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
import torch.nn.functional as F
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
        self._fused = False

    @torch.no_grad()
    def fuse_for_inference(self) -> None:
        """Inference only: the LSTM's two products (input and state) as one matrix over
        [F; F~], and the update scale folded into the regressors: fewer, larger products per
        step (the refiner's 8 steps are mostly per-operation overhead at batch 1)."""
        if self._fused:  # the scale must be folded in once only
            return
        scale = self.cfg.input_size * self.OUTPUT_SCALE
        for r in self.regressors:
            r.weight.mul_(scale)
            r.bias.mul_(scale)
        if self.lstm is not None:
            # gate rows reordered from nn.LSTMCell's (i, f, g, o) to (i, f, o, g): the three
            # sigmoid gates are then one slice
            n = self.cfg.lstm_hidden
            order = torch.cat([torch.arange(0, 2 * n), torch.arange(3 * n, 4 * n), torch.arange(2 * n, 3 * n)])
            w = torch.cat([self.lstm.weight_ih, self.lstm.weight_hh], dim=1)[order]
            self.register_buffer("_gate_weight", w.contiguous(), persistent=False)
            self.register_buffer("_gate_bias", (self.lstm.bias_ih + self.lstm.bias_hh)[order], persistent=False)
        self._fused = True

    @torch.no_grad()
    def set_product_dtype(self, dtype: torch.dtype) -> None:
        """Inference only, after fuse_for_inference: the weights of the LSTM and regression
        products in dtype. fp16 halves the ~6 MB that the eight steps read at each forward,
        which is what these matrix-vector products wait for at batch 1 (0.45 -> 0.32 ms for
        the 16 products here; bf16 was slower than fp32). LayerNorm, the gate non-linearities,
        the cell state and the shapes stay fp32."""
        if not self._fused:
            raise RuntimeError("fuse_for_inference first")
        self.regressors.to(dtype)
        if self.lstm is not None:
            self._gate_weight = self._gate_weight.to(dtype)
            self._gate_bias = self._gate_bias.to(dtype)

    def _lstm_step(self, f: torch.Tensor, h: torch.Tensor, h_in: torch.Tensor,
                   c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_in: h in the products' type (the same tensor in fp32)."""
        if not self._fused or torch.is_grad_enabled():
            return self.lstm(f, (h, c))
        # the same gates as nn.LSTMCell, from one product, in the order i, f, o, g
        gates = F.linear(torch.cat([f, h_in], dim=-1), self._gate_weight, self._gate_bias).float()
        n = h.shape[-1]
        ifo = torch.sigmoid(gates[:, : 3 * n])
        c = torch.addcmul(ifo[:, n : 2 * n] * c, ifo[:, :n], torch.tanh(gates[:, 3 * n :]))
        return ifo[:, 2 * n :] * torch.tanh(c), c

    def forward(self, d6: torch.Tensor, d7: torch.Tensor, s0: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """s0 in input pixels (B, p, 2). Returns shapes S^0..S^K and the updates dS^0..dS^{K-1}
        (both in input pixels; the updates keep their gradient)."""
        size = float(self.cfg.input_size)
        b = s0.shape[0]
        # each step gathers only its boxes' pixels (see sip.py)
        if torch.is_grad_enabled():  # training: fp32 maps (bf16 under CUDA autocast)
            d6, d7 = d6.float(), d7.float()
        sip7 = BoxGather(d7, self.box7)
        sip6 = BoxGather(d6, self.box6, scale=0.5) if self.cfg.sip_deconv6 else None
        # the type the products' inputs are given in: fp32, or fp16 after set_product_dtype
        dtype = self.regressors[0].weight.dtype if self._fused and not torch.is_grad_enabled() else torch.float32
        h = c = h_in = None
        if self.lstm is not None:
            h = s0.new_zeros(b, self.cfg.lstm_hidden)
            c = s0.new_zeros(b, self.cfg.lstm_hidden)
            h_in = h.to(dtype)
        shapes, updates = [s0], []
        s = s0
        step_scale = 1.0 if self._fused else size * self.OUTPUT_SCALE
        for step in range(self.cfg.steps):
            f = sip7(s)
            if sip6 is not None:
                f = torch.cat([f, sip6(s)], dim=-1)
            f = self.norm(f.reshape(b, -1)).to(dtype)
            if self.lstm is not None:
                h, c = self._lstm_step(f, h, h_in, c)
                h_in = h.to(dtype)
                f = torch.cat([f, h_in], dim=-1)
            ds = self.regressors[step](f).float().reshape(b, -1, 2)
            if step_scale != 1.0:
                ds = ds * step_scale
            updates.append(ds)
            # kept inside a margin around the crop: a wild early step must not push the points
            # so far out that every later SIP box samples the same border pixels
            s = (s.detach() + ds).clamp(-0.25 * size, 1.25 * size)
            shapes.append(s)
        return shapes, updates
