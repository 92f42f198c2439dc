"""The whole DRR network: backbone -> conv8 -> S_hat -> S^0 -> K recurrent steps.

forward returns a Trace with every intermediate the paper talks about, so that training,
evaluation and the app's research panels all read the same object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbone import Backbone
from .candidates import nearest_candidate
from .config import DRRConfig
from .heatmap import Conv8, argmax_shape, probabilities
from .refiner import RecurrentRefiner


@dataclass
class Trace:
    """Everything the network computed for a batch of crops; coordinates in crop pixels."""

    logits: torch.Tensor  # conv8 (B, p, H, W), before the softmax over pixels (H = S / stride)
    s_hat: torch.Tensor  # arg-max shape (B, p, 2)
    candidate_index: torch.Tensor  # (B,) which candidate became S^0 (-1 with mean-shape init)
    candidate_distances: torch.Tensor  # (B, N) squared L2 distance of each candidate to S_hat
    shapes: torch.Tensor  # (B, K + 1, p, 2): S^0, S^1 ... S^K
    updates: list[torch.Tensor]  # dS^0 ... dS^{K-1}, with gradients (training)
    sip_box: float  # side of the SIP box in crop pixels
    # mirror averaging only: (B,) mean distance between the final points of each crop and of its
    # mirror image, crop pixels (where the two passes disagree, the points are often wrong)
    mirror_gap: torch.Tensor | None = None

    @property
    def final(self) -> torch.Tensor:
        return self.shapes[:, -1]

    def probabilities(self) -> torch.Tensor:
        return probabilities(self.logits)


class DRR(nn.Module):
    def __init__(self, cfg: DRRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg.backbone, cfg.width, cfg.batch_norm, cfg.dilations, cfg.deconv_channels)
        ch = self.backbone.deconv_channels
        self.conv8 = Conv8(ch, cfg.num_points, cfg.coord_prior, cfg.conv8_kernel)
        self.refiner = RecurrentRefiner(cfg, ch)
        # Candidate shapes (N, p, 2) in crop pixels; set from the training shapes by k-means.
        self.register_buffer("candidates", torch.zeros(cfg.num_candidates, cfg.num_points, 2))
        self.register_buffer("mean_shape", torch.zeros(cfg.num_points, 2))
        # ImageNet-style normalisation of 0..255 RGB input, kept in the checkpoint.
        self.register_buffer("pixel_mean", torch.tensor([123.7, 116.3, 103.5]).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor([58.4, 57.1, 57.4]).view(1, 3, 1, 1))

    def set_shapes(self, candidates: torch.Tensor, mean_shape: torch.Tensor, std: torch.Tensor | None = None) -> None:
        """Candidates (N, p, 2), mean shape and per-point std (p, 2), crop pixels, from the
        training shapes; std also initialises conv8's position prior."""
        self.candidates.copy_(torch.as_tensor(candidates, dtype=torch.float32))
        self.mean_shape.copy_(torch.as_tensor(mean_shape, dtype=torch.float32))
        if std is not None:
            self.conv8.init_prior(self.mean_shape, torch.as_tensor(std), self.cfg.input_size,
                                  self.cfg.heatmap_stride)

    def forward(self, images: torch.Tensor, init_override: torch.Tensor | None = None) -> Trace:
        """images: (B, 3, S, S) RGB 0..255 float. init_override replaces S^0 (ablations)."""
        x = ((images - self.pixel_mean) / self.pixel_std).contiguous(memory_format=torch.channels_last)
        d6, d7 = self.backbone(x)
        logits = self.conv8(d6 if self.cfg.heatmap_stride == 2 else d7)
        s_hat = argmax_shape(logits, self.cfg.heatmap_stride)
        index, dist = nearest_candidate(s_hat, self.candidates)
        if init_override is not None:
            s0 = init_override
            index = torch.full_like(index, -1)
        elif self.cfg.init == "mean":
            s0 = self.mean_shape.expand_as(s_hat)
            index = torch.full_like(index, -1)
        else:
            s0 = self.candidates[index]
        shapes, updates = self.refiner(d6, d7, s0.float())
        return Trace(
            logits=logits,
            s_hat=s_hat,
            candidate_index=index,
            candidate_distances=dist,
            shapes=torch.stack(shapes, dim=1),
            updates=updates,
            sip_box=float(self.refiner.box7),
        )
