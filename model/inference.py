"""The frozen inference copy of a DRR network: every inference-only speed-up in one place.

`freeze(drr, precision)` deep-copies a trained `network.DRR` and turns it into a `FrozenDRR`
that computes the same Trace, faster, and cannot be trained. The layers in backbone.py,
heatmap.py, sip.py and refiner.py hold the paper's operations and their training forward only.
What freezing does, each measured on this project's CPUs (README, "Speed"):
- BatchNorm folded into the (de)convolution before it: one pass over the maps fewer per layer;
- 2x2 max-pooling of channels-last maps as two element-wise maxima (30-40 us against 110-130
  for max_pool2d on the first map);
- conv8's logit scale folded into its weights, its position prior computed once (it does not
  depend on the picture), a 1x1 conv8 as one matrix product, and the arg-max through numpy
  (0.02 against 0.14 ms for 68 maps of 64 x 64);
- SIP from the box maxima of the whole map, computed once separably, then one gather of p rows
  per step, with the row indices in numpy (the training form gathers each box's pixels, whose
  backward is cheap);
- the LSTM's two products as one over [F; F~], its gates reordered so the sigmoids are one
  slice, and the regressors' output scale folded into their weights;
- precision "bf16": backbone and conv8 weights and maps in bfloat16, the refiner's products with
  fp16 weights (bf16 products were slower); LayerNorm, gates, cell state, shapes stay fp32.
Everything here uses public torch operations only.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .candidates import nearest_candidate
from .config import DRRConfig
from .heatmap import from_map
from .network import DRR, Trace
from .sip import BoxGather

PRECISIONS = ("auto", "fp32", "bf16")  # what --precision accepts, for inference and training


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): the flags Linux reports.
    Elsewhere bf16 is emulated and several times slower than fp32, so we answer False."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """auto: bf16 on a CPU with native bf16, fp32 everywhere else."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device == "cpu" and native_bf16() else "fp32"
    return precision


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 64 MB for reuse instead of handing them back to
    the system: each forward allocates maps of a few hundred kB, which otherwise come fresh
    from the kernel and are paid for again in page faults (about a quarter of a batch-1
    prediction, bench/speed.py). The process then keeps its peak memory, so this is for
    command-line tools that predict in a loop (drr-predict, drr-eval, the benchmarks), never
    called by the library itself. Linux with glibc only; elsewhere it returns False."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 64 << 20)) and bool(libc.mallopt(m_trim_threshold, 128 << 20))
    except (OSError, AttributeError):
        return False


# --- backbone ---------------------------------------------------------------------------------


def dense_channels_last(x: torch.Tensor) -> torch.Tensor:
    """x in channels-last memory with the standard strides. A batch of one cut from an HWC
    picture (`crop.permute(2, 0, 1)[None]`) passes torch's channels-last test with a batch stride
    of 3, and the convolutions then take a path 1.4 times slower for the whole trace (15 against
    10.5 ms on an Intel Xeon); a copy costs 20 us."""
    b, c, h, w = x.shape
    if x.stride() == (c * h * w, 1, w * c, c):
        return x
    return x.clone(memory_format=torch.channels_last)


