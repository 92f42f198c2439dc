"""An exponential moving average of the weights (Polyak averaging), for drr-train --ema.

Averaging the last few thousand optimizer steps smooths out the step-to-step noise of small
batches; the average, not the last step, is then what is validated and shipped. BatchNorm
statistics are averaged like the weights, so the average is a consistent network.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the averaging decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        # the first steps weigh more (as TensorFlow's num_updates): a fresh average is not
        # held back by the random initial weights
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].lerp_(v.detach(), 1.0 - d)
            else:
                self.state[k].copy_(v)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """The model with the averaged weights inside the block, its own weights after it."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(raw)
