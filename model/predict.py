"""The one front door for inference: Predictor.inference(image, boxes, sources) -> [FaceResult].

Each FaceResult carries the whole trace (conv8 maps, S_hat, candidates and S^0, S^1..S^K)
mapped back to picture coordinates, so the CLI, the evaluation and the app read one object.

The inference policy lives here and nowhere else: where a face's box came from decides the
passes the face gets (the app, the CLIs and the benches pass the source and decide nothing):

| box source (BoxSource) | passes | why |
|---|---|---|
| detector (YuNet's box, with its eye line) | one | a second pass on the tight box of the first points bought nothing once mirror-averaged, for twice the cost (`bench.accuracy`'s re-crop columns; docs/experiment-log.md) |
| annotation (the tight box of annotated points, the training framing) | one | already the framing the network was trained on |
| person (a box drawn or moved by hand) | two: the second on the tight box of the first points | a hand-drawn box frames a face loosely |

Mirror averaging is the Predictor's setting, on by default (model.options.MIRROR_AVERAGE: the app's
Model menu, drr-predict --no-mirror-average), and applies to every source. An eye-levelled model (config.level_eyes) always runs twice, the
second pass levelling the first pass's eye line: on the levelled tight box of the first points
for detector and hand-drawn boxes, on the same box rotated for annotation boxes (see run();
the figures are in docs/experiment-log.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from . import geometry
from .checkpoint import CheckpointError, load_checkpoint
from .config import DRRConfig
from .detect import Detection, detect_faces
from .inference import FrozenDRR, freeze, resolve_precision
from .layout import Layout, can_mirror, layout_for
from .metrics import REVIEW_MIRROR_GAP, normaliser
from .network import DRR, Trace
from .options import MIRROR_AVERAGE
from .resources import DEFAULT_WEIGHTS, resource

DEFAULT_CHECKPOINT = resource(DEFAULT_WEIGHTS)

__all__ = ["Predictor", "FaceResult", "BoxSource", "LandmarkPredictor", "CheckpointError", "DEFAULT_CHECKPOINT"]


class BoxSource(str, Enum):
    """Where a face box came from; it decides the passes (see the module docstring)."""

    DETECTOR = "detector"
    ANNOTATION = "annotation"
    PERSON = "person"


# the policy table of the module docstring: does a face from this source get the re-crop pass?
SECOND_PASS = {BoxSource.DETECTOR: False, BoxSource.ANNOTATION: False, BoxSource.PERSON: True}
# an eye-levelled model always runs twice; is its second pass on the levelled tight box of the
# first points (loose boxes) or on the same box rotated (boxes in the training framing)?
LEVELLED_RECROP = {BoxSource.DETECTOR: True, BoxSource.ANNOTATION: False, BoxSource.PERSON: True}


@dataclass
class FaceResult:
    """One face; coordinates are 0-based picture pixels unless said otherwise."""

    box: np.ndarray  # (4,) face box x0, y0, x1, y1
    points: np.ndarray  # (p, 2) final shape S^K
    s_hat: np.ndarray  # (p, 2) arg-max shape of conv8
    s0: np.ndarray  # (p, 2) initial shape
    steps: np.ndarray  # (K + 1, p, 2) S^0 .. S^K
    candidate_index: int  # which candidate became S^0; -1 for mean-shape init
    candidate_distances: np.ndarray  # (N,) L2 distance of each candidate to S_hat, crop pixels
    candidates: np.ndarray  # (N, p, 2)
    heatmaps: np.ndarray  # (p, S, S) float32 conv8 probabilities, crop coordinates
    crop_to_image: np.ndarray  # (2, 3) affine crop -> picture
    sip_box_image: float  # SIP box side in picture pixels
    detector_score: float | None = None
    box_source: str = BoxSource.ANNOTATION.value  # where `box` came from (BoxSource)
    roll: float = 0.0  # the detector's eye line, degrees (0 for other sources): repeats the first pass
    # mirror averaging only: how far the crop's and its mirror image's final points lie apart,
    # in % of the eye-centre distance of the points (see model.metrics.REVIEW_MIRROR_GAP)
    uncertainty: float | None = None

    @property
    def needs_review(self) -> bool:
        """The model is unsure of this face: its two mirror passes disagree."""
        return self.uncertainty is not None and self.uncertainty >= REVIEW_MIRROR_GAP


@runtime_checkable
class LandmarkPredictor(Protocol):
    """What the app and the tools need of a predictor: model.predict.Predictor, and the tests'
    stand-in, which a test holds to this (so the two cannot drift apart)."""

    name: str
    path: Path | None
    device: str
    precision: str

    @property
    def mirror_average(self) -> bool: ...

    @property
    def config(self) -> DRRConfig: ...

    @property
    def layout(self) -> Layout: ...

    def detect(self, image: np.ndarray) -> list: ...

    def inference(self, image: np.ndarray, boxes=None, sources=None, rolls=None,
                  batch_size: int = 8) -> list[FaceResult]: ...

    def with_mirror_average(self, on: bool) -> LandmarkPredictor: ...


class Predictor:
    """load -> freeze -> crop, run, map back. The network given is never changed: the
    Predictor runs a frozen copy of it (model.inference.freeze)."""

    def __init__(self, model: DRR | FrozenDRR, path: Path | None = None, meta: dict | None = None,
                 device: str | None = None, mirror_average: bool = MIRROR_AVERAGE, precision: str = "auto") -> None:
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = dev
        try:
            self.precision = resolve_precision(precision, dev)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        if isinstance(model, FrozenDRR):  # another front door to an already frozen copy
            if model.precision != self.precision:
                raise CheckpointError(f"this frozen model is {model.precision}, not {self.precision}: "
                                      "freeze the network again")
            self.model = model.to(dev)
        else:
            self.model = freeze(model, self.precision, dev)
        # mirror_average: also run the mirrored crop and average the two shapes at every step
        # (test-time augmentation; the two crops go through the network as one batch)
        self.mirror_average = mirror_average
        self.path = path
        self.meta = meta or {}
        self.name = path.stem if path else "untrained"
        if path is not None and path.resolve() == DEFAULT_CHECKPOINT.resolve():
            self.name = "default"

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str | None = None,
             mirror_average: bool = MIRROR_AVERAGE, precision: str = "auto") -> Predictor:
        path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
        if device == "cuda" and not torch.cuda.is_available():
            raise CheckpointError("--device cuda asked for, but no CUDA device is available")
        model, blob = load_checkpoint(path)
        return cls(model, path, blob.get("meta", {}), device, mirror_average, precision)

    @property
    def mirror_average(self) -> bool:
        return self._mirror_average

    @mirror_average.setter
    def mirror_average(self, on: bool) -> None:
        # a layout without a left/right order (unknown point count) cannot be mirrored
        self._mirror_average = bool(on) and can_mirror(self.layout)

    def with_mirror_average(self, on: bool) -> Predictor:
        """Another front door to the same network, with mirror averaging on or off."""
        return Predictor(self.model, self.path, self.meta, self.device, on, self.precision)

    @property
    def config(self) -> DRRConfig:
        return self.model.cfg

    @property
    def layout(self) -> Layout:
        return layout_for(self.model.cfg.num_points)

    def detect(self, image: np.ndarray) -> list[Detection]:
        return detect_faces(image)

    @torch.inference_mode()
    def run_crops(self, crops: torch.Tensor, starts: torch.Tensor | None = None) -> Trace:
        """Network on a batch of crops (B, 3, S, S), RGB 0..255; trace in crop pixels. starts
        (B, p, 2), crop pixels: S^0 given instead of the candidate nearest conv8's arg-max."""
        crops = crops.to(self.device, torch.float32)
        if starts is not None:
            starts = starts.to(self.device, torch.float32)
        if not self.mirror_average:
            return self.model(crops, init_override=starts)
        b = crops.shape[0]
        mirror = self.layout.mirror_array()
        if starts is not None:  # the mirrored crop starts from the mirrored shape
            flipped = starts[:, torch.as_tensor(mirror, device=starts.device)].clone()
            flipped[..., 0] = (self.model.cfg.input_size - 1) - flipped[..., 0]
            starts = torch.cat([starts, flipped])
        both = self.model(torch.cat([crops, crops.flip(-1)]), init_override=starts)
        return average_mirrored(both, b, self.model.cfg.input_size, mirror)

    def inference(self, image: np.ndarray, boxes=None, sources=None, rolls=None,
                  batch_size: int = 8) -> list[FaceResult]:
        """Landmarks and trace for every face of an RGB uint8 picture. boxes: face boxes
        [x0, y0, x1, y1] in the network's convention (tight landmark box); None runs the face
        detector. sources: a BoxSource (or its value) per box, or one for all (default: the
        detector's for detected faces, annotation for given boxes); they decide the passes (the
        policy table above). rolls: the detector's eye line per box (degrees), for an eye-levelled
        model's first pass. Each result's box, box_source and roll let a caller run the same
        face again and get the same points."""
        if boxes is None:
            found = self.detect(image)
            boxes, scores = [d.box for d in found], [d.score for d in found]
            rolls = [d.roll for d in found]
            sources = BoxSource.DETECTOR
        else:
            boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
            scores = [None] * len(boxes)
        if sources is None or isinstance(sources, (str, BoxSource)):
            sources = [sources or BoxSource.ANNOTATION] * len(boxes)
        sources = [BoxSource(s) for s in sources]
        rolls = [float(a) for a in rolls] if rolls is not None else [0.0] * len(boxes)
        table = LEVELLED_RECROP if self.model.cfg.level_eyes else SECOND_PASS
        recrop = [table[s] for s in sources]
        results = self.run(image, boxes, recrop, rolls, scores, batch_size)
        return [replace(r, box_source=s.value, roll=a) for r, s, a in zip(results, sources, rolls)]

    def run(self, image: np.ndarray, boxes: list[np.ndarray], recrop: list[bool], rolls: list[float],
            scores: list | None = None, batch_size: int = 8) -> list[FaceResult]:
        """The passes themselves, each face's second pass chosen by the caller: inference()
        applies the policy; benchmarks that compare passes (bench.accuracy's re-crop columns)
        call this. An eye-levelled model always runs twice: the first pass's crop is rotated by
        the roll (the detector's eye line, or 0); the second levels the first pass's eye line,
        with recrop on the levelled tight box of the first points, without on the same box
        rotated (a box in the training convention: re-framing it from predicted points cost 0.3
        of inter-pupil error on 60 validation faces, rotating it gained 0.06)."""
        boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
        scores = scores if scores is not None else [None] * len(boxes)
        level = self.model.cfg.level_eyes
        angles = [float(a) for a in rolls] if level else [0.0] * len(boxes)
        results = self._run(image, boxes, angles, scores, batch_size)
        if not results:
            return results
        if level:
            second = [levelled_recrop(b, a, r.points, self.layout) if rc else (b, first_pass_roll(a, r.points, self.layout))
                      for b, a, r, rc in zip(boxes, angles, results, recrop)]
            return self._run(image, [b for b, _ in second], [a for _, a in second], scores, batch_size)
        again = [i for i, rc in enumerate(recrop) if rc]
        if again:
            redo = self._run(image, [refined_box(boxes[i], results[i].points) for i in again], [0.0] * len(again),
                             [scores[i] for i in again], batch_size)
            for i, r in zip(again, redo):
                results[i] = r
        return results

    @torch.inference_mode()
    def refit(self, image: np.ndarray, result: FaceResult, start: np.ndarray, placed: dict[int, np.ndarray]) -> np.ndarray:
        """Assisted correction the DRR way: the K refinement steps again on the face's crop,
        from `start` (picture pixels, e.g. model.correction's update) with the placed points held
        at every step, so that the network looks at the picture around the corrected points.
        One unmirrored pass; returns the (p, 2) final points, the placed ones exactly placed."""
        size = self.model.cfg.input_size
        to_crop = geometry.invert(result.crop_to_image)
        crop = torch.from_numpy(geometry.warp(image, to_crop, size)).permute(2, 0, 1)[None]
        s0 = torch.from_numpy(geometry.apply(to_crop, np.asarray(start, float))).float()[None]
        mask = torch.zeros(1, len(start), dtype=torch.bool)
        pos = s0.clone()
        for k, xy in placed.items():
            mask[0, k] = True
            pos[0, k] = torch.from_numpy(geometry.apply(to_crop, np.asarray(xy, float)[None])[0])
        trace = self.model(crop.to(self.device, torch.float32), init_override=s0.to(self.device),
                           hold=(mask.to(self.device), pos.to(self.device)))
        out = geometry.apply(result.crop_to_image, trace.final[0].float().cpu().numpy())
        for k, xy in placed.items():
            out[k] = xy
        return out

    def first_pass(self, image: np.ndarray, boxes, rolls=None) -> list[FaceResult]:
        """One pass of the network on the given boxes (rotated by rolls, degrees), never a
        second one: for benchmarks that report both."""
        boxes = [np.asarray(b, dtype=np.float64) for b in boxes]
        angles = [float(a) for a in rolls] if rolls is not None else [0.0] * len(boxes)
        return self._run(image, boxes, angles, [None] * len(boxes), 8)

    def track(self, image: np.ndarray, shapes: list[np.ndarray], start_from_shapes: bool = False) -> list[FaceResult]:
        """Video tracking (model.tracking): each face framed by the tight box of its points on
        the previous frame (the training framing, so one pass, as an annotation box), and with
        start_from_shapes those points, moved into the crop, as S^0 instead of a candidate.
        The results' heatmaps are left empty (p, 0, 0): the softmax of the p maps cost 5 ms a
        frame, a sixth of a tracked frame on a 2-core CPU; run inference() for a frame's maps."""
        shapes = [np.asarray(s, dtype=np.float64) for s in shapes]
        boxes = [geometry.box_of_points(s) for s in shapes]
        results = self._run(image, boxes, [0.0] * len(boxes), [None] * len(boxes), 8,
                            shapes if start_from_shapes else None, maps=False)
        return [replace(r, box_source=BoxSource.ANNOTATION.value) for r in results]

    def _run(self, image: np.ndarray, boxes: list[np.ndarray], angles: list[float], scores: list,
             batch_size: int, starts: list[np.ndarray] | None = None, maps: bool = True) -> list[FaceResult]:
        size = self.model.cfg.input_size
        results: list[FaceResult] = []
        for start in range(0, len(boxes), batch_size):
            chunk = boxes[start : start + batch_size]
            mats = [geometry.crop_matrix(b, size, a) for b, a in zip(chunk, angles[start : start + batch_size])]
            crops = np.stack([geometry.warp(image, m, size) for m in mats])
            s0 = None
            if starts is not None:
                s0 = torch.from_numpy(np.stack([geometry.apply(m, s) for m, s in zip(mats, starts[start : start + batch_size])])).float()
            trace = self.run_crops(torch.from_numpy(crops).permute(0, 3, 1, 2), s0)
            results += self._to_results(trace, chunk, mats, scores[start : start + batch_size], maps)
        return results

    def _to_results(self, trace: Trace, boxes, mats, scores, maps: bool = True) -> list[FaceResult]:
        if maps:
            probs = trace.probabilities().cpu().numpy().astype(np.float32)
        else:
            probs = np.zeros((len(boxes), trace.logits.shape[1], 0, 0), np.float32)
        shapes = trace.shapes.float().cpu().numpy()
        s_hat = trace.s_hat.float().cpu().numpy()
        dist = np.sqrt(trace.candidate_distances.float().cpu().numpy())
        cands = self.model.candidates.cpu().numpy()
        gaps = None if trace.mirror_gap is None else trace.mirror_gap.float().cpu().numpy()
        out = []
        for i, (box, m) in enumerate(zip(boxes, mats)):
            inv = geometry.invert(m)
            scale = float(np.sqrt(abs(np.linalg.det(inv[:, :2]))))
            steps = np.stack([geometry.apply(inv, s) for s in shapes[i]])
            uncertainty = None
            if gaps is not None:  # crop pixels -> % of the eye-centre distance of the points
                uncertainty = float(100.0 * gaps[i] * scale / normaliser(steps[-1][None], self.layout)[0])
            out.append(FaceResult(
                box=np.asarray(box, dtype=np.float64), points=steps[-1], s_hat=geometry.apply(inv, s_hat[i]),
                s0=steps[0], steps=steps, candidate_index=int(trace.candidate_index[i]),
                candidate_distances=dist[i], candidates=np.stack([geometry.apply(inv, c) for c in cands]),
                heatmaps=probs[i], crop_to_image=inv, sip_box_image=trace.sip_box * scale,
                detector_score=scores[i], uncertainty=uncertainty))
        return out


