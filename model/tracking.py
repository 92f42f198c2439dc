"""Landmarks through a clip: DRR tracking from the previous frame, and corrections carried
through time (keyframe propagation). Qt-free; the app, drr-predict and bench.video use it.

Tracking (`Tracker.step(frame)`): the face detector runs on the first frame, after a cut (the
frame's thumbnail differs from the last one's by more than `cut_threshold` grey levels, after
removing the brightness change), on a schedule when `redetect_every` > 0, and when a face's
tracking is lost. Otherwise each face is framed by the tight box of its points on the previous
frame, the box the network was trained on (so one pass, as for an annotation box, and no
detector), and the K steps refine from there; with `start_from_previous` those points are also
S^0 (in place of the candidate nearest conv8's arg-max). A face is lost when its new points are
not finite, fewer than half lie in the frame (it is leaving), its centre jumps by more than
`max_jump` eye distances or its size changes by more than 1.5x in one frame, conv8's arg-max
and the final points disagree by more than `max_heatmap_gap` eye distances (the crop no longer
shows a face), or, with mirror averaging, the two mirror passes disagree by `lost_gap` % of the
eye distance. Detections are matched to faces by box overlap (IoU >= 0.3), so faces keep their
identity (`track`, 1, 2, ... in order of appearance) across frames, cuts included.

Smoothing (on by default, `smoothing=False` turns it off): a One-Euro filter of each face's
shape seen in the face's own frame (ShapeSmoother), on the output points only (the tracker goes
on from the unfiltered ones). `python -m bench.video` measures what it does to error and jitter.

Propagation (`propagate`): a frame a person corrected is a keyframe. Its correction is the
person's points minus the model's, written in the model's eye frame (x along the eye line, unit
the eye-centre distance, model.correction.to_frame) so that it moves, turns and scales with the
face. Between two keyframes of one shot each frame's model points get the two corrections
blended linearly in time; before the first and after the last keyframe the nearest one's
correction is held. Corrections never cross a cut.

Re-tracking (`Retrack`, `retrack`): after a correction on frame k, the frames after k up to the
next keyframe or cut are tracked again from the person's points (the first one framed by their
box), and propagation then pulls them towards the keyframes on both sides, the correction
carried forward measured against the network's points on frame k framed by the person's points
(`bases`). bench.video measures it against propagation alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from .annotation_files import ClipFace, FaceRecord
from .correction import to_frame
from .detect import Detection
from .geometry import box_iou, box_of_points
from .layout import layout_for
from .predict import BoxSource, FaceResult, Predictor

CUT_THRESHOLD = 25.0  # mean grey difference of 32 x 24 thumbnails (0..255) that means a new shot
MATCH_IOU = 0.3  # a detection continues a face when their boxes overlap this much
THUMB = (32, 24)


def eye_distance(points: np.ndarray) -> float:
    right, left = layout_for(len(points)).eye_centres(points)
    return float(max(np.hypot(*(left - right)), 1e-6))


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A small grey copy of the frame with its mean removed: brightness drift is not a cut."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
    return small - small.mean()


def is_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    return previous is not None and float(np.abs(current - previous).mean()) > threshold


class OneEuro:
    """The One-Euro filter (Casiez et al. 2012) on a (p, 2) shape, in eye distances: a low-pass
    whose cutoff rises with the speed, so still faces are steadied and moving ones not delayed."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, points: np.ndarray, dt: float) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = points.copy(), np.zeros_like(points)
            return points
        scale = eye_distance(points)
        dx = (points - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        speed = np.linalg.norm(self.dx, axis=-1, keepdims=True) / scale
        a = self._alpha(self.min_cutoff + self.beta * speed, dt)
        self.x = self.x + a * (points - self.x)
        return self.x.copy()


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (scale, rotation, shift) taking src (p, 2) closest to dst in least
    squares (Umeyama, without reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, d]) @ vt
    scale = (sv * [1.0, d]).sum() / max((a ** 2).sum(), 1e-12)
    lin = scale * rot
    return np.hstack([lin, (mu_d - lin @ mu_s)[:, None]])