@torch.no_grad()
def fold_batch_norm(seq: nn.Module) -> None:
    """Fold every BatchNorm into the (de)convolution before it, in place: the same function
    with one pass over the maps fewer per layer."""
    for module in seq.modules():
        if not isinstance(module, nn.Sequential):
            continue
        layers = list(module)
        for i in range(len(layers) - 1):
            conv, bn = layers[i], layers[i + 1]
            if not isinstance(bn, nn.BatchNorm2d) or not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
            conv.weight.mul_(scale.reshape(shape))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            module[i + 1] = nn.Identity()


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(x, 2, 2) of a channels-last map with even sides, as two element-wise maxima:
    first of the two rows of each pair, then of the two columns (which are neighbouring
    C-vectors in memory). Same values, including NaN, and a channels-last result."""
    b, c, h, w = x.shape
    if h % 2 or w % 2 or not x.is_contiguous(memory_format=torch.channels_last):
        return F.max_pool2d(x, 2, 2)
    rows = x.permute(0, 2, 3, 1).reshape(b, h // 2, 2, w // 2, 2 * c)
    pairs = torch.maximum(rows[:, :, 0], rows[:, :, 1])  # (b, h/2, w/2, 2c)
    return torch.maximum(pairs[..., :c], pairs[..., c:]).permute(0, 3, 1, 2)


class _Pool2x2(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_2x2(x)


def _frozen_sequence(seq: nn.Sequential) -> nn.Sequential:
    """A folded sequence without its Identity leftovers, 2x2 poolings replaced."""
    out = []
    for m in seq:
        if isinstance(m, nn.Identity):
            continue
        if isinstance(m, nn.MaxPool2d) and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)) \
                and m.padding in (0, (0, 0)) and m.dilation in (1, (1, 1)) and not m.ceil_mode:
            m = _Pool2x2()
        out.append(m)
    return nn.Sequential(*out)


# --- conv8 ------------------------------------------------------------------------------------


class FrozenConv8(nn.Module):
    """conv8 with the logit scale in its weights and the position prior as a fixed map."""

    def __init__(self, conv8: nn.Module, map_size: int, dtype: torch.dtype) -> None:
        super().__init__()
        conv = copy.deepcopy(conv8.conv)
        with torch.no_grad():
            conv.weight.mul_(conv8.logit_scale)
            conv.bias.mul_(conv8.logit_scale)
            prior = conv8.prior_map(map_size, map_size, conv.weight) if conv8.prior is not None else None
        self.conv = conv.to(dtype)
        self.register_buffer("prior", None if prior is None else prior.detach().float().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, p, H, W), contiguous fp32, from channels-last maps."""
        x = x.to(self.conv.weight.dtype)
        if self.conv.kernel_size == (1, 1) and x.is_contiguous(memory_format=torch.channels_last):
            # a 1x1 conv is one product per face: weights (p, C) times the channels-last pixels
            # (C, H W) taken as a transposed view, which writes plain (p, H W) maps directly
            b, c, h, w = x.shape
            pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)
            out = torch.matmul(self.conv.weight.reshape(1, -1, c), pixels)
            out.add_(self.conv.bias[:, None])
            out = out.reshape(b, -1, h, w).float()
        else:
            # the convolution is fastest on channels-last maps; its result is turned into plain
            # fp32 maps in one copy (the softmax and arg-max run over each map's pixels)
            out = self.conv(x).to(torch.float32, memory_format=torch.contiguous_format)
        if self.prior is not None:
            out.add_(self.prior)
        return out