def average_mirrored(trace: Trace, b: int, size: int, mirror: np.ndarray) -> Trace:
    """Crops b..2b-1 are the mirror images of crops 0..b-1: the trace of the first b, with
    S^0..S^K replaced by the mean of each crop's shapes and its mirror image's (x -> S - 1 - x,
    points put back in the unmirrored order). conv8, S_hat and the candidate stay the first
    pass's; every step is the mean of the two passes' steps, so S^K is the final shape."""
    flipped = trace.shapes[b:][:, :, torch.as_tensor(mirror, device=trace.shapes.device)].clone()
    flipped[..., 0] = (size - 1) - flipped[..., 0]
    gap = (trace.shapes[:b, -1] - flipped[:, -1]).norm(dim=-1).mean(-1)
    return replace(trace, logits=trace.logits[:b], s_hat=trace.s_hat[:b], mirror_gap=gap,
                   candidate_index=trace.candidate_index[:b], candidate_distances=trace.candidate_distances[:b],
                   shapes=0.5 * (trace.shapes[:b] + flipped), updates=[u[:b] for u in trace.updates])


def refined_box(box: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The tight box of the first-pass points, unless they collapsed or spread implausibly
    (side outside half to twice the given box): then the given box stays."""
    new = geometry.box_of_points(points)
    side = max(box[2] - box[0], box[3] - box[1])
    new_side = max(new[2] - new[0], new[3] - new[1])
    ok = np.isfinite(new).all() and 0.5 * side <= new_side <= 2.0 * side
    return new if ok else np.asarray(box, dtype=np.float64)


def first_pass_roll(angle: float, points: np.ndarray, layout: Layout) -> float:
    """The eye line of the first pass's points (degrees), or its own roll if they are not finite."""
    if not np.isfinite(points).all():
        return angle
    return geometry.eye_angle(*layout.eye_centres(points))


def levelled_recrop(box: np.ndarray, angle: float, points: np.ndarray, layout: Layout) -> tuple[np.ndarray, float]:
    """(box, roll) of an eye-levelled model's second pass: the levelled tight box of the first
    pass's points, unless they collapsed or spread implausibly; then the first crop stays."""
    if not np.isfinite(points).all():
        return np.asarray(box, dtype=np.float64), angle
    roll = geometry.eye_angle(*layout.eye_centres(points))
    new = geometry.levelled_box(points, roll)
    side = max(box[2] - box[0], box[3] - box[1])
    new_side = max(new[2] - new[0], new[3] - new[1])
    if 0.5 * side <= new_side <= 2.0 * side:
        return new, roll
    return np.asarray(box, dtype=np.float64), angle


def pre_label(predictor: LandmarkPredictor, image: np.ndarray, near: np.ndarray) -> FaceResult | None:
    """The face around `near` (a box, e.g. an annotation's) pre-labelled as the app does: the
    detector on the whole picture, the detection overlapping `near` most (model.detect.
    match_detection), then the inference policy for a detector box with its eye line. None when
    the detector misses the face. Every "as the app runs" figure (drr-eval --boxes detector, the
    correction statistics, bench.qa, bench.uncertainty) goes through here."""
    from .detect import match_detection

    found = match_detection(predictor.detect(image), np.asarray(near, dtype=np.float64))
    if found is None:
        return None
    return predictor.inference(image, [found.box], BoxSource.DETECTOR, [found.roll])[0]