class ShapeSmoother:
    """One-Euro smoothing of a face's shape in its own frame: each frame's points are split into
    a similarity (where the face is, its size and roll: fitted to all p points, so already
    steady) and the shape seen through it; only the shape is filtered, so moving, turning and
    zooming faces are not delayed, only the points' own flicker is."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5) -> None:
        self.filter = OneEuro(min_cutoff, beta)
        self.shape: np.ndarray | None = None  # the filtered shape, in the first frame's pixels

    def __call__(self, points: np.ndarray, dt: float) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if self.shape is None:
            self.shape = self.filter(points, dt)
            return points.copy()
        m = similarity(self.shape, points)  # filtered shape -> this frame
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
        seen = points @ inv[:, :2].T + inv[:, 2]  # this frame's points in the shape's frame
        self.shape = self.filter(seen, dt)
        return self.shape @ m[:, :2].T + m[:, 2]


@dataclass
class TrackerSettings:
    start_from_previous: bool = False  # S^0 from the previous points (bench.video measures it)
    smoothing: bool = True  # One-Euro filter of the shape in the face's frame (ShapeSmoother)
    min_cutoff: float = 1.0
    beta: float = 0.5
    redetect_every: int = 0  # also run the detector every N frames (0: only when needed)
    cut_threshold: float = CUT_THRESHOLD
    max_jump: float = 0.6  # eye distances the face centre may move in one frame
    max_heatmap_gap: float = 0.5  # mean conv8 arg-max to final point distance, eye distances
    lost_gap: float = 10.0  # mirror-pass gap (% of eye distance) that loses a face (mirror averaging)
    min_inside: float = 0.5  # fraction of the points in the frame below which a face has left


@dataclass
class TrackedFace:
    track: int  # identity: 1, 2, ... in order of appearance
    points: np.ndarray  # (p, 2) picture pixels (smoothed when smoothing is on)
    result: FaceResult  # the network's result on this frame (its points unsmoothed)
    detected: bool  # this frame's box came from the detector


@dataclass
class FrameFaces:
    index: int  # 0-based frame index
    faces: list[TrackedFace]
    detector_ran: bool
    cut: bool
    lost: list[int] = field(default_factory=list)  # tracks lost on this frame (re-detected or dropped)


@dataclass
class _Track:
    track: int
    points: np.ndarray  # unsmoothed, what the next frame starts from
    box: np.ndarray
    smoother: ShapeSmoother | None


class Tracker:
    """Faces through a clip, frame after frame: `step(frame)` for each in order."""

    def __init__(self, predictor: Predictor, settings: TrackerSettings | None = None, fps: float = 25.0) -> None:
        self.predictor = predictor
        self.settings = settings or TrackerSettings()
        self.dt = 1.0 / max(fps, 1e-3)
        self.tracks: list[_Track] = []
        self.next_track = 1
        self.index = 0
        self.detector_calls = 0
        self._thumb: np.ndarray | None = None

    def resume(self, previous: np.ndarray, faces: dict[int, np.ndarray], index: int, next_track: int) -> None:
        """Go on with a clip tracked before (reopened before its tracking ended): `previous` is
        frame index - 1's picture and `faces` its faces (track -> points), so that the next
        step(), frame `index`, keeps their identities; new faces get next_track on (above every
        track the clip has had, so an identity is never given twice)."""
        self.tracks = [_Track(t, np.asarray(p, dtype=np.float64), box_of_points(p), self._smoother())
                       for t, p in sorted(faces.items())]
        self.next_track = max(next_track, max(faces, default=0) + 1)
        self.index = index
        self._thumb = thumbnail(previous)

    def new_identity(self) -> int:
        """An identity never given in this clip (for a face a person adds)."""
        track, self.next_track = self.next_track, self.next_track + 1
        return track

    def add_face(self, points: np.ndarray, track: int | None = None) -> int:
        """A face the detector missed, given by a person on the current frame (the last one
        stepped): tracked from the next frame on under `track` (default: a new identity), which
        is returned."""
        track = self.new_identity() if track is None else track
        points = np.asarray(points, dtype=np.float64)
        self.tracks = sorted([*self.tracks, _Track(track, points, box_of_points(points), self._smoother())],
                             key=lambda t: t.track)
        return track

    def set_points(self, track: int, points: np.ndarray) -> None:
        """A person corrected this face on the current frame: the next frames track from there."""
        for t in self.tracks:
            if t.track == track:
                t.points = np.asarray(points, dtype=np.float64)
                t.box = box_of_points(t.points)
                if t.smoother is not None:
                    t.smoother = self._smoother()

    def step(self, image: np.ndarray) -> FrameFaces:
        """The faces of the next frame (RGB uint8)."""
        st = self.settings
        thumb = thumbnail(image)
        cut = is_cut(self._thumb, thumb, st.cut_threshold)
        self._thumb = thumb
        scheduled = st.redetect_every > 0 and self.index % st.redetect_every == 0
        kept: list[tuple[_Track, FaceResult]] = []
        lost: list[_Track] = []
        if cut:
            lost = list(self.tracks)
        elif self.tracks:
            results = self.predictor.track(image, [t.points for t in self.tracks], st.start_from_previous)
            for t, r in zip(self.tracks, results):
                if self._is_lost(t, r, image.shape):
                    lost.append(t)
                else:
                    kept.append((t, r))
        run_detector = not self.tracks or cut or bool(lost) or scheduled
        detected: list[tuple[_Track, FaceResult]] = []
        if run_detector:
            detected = self._detect(image, kept, lost, cut)
        faces = [self._emit(t, r, False, cut) for t, r in kept] + [self._emit(t, r, True, cut) for t, r in detected]
        faces.sort(key=lambda f: f.track)
        self.tracks = sorted([t for t, _ in kept] + [t for t, _ in detected], key=lambda t: t.track)
        out = FrameFaces(self.index, faces, run_detector, cut, [t.track for t in lost])
        self.index += 1
        return out

    def _is_lost(self, t: _Track, r: FaceResult, shape: tuple[int, ...]) -> bool:
        st = self.settings
        p = r.points
        if not np.isfinite(p).all():
            return True
        h, w = shape[:2]
        inside = ((p[:, 0] >= 0) & (p[:, 0] <= w - 1) & (p[:, 1] >= 0) & (p[:, 1] <= h - 1)).mean()
        d_old, d_new = eye_distance(t.points), eye_distance(p)
        jump = np.linalg.norm(p.mean(0) - t.points.mean(0)) / d_old
        heatmap_gap = np.linalg.norm(r.s_hat - p, axis=-1).mean() / d_new
        gap = r.uncertainty if r.uncertainty is not None else 0.0
        return bool(inside < st.min_inside or jump > st.max_jump or not 2 / 3 <= d_new / d_old <= 1.5
                    or heatmap_gap > st.max_heatmap_gap or gap >= st.lost_gap)

    def _detect(self, image: np.ndarray, kept: list[tuple[_Track, FaceResult]], lost: list[_Track],
                cut: bool) -> list[tuple[_Track, FaceResult]]:
        """Detections not already tracked: each continues the lost face it overlaps most, or
        starts a new one. One network pass each, with the detector's policy."""
        self.detector_calls += 1
        found: list[Detection] = self.predictor.detect(image)
        fresh = [d for d in found if all(box_iou(d.box, r.box) < MATCH_IOU and box_iou(d.box, t.box) < MATCH_IOU
                                         for t, r in kept)]
        if not fresh:
            return []
        results = self.predictor.inference(image, [d.box for d in fresh], BoxSource.DETECTOR, [d.roll for d in fresh])
        out: list[tuple[_Track, FaceResult]] = []
        free = list(lost)
        for d, r in zip(fresh, results):
            iou, best = max(((box_iou(d.box, t.box), t) for t in free), key=lambda x: x[0], default=(0.0, None))
            if best is not None and iou >= MATCH_IOU:
                free.remove(best)
                track = best.track
            else:
                track, self.next_track = self.next_track, self.next_track + 1
            out.append((_Track(track, r.points, r.box, self._smoother()), r))
        return out

    def _smoother(self) -> ShapeSmoother | None:
        st = self.settings
        return ShapeSmoother(st.min_cutoff, st.beta) if st.smoothing else None

    def _emit(self, t: _Track, r: FaceResult, detected: bool, cut: bool) -> TrackedFace:
        t.points = np.asarray(r.points, dtype=np.float64)
        t.box = box_of_points(t.points)
        points = t.points if t.smoother is None else t.smoother(t.points, self.dt)
        return TrackedFace(t.track, points, r, detected)


