"""A faster CPU path for the backbone and conv8 at inference: oneDNN convolutions with pre-packed
weights and the ReLU fused in, and 2x2 max-pooling as two element-wise maxima.

At batch 1 the backbone's layers are small, and what eager PyTorch adds around each oneDNN call
counts: re-ordering the weights on every call, and a separate pass for the ReLU. Packing the
weights once and fusing the ReLU took the backbone's convolutions from 1.46 to 1.22 ms (bf16) and
from 2.56 to 2.30 ms (fp32) on this project's 2-core machine; the channels-last 2x2 pooling as
two maxima of strided views costs 30-40 us against 110-130 us for max_pool2d on the first map.

The kernels are torch.ops.mkldnn._convolution_pointwise and _convolution_transpose_pointwise, the
ones torch.compile's CPU backend emits for frozen models. They are internal to PyTorch, so
pack_backbone and pack_conv check the packed layers against the eager ones on a probe input and
return None (keep the eager layers) when anything is missing or differs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

Layer = Callable[[torch.Tensor], torch.Tensor]


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


def _packed_conv(conv: nn.Conv2d | nn.ConvTranspose2d, relu: bool, input_shape: list[int]) -> Layer:
    mkldnn = torch.ops.mkldnn
    attr = "relu" if relu else "none"
    pad, stride, dil, groups = list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups
    bias = conv.bias.detach() if conv.bias is not None else None
    if isinstance(conv, nn.ConvTranspose2d):
        out_pad = list(conv.output_padding)
        weight = mkldnn._reorder_convolution_transpose_weight(conv.weight.detach(), pad, out_pad, stride, dil,
                                                              groups, input_shape)
        return lambda x: mkldnn._convolution_transpose_pointwise(x, weight, bias, pad, out_pad, stride, dil,
                                                                 groups, attr, [], "")
    weight = mkldnn._reorder_convolution_weight(conv.weight.detach(), pad, stride, dil, groups, input_shape)
    return lambda x: mkldnn._convolution_pointwise(x, weight, bias, pad, stride, dil, groups, attr, [], "")


def _accepts(x: torch.Tensor, dtype: torch.dtype) -> bool:
    """Packed layers take channels-last CPU maps of their weights' type, outside autograd."""
    return (x.device.type == "cpu" and x.dtype == dtype and not torch.is_grad_enabled()
            and x.is_contiguous(memory_format=torch.channels_last))


def _probe(shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    """A fixed random channels-last input to check packed layers against the eager ones."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


class PackedConv:
    """One packed convolution (no activation), for conv8: channels-last maps in and out."""

    def __init__(self, layer: Layer, dtype: torch.dtype) -> None:
        self.layer, self.dtype = layer, dtype

    def accepts(self, x: torch.Tensor) -> bool:
        return _accepts(x, self.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


@torch.no_grad()
def pack_conv(conv: nn.Conv2d, input_shape: list[int]) -> PackedConv | None:
    """conv packed for inputs like input_shape (B, C, H, W), checked on a probe; None where
    oneDNN's kernels are missing or disagree."""
    if conv.weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    dtype = conv.weight.dtype
    probe = _probe(input_shape, dtype)
    try:
        packed = PackedConv(_packed_conv(conv, False, input_shape), dtype)
        ok = _agree([packed(probe)], [conv(probe)], dtype)
    except (RuntimeError, AttributeError, TypeError):
        return None
    return packed if ok else None


def _agree(got: list[torch.Tensor], want: list[torch.Tensor], dtype: torch.dtype) -> bool:
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    for g, w in zip(got, want):
        scale = float(w.float().abs().max()) or 1.0
        if g.shape != w.shape or float((g.float() - w.float()).abs().max()) > tol * scale:
            return False
    return True


class PackedBackbone:
    """The backbone's inference pass as a list of packed layers; (deconv6, deconv7) out."""

    def __init__(self, features: list[Layer], deconv6: Layer, deconv7: Layer, dtype: torch.dtype) -> None:
        self.features, self.deconv6, self.deconv7, self.dtype = features, deconv6, deconv7, dtype

    def accepts(self, x: torch.Tensor) -> bool:
        return _accepts(x, self.dtype)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.features:
            x = layer(x)
        d6 = self.deconv6(x)
        return d6, self.deconv7(d6)


def _pack_sequence(modules: list[nn.Module], x: torch.Tensor) -> tuple[list[Layer], torch.Tensor] | None:
    """Packed layers for conv [BN folded to Identity] ReLU and MaxPool2d(2, 2) runs; None if the
    sequence holds anything else (an unfolded BatchNorm, say). Also returns the probe's output."""
    layers: list[Layer] = []
    mods = [m for m in modules if not isinstance(m, nn.Identity)]
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            layer = _packed_conv(m, relu, list(x.shape))
            i += 2 if relu else 1
        elif isinstance(m, nn.MaxPool2d) and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)) \
                and m.padding in (0, (0, 0)) and m.dilation in (1, (1, 1)) and not m.ceil_mode:
            layer = max_pool_2x2
            i += 1
        else:
            return None
        x = layer(x)
        layers.append(layer)
    return layers, x


@torch.no_grad()
def pack_backbone(backbone: nn.Module, input_size: int) -> PackedBackbone | None:
    """The packed inference pass of a backbone whose BatchNorms are folded, for its current
    weights and dtype on the CPU; None where oneDNN's fused kernels are missing or disagree with
    the eager layers on a probe. Packing copies the weights: pack again after changing them."""
    if backbone.deconv7[0].weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    dtype = backbone.dtype
    probe = _probe([1, 3, input_size, input_size], dtype)
    try:
        feats = _pack_sequence(list(backbone.features), probe)
        d6 = _pack_sequence(list(backbone.deconv6), feats[1]) if feats else None
        d7 = _pack_sequence(list(backbone.deconv7), d6[1]) if d6 else None
        if d7 is None or len(d6[0]) != 1 or len(d7[0]) != 1:
            return None
        packed = PackedBackbone(feats[0], d6[0][0], d7[0][0], dtype)
        ok = _agree(list(packed(probe)), list(backbone.forward_eager(probe)), dtype)
    except (RuntimeError, AttributeError, TypeError):
        return None
    return packed if ok else None
