"""DRR's refinement conditioned on the annotator's points (issue 34, lever 2).

After a person places some points of a face, model.correction's Gaussian update moves the others
by what the statistics say goes with them; it never looks at the picture again. Re-running the
shipped steps from that update with the placed points held made things worse (the steps were
trained only from k-means starts and drift from a nearly right shape). These steps are trained
for the annotator's situation instead: each step sees, besides the shape-indexed features of the
current points (SIP on the frozen backbone's deconv7, as the shipped steps), which points are
placed and where every point is, and the placed points are put back after every step, so they
never move. They start from the Gaussian update and return the face's points.

Training (`train_steps`) uses the frozen backbone's box-maxed deconv7 maps of each face's crop,
cached once (`face_maps`), so that it runs on a couple of CPU cores: for each face several draws
of 0-10 placed points (the worst first, as a person does, or random), on top of the model's own
prediction or of that prediction moved by an error drawn from the residual statistics (the
pose-error idea of Click-Pose), starting from the Gaussian update of those points.

Not shipped (issue 34's record, docs/experiment-log.md): on the validation split with detector
boxes they need more corrections than the Gaussian update alone (3.95 against 3.08 at tau 0.07,
6 epochs). On the training faces they cut the first click's NME by 37% (the Gaussian update 18%):
the frozen backbone's features of the faces it trained on give the truth away, and on faces it
never saw they do not. Trained instead on half of the validation faces they overfit worse (10.4
on the other half); geometry only (features=False) 3.16; features of the training pictures
downscaled to 0.25 4.34; dropout 0.8 on the features, one step, 3.09: as good as the Gaussian
update, no better. With the features of faces the backbone never saw (bench.conditioned_crossfit:
a backbone trained on half of the training faces, the steps on the other half) they beat the
Gaussian update on that backbone's own pre-labels (3.66 against 3.94) and tie beside the held-out
twin (3.07 against 3.08).

File format (torch.save of a dict, NAME.steps.pt beside the checkpoint): {"format":
"drr-conditioned-steps", "version": 1, "config": {...}, "state": state_dict, "model": {"sha256",
"name"} of the checkpoint whose backbone it reads, "source": how it was trained}.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import geometry
from .correction import CorrectionModel, file_sha256
from .inference import box_maxima, dense_channels_last
from .sip import BoxGather

FORMAT = "drr-conditioned-steps"
VERSION = 1
OUTPUT_SCALE = 0.02  # as refiner.RecurrentRefiner: a per-layer learning rate for Adam


@dataclass
class StepsConfig:
    num_points: int = 68
    channels: int = 12
    input_size: int = 192
    steps: int = 3
    hidden: int = 128
    features: bool = True  # False: the geometric ablation (no SIP features, only placed points and shape)
    feature_dropout: float = 0.0  # dropout on the SIP features while training


class ConditionedSteps(nn.Module):
    """K recurrent steps: SIP features, the placed mask and the shape -> LSTM -> a linear update
    per step; placed points held at every step. Coordinates in crop pixels."""

    def __init__(self, cfg: StepsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p = cfg.num_points
        feat = p * cfg.channels
        self.norm = nn.LayerNorm(feat)
        extra = 3 * p  # placed (p) and the shape in crop units about the centre (2p)
        self.lstm = nn.LSTMCell(feat + extra, cfg.hidden)
        self.regressors = nn.ModuleList(nn.Linear(feat + extra + cfg.hidden, 2 * p) for _ in range(cfg.steps))
        for r in self.regressors:  # start as a near-identity: the Gaussian update unchanged
            nn.init.normal_(r.weight, std=1e-3)
            nn.init.zeros_(r.bias)

    def forward(self, maps: torch.Tensor, start: torch.Tensor, placed: torch.Tensor) -> list[torch.Tensor]:
        """maps: (B, C, H, W) box maxima of deconv7 (SIP is one pixel of them); start (B, p, 2);
        placed (B, p) bool, those points of start stay exactly. Returns S^0 .. S^K."""
        size = float(self.cfg.input_size)
        b = start.shape[0]
        gather = BoxGather(maps.float(), 1)
        keep = placed[..., None]
        mask = placed.float()
        h = start.new_zeros(b, self.cfg.hidden)
        c = start.new_zeros(b, self.cfg.hidden)
        s = start.float()
        shapes = [s]
        for step in range(self.cfg.steps):
            f = self.norm(gather(s).reshape(b, -1))
            if not self.cfg.features:
                f = torch.zeros_like(f)
            f = nn.functional.dropout(f, self.cfg.feature_dropout, self.training)
            f = torch.cat([f, mask, (s / size - 0.5).reshape(b, -1)], dim=-1)
            h, c = self.lstm(f, (h, c))
            ds = self.regressors[step](torch.cat([f, h], dim=-1)).reshape(b, -1, 2) * (size * OUTPUT_SCALE)
            s = torch.where(keep, start, (s.detach() + ds).clamp(-0.25 * size, 1.25 * size))
            shapes.append(s)
        return shapes

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | Path, checkpoint: str | Path, source: str) -> None:
        torch.save({"format": FORMAT, "version": VERSION, "config": asdict(self.cfg), "state": self.state_dict(),
                    "model": {"sha256": file_sha256(checkpoint), "name": Path(checkpoint).name},
                    "source": source}, Path(path))

    @classmethod
    def load(cls, path: str | Path, checkpoint: str | Path | None = None) -> ConditionedSteps:
        """Read a steps file; ValueError naming the file when it is not one, or when it was
        trained on another checkpoint's backbone than `checkpoint`."""
        path = Path(path)
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same plain message
            raise ValueError(f"{path}: cannot read conditioned steps ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        want = (d.get("model") or {}).get("sha256")
        if checkpoint is not None and want and want != file_sha256(checkpoint):
            raise ValueError(f"{path.name} was trained on another model's features "
                             f"({d['model'].get('name', '?')}), not {Path(checkpoint).name}")
        steps = cls(StepsConfig(**d["config"]))
        steps.load_state_dict(d["state"])
        steps.source = str(d.get("source", ""))
        return steps.eval()


def steps_path(checkpoint: str | Path) -> Path:
    """Where a checkpoint's conditioned steps live: beside it, NAME.steps.pt."""
    p = Path(checkpoint)
    return p.with_name(p.stem + ".steps.pt")


@torch.inference_mode()
def face_maps(frozen, image: np.ndarray, crop_to_image: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """(C, H, W) fp16 box maxima of the frozen network's deconv7 on the face's crop (the one
    its result was computed on), and the picture -> crop matrix."""
    size = frozen.cfg.input_size
    to_crop = geometry.invert(crop_to_image)
    crop = torch.from_numpy(geometry.warp(image, to_crop, size)).permute(2, 0, 1)[None].float()
    x = ((crop - frozen.pixel_mean) / frozen.pixel_std).to(frozen.dtype)
    _, d7 = frozen.backbone(dense_channels_last(x))
    return box_maxima(d7.float(), frozen.refiner.box7)[0].half(), to_crop


@torch.inference_mode()
def refine(steps: ConditionedSteps, maps: torch.Tensor, to_crop: np.ndarray, start: np.ndarray,
           placed: dict[int, np.ndarray]) -> np.ndarray:
    """The face's (p, 2) picture points after the steps ran from `start` (picture pixels, e.g.
    the Gaussian update) with `placed` held; placed points exactly where they were put."""
    s0 = np.asarray(start, dtype=np.float64).copy()
    for k, xy in placed.items():
        s0[k] = xy
    mask = torch.zeros(1, len(s0), dtype=torch.bool)
    mask[0, list(placed)] = True
    crop_pts = torch.from_numpy(geometry.apply(to_crop, s0)).float()[None]
    final = steps(maps[None], crop_pts, mask)[-1][0].double().numpy()
    out = geometry.apply(geometry.invert(to_crop), final)
    for k, xy in placed.items():
        out[k] = xy
    return out


def conditioned_update(stats: CorrectionModel, steps: ConditionedSteps, maps: torch.Tensor, to_crop: np.ndarray,
                       prediction: np.ndarray, placed: dict[int, np.ndarray]) -> np.ndarray:
    """What the app does after a drag with conditioned steps: the Gaussian update, then the
    steps from it. Nothing placed: the prediction unchanged."""
    if not placed:
        return np.asarray(prediction, dtype=np.float64).copy()
    return refine(steps, maps, to_crop, stats.update(prediction, placed), placed)