class Retrack:
    """One face tracked again from a person's points on a keyframe (re-tracking after a
    correction): `step(image)` for each following frame, in order. The first frame is framed by
    the tight box of the person's points, each later one by the previous frame's result, as
    `Tracker.step` does; smoothing starts afresh from `base`. `step` returns None from the first
    frame where the face is lost (Tracker's tests) or a cut is seen, and ever after.

    `base` is the network's points on the keyframe itself, framed by the person's points: the
    model the re-tracked frames came from, so `propagate(..., bases={keyframe: base})` carries
    forward what the network still gets wrong with that framing, not the correction of a framing
    the re-tracked frames no longer have."""

    def __init__(self, predictor: Predictor, key_image: np.ndarray, points: np.ndarray,
                 settings: TrackerSettings | None = None, fps: float = 25.0) -> None:
        self._tracker = Tracker(predictor, settings, fps)
        st = self._tracker.settings
        points = np.asarray(points, dtype=np.float64)
        self.base = np.asarray(predictor.track(key_image, [points], st.start_from_previous)[0].points, np.float64)
        smoother = self._tracker._smoother()
        if smoother is not None:
            smoother(self.base, self._tracker.dt)
        self._track: _Track | None = _Track(0, points, box_of_points(points), smoother)
        self._thumb = thumbnail(key_image)

    def step(self, image: np.ndarray) -> np.ndarray | None:
        if self._track is None:
            return None
        thumb = thumbnail(image)
        cut = is_cut(self._thumb, thumb, self._tracker.settings.cut_threshold)
        self._thumb = thumb
        t = self._track
        r = None if cut else self._tracker.predictor.track(image, [t.points], self._tracker.settings.start_from_previous)[0]
        if r is None or self._tracker._is_lost(t, r, image.shape):
            self._track = None
            return None
        return self._tracker._emit(t, r, False, False).points