def argmax_shape(logits: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """heatmap.argmax_shape through numpy on the CPU (7x faster there; both take the first
    maximum)."""
    b, p, h, w = logits.shape
    flat = logits.reshape(b, p, h * w)
    idx = torch.from_numpy(flat.numpy().argmax(-1)) if flat.device.type == "cpu" else flat.argmax(-1)
    return from_map(torch.stack([(idx % w).float(), (idx // w).float()], dim=-1), stride)


# --- SIP --------------------------------------------------------------------------------------


def box_maxima(features: torch.Tensor, box: int) -> torch.Tensor:
    """Max over every b x b window, same size as the map: entry [i, j] covers rows
    i - b//2 .. i - b//2 + b - 1 (and likewise columns), clipped to the map. Separable, each
    shift an in-place maximum of overlapping views (a 3 x 3 max-pool cost five times more)."""
    if box == 1:
        return features
    lo, hi = box // 2, box - 1 - box // 2
    rows = features.clone()
    for d in range(1, lo + 1):
        torch.maximum(rows[..., d:], features[..., :-d], out=rows[..., d:])
    for d in range(1, hi + 1):
        torch.maximum(rows[..., :-d], features[..., d:], out=rows[..., :-d])
    out = rows.clone()
    for d in range(1, lo + 1):
        torch.maximum(out[..., d:, :], rows[..., :-d, :], out=out[..., d:, :])
    for d in range(1, hi + 1):
        torch.maximum(out[..., :-d, :], rows[..., d:, :], out=out[..., :-d, :])
    return out


class BoxMaxGather(BoxGather):
    """SIP at inference: the box maxima of the whole map once per forward (in fp32: maxima of
    bf16 maps were slower than converting first), then one gather of p rows per step."""

    def __init__(self, features: torch.Tensor, box: int, scale: float = 1.0) -> None:
        super().__init__(features, box, scale)
        b, c, h, w = features.shape
        # rows of C-vectors (B H W, C): a view for channels-last maps, a copy otherwise
        self.rows = box_maxima(features.float(), box).permute(0, 2, 3, 1).reshape(b * h * w, c)

    @torch.no_grad()
    def index(self, points: torch.Tensor) -> torch.Tensor:
        """Row index (B, p) of the box centre of every point (B, p, 2)."""
        if points.device.type == "cpu" and points.dtype == torch.float32:
            return self._index_numpy(points)
        return self._flat(self._centre(points))

    def _index_numpy(self, points: torch.Tensor) -> torch.Tensor:
        """index() in numpy, with the same float32 roundings: its seven tiny element-wise
        operations cost about a microsecond each against 3-5 us each through torch."""
        p = points.detach().numpy()
        if self.scale != 1.0:
            centre = np.floor(p * np.float32(self.scale) + np.float32(self.shift))
        else:
            centre = np.floor(p + np.float32(0.5))
        upper = self.upper.numpy()
        np.clip(centre, 0.0, upper, out=centre)
        flat = (centre[..., 0] + centre[..., 1] * (upper[0] + 1)).astype(np.int64)
        if self.base is not None:
            flat += self.base.numpy().astype(np.int64).reshape(-1, *([1] * (flat.ndim - 1)))
        return torch.from_numpy(flat)

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        idx = self.index(points)
        return self.rows.index_select(0, idx.reshape(-1)).reshape(*idx.shape, -1)


# --- refiner ----------------------------------------------------------------------------------


class FrozenRefiner(nn.Module):
    def __init__(self, refiner: nn.Module, cfg: DRRConfig, product_dtype: torch.dtype) -> None:
        super().__init__()
        self.cfg = cfg
        self.box7, self.box6 = refiner.box7, refiner.box6
        self.norm = copy.deepcopy(refiner.norm)
        scale = cfg.input_size * refiner.OUTPUT_SCALE
        with torch.no_grad():
            self.regressors = copy.deepcopy(refiner.regressors)
            for r in self.regressors:
                r.weight.mul_(scale)
                r.bias.mul_(scale)
            self.regressors.to(product_dtype)
            self.register_buffer("gate_weight", None)
            self.register_buffer("gate_bias", None)
            if refiner.lstm is not None:
                # gate rows reordered from nn.LSTMCell's (i, f, g, o) to (i, f, o, g): the three
                # sigmoid gates are then one slice
                n, lstm = cfg.lstm_hidden, refiner.lstm
                order = torch.cat([torch.arange(0, 2 * n), torch.arange(3 * n, 4 * n), torch.arange(2 * n, 3 * n)])
                w = torch.cat([lstm.weight_ih, lstm.weight_hh], dim=1)[order]
                self.register_buffer("gate_weight", w.contiguous().to(product_dtype))
                self.register_buffer("gate_bias", (lstm.bias_ih + lstm.bias_hh)[order].to(product_dtype))
        self.dtype = product_dtype

    def forward(self, d6: torch.Tensor, d7: torch.Tensor, s0: torch.Tensor,
                hold: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """hold (assisted correction only): (mask (B, p), positions (B, p, 2)), points a person
        placed, put back after every step so that the others are refined around them."""
        size, b, n = float(self.cfg.input_size), s0.shape[0], self.cfg.lstm_hidden
        if hold is not None:
            keep = hold[0][..., None].to(s0.device)
            s0 = torch.where(keep, hold[1].to(s0), s0)
        sip7 = BoxMaxGather(d7, self.box7)
        sip6 = BoxMaxGather(d6, self.box6, scale=0.5) if self.cfg.sip_deconv6 else None
        h = c = h_in = None
        if self.gate_weight is not None:
            h, c = s0.new_zeros(b, n), s0.new_zeros(b, n)
            h_in = h.to(self.dtype)
        shapes, updates, s = [s0], [], s0
        for step in range(self.cfg.steps):
            f = sip7(s)
            if sip6 is not None:
                f = torch.cat([f, sip6(s)], dim=-1)
            f = self.norm(f.reshape(b, -1)).to(self.dtype)
            if self.gate_weight is not None:
                # the same gates as nn.LSTMCell, from one product, in the order i, f, o, g
                gates = F.linear(torch.cat([f, h_in], dim=-1), self.gate_weight, self.gate_bias).float()
                ifo = torch.sigmoid(gates[:, : 3 * n])
                c = torch.addcmul(ifo[:, n : 2 * n] * c, ifo[:, :n], torch.tanh(gates[:, 3 * n :]))
                h = ifo[:, 2 * n :] * torch.tanh(c)
                h_in = h.to(self.dtype)
                f = torch.cat([f, h_in], dim=-1)
            ds = self.regressors[step](f).float().reshape(b, -1, 2)
            updates.append(ds)
            s = (s + ds).clamp(-0.25 * size, 1.25 * size)  # as refiner.py
            if hold is not None:
                s = torch.where(keep, hold[1].to(s), s)
            shapes.append(s)
        return shapes, updates


# --- the whole network ------------------------------------------------------------------------


class FrozenDRR(nn.Module):
    """network.DRR for inference only: the same Trace from a folded, fused copy."""

    def __init__(self, drr: DRR, precision: str) -> None:
        super().__init__()
        drr = copy.deepcopy(drr).float().eval()
        cfg = self.cfg = drr.cfg
        self.precision = precision
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        fold_batch_norm(drr.backbone)
        self.features = _frozen_sequence(drr.backbone.features).to(dtype)
        self.deconv6 = _frozen_sequence(drr.backbone.deconv6).to(dtype)
        self.deconv7 = _frozen_sequence(drr.backbone.deconv7).to(dtype)
        self.dtype = dtype
        self.conv8 = FrozenConv8(drr.conv8, cfg.input_size // cfg.heatmap_stride, dtype)
        self.refiner = FrozenRefiner(drr.refiner, cfg, torch.float16 if precision == "bf16" else torch.float32)
        for name in ("candidates", "mean_shape", "pixel_mean", "pixel_std"):
            self.register_buffer(name, getattr(drr, name).clone())
        self.requires_grad_(False)

    def backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(deconv6, deconv7) of normalised channels-last crops in self.dtype."""
        d6 = self.deconv6(self.features(x))
        return d6, self.deconv7(d6)

    def train(self, mode: bool = True) -> FrozenDRR:
        if mode:
            raise RuntimeError("a FrozenDRR is for inference: train the network.DRR it was made from")
        return super().train(False)

    @torch.inference_mode()
    def forward(self, images: torch.Tensor, init_override: torch.Tensor | None = None,
                hold: tuple[torch.Tensor, torch.Tensor] | None = None) -> Trace:
        """images: (B, 3, S, S) RGB 0..255 float; the Trace of network.DRR.forward. hold: see
        FrozenRefiner.forward."""
        cfg = self.cfg
        x = ((images - self.pixel_mean) / self.pixel_std).to(self.dtype)
        d6, d7 = self.backbone(dense_channels_last(x))
        logits = self.conv8(d6 if cfg.heatmap_stride == 2 else d7)
        s_hat = argmax_shape(logits, cfg.heatmap_stride)
        index, dist = nearest_candidate(s_hat, self.candidates)
        if init_override is not None:
            s0, index = init_override, torch.full_like(index, -1)
        elif cfg.init == "mean":
            s0, index = self.mean_shape.expand_as(s_hat), torch.full_like(index, -1)
        else:
            s0 = self.candidates[index]
        shapes, updates = self.refiner(d6, d7, s0.float(), hold)
        return Trace(logits=logits, s_hat=s_hat, candidate_index=index, candidate_distances=dist,
                     shapes=torch.stack(shapes, dim=1), updates=updates, sip_box=float(self.refiner.box7))


def freeze(drr: DRR, precision: str = "fp32", device: str | torch.device = "cpu") -> FrozenDRR:
    """A frozen inference copy of a trained network (the argument is not changed).
    precision: "fp32", "bf16" or "auto" (bf16 on a CPU with native bf16)."""
    dev = torch.device(device)
    return FrozenDRR(drr, resolve_precision(precision, dev.type)).to(dev)