def retrack(predictor: Predictor, key_image: np.ndarray, points: np.ndarray, images: Iterable[np.ndarray],
            settings: TrackerSettings | None = None, fps: float = 25.0) -> tuple[np.ndarray, list[np.ndarray]]:
    """(base, points of the frames after the keyframe): `Retrack` over `images` (the frames
    after the keyframe, in order, up to the next keyframe or cut), stopping where it stops."""
    r = Retrack(predictor, key_image, points, settings, fps)
    out: list[np.ndarray] = []
    for image in images:
        p = r.step(image)
        if p is None:
            break
        out.append(p)
    return r.base, out


def propagate(model: dict[int, np.ndarray], keys: dict[int, np.ndarray],
              breaks: set[int] | frozenset[int] = frozenset(),
              bases: dict[int, np.ndarray] | None = None) -> dict[int, np.ndarray]:
    """One face's points per frame after keyframe propagation (see the module docstring).
    model: frame -> the model's (p, 2) points; keys: frame -> a person's points (keyframes);
    breaks: frames that start a new shot (cuts); bases: keyframe -> the model points the frames
    after it were re-tracked from (Retrack.base): the correction carried forward from such a
    keyframe is measured against its base, the one carried backward against its model points.
    Keyframes come back as the person put them; frames without a keyframe in their shot keep the
    model's points. Vectorised over frames: a 10-minute clip's face (15,000 frames) takes a
    fraction of a second."""
    out = {f: np.asarray(p, dtype=np.float64).copy() for f, p in model.items()}
    # a keyframe's correction, in its model points' eye frame (none where the model had no face)
    residual = {k: to_frame(model[k], np.asarray(v, float) - model[k]) for k, v in keys.items() if k in model}
    ahead = {k: to_frame(b, np.asarray(keys[k], float) - b) for k, b in (bases or {}).items() if k in residual}
    frames = np.array(sorted(f for f in model if f not in keys), dtype=np.int64)
    if residual and len(frames):
        cuts = np.array(sorted(breaks), dtype=np.int64)
        keyed = np.array(sorted(residual), dtype=np.int64)
        stack = np.stack([residual[k] for k in keyed])  # (K, p, 2)
        forward = np.stack([ahead.get(k, residual[k]) for k in keyed])  # carried to the frames after
        key_shot = np.searchsorted(cuts, keyed, side="right")
        shot = np.searchsorted(cuts, frames, side="right")
        after = np.searchsorted(keyed, frames)  # the first keyframe after each frame
        before = np.maximum(after - 1, 0)
        after_c = np.minimum(after, len(keyed) - 1)
        has_before = (after > 0) & (key_shot[before] == shot)
        has_after = (after < len(keyed)) & (key_shot[after_c] == shot)
        span = np.maximum(keyed[after_c] - keyed[before], 1)
        w = np.where(has_before & has_after, (frames - keyed[before]) / span, np.where(has_after, 1.0, 0.0))
        use = has_before | has_after
        r = (1 - w)[:, None, None] * forward[before] + w[:, None, None] * stack[after_c]
        if use.any():  # frames in a shot with a keyframe
            pts = np.stack([out[f] for f in frames[use]])
            moved = pts + _from_frames(pts, r[use])
            for f, m in zip(frames[use], moved):
                out[int(f)] = m
    for k, v in keys.items():
        out[k] = np.asarray(v, dtype=np.float64).copy()
    return out


def _from_frames(points: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """model.correction.from_frame for a stack of shapes (F, p, 2) and their frame residuals."""
    layout = layout_for(points.shape[1])
    v = points[:, list(layout.left_eye)].mean(1) - points[:, list(layout.right_eye)].mean(1)
    s = np.hypot(v[:, 0], v[:, 1])
    ok = np.isfinite(s) & (s >= 1e-6)  # as eye_frame: no usable eye line, no rotation or scale
    c = np.where(ok, v[:, 0] / np.where(ok, s, 1.0), 1.0)
    si = np.where(ok, v[:, 1] / np.where(ok, s, 1.0), 0.0)
    s = np.where(ok, s, 1.0)
    rot = np.stack([np.stack([c, -si], -1), np.stack([si, c], -1)], -2)  # (F, 2, 2)
    return np.einsum("fpj,fij->fpi", residuals, rot) * s[:, None, None]


def clip_faces(frame: FrameFaces) -> list[ClipFace]:
    """A tracked frame's faces as the clip files hold them: the model's (status predicted), in
    track order."""
    return [ClipFace(f.track, FaceRecord(f.points, "predicted", f.result.box, box_source=f.result.box_source))
            for f in frame.faces]
