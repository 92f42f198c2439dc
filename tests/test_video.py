"""Video: the clip reader, the tracker, keyframe propagation, the clip files and the CLI, on
clips this file writes with OpenCV into tmp_path (never a committed video)."""

from __future__ import annotations

import numpy as np
import pytest

from model import annotation_files as files
from model.correction import from_frame, to_frame
from model.geometry import box_of_points
from model.images import read_image
from model.predict import Predictor
from model.resources import SAMPLE, resource
from model.tracking import Tracker, TrackerSettings, is_cut, propagate, retrack, similarity, thumbnail
from model.video import VideoError, VideoReader, write_video

W, H = 480, 360


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(precision="fp32")


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """The shipped sample's face, reduced to 200 x 200 (the astronaut's face is about 110 px there)."""
    import cv2

    img = read_image(resource(SAMPLE))
    return cv2.resize(img[60:460, 90:490], (200, 200), interpolation=cv2.INTER_AREA)


def canvas(value: int = 90) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.dstack([(value + 0.2 * xx) % 256, (value + 0.1 * yy) % 256, np.full((H, W), value)]).astype(np.uint8)


def paste(frame: np.ndarray, face: np.ndarray, x: int, y: int) -> np.ndarray:
    """The face pasted at (x, y), clipped to the frame (x may be negative: a face leaving)."""
    out = frame.copy()
    x0 = max(x, 0)
    part = face[:, x0 - x : max(0, min(face.shape[1], W - x))]
    out[y : y + face.shape[0], x0 : x0 + part.shape[1]] = part
    return out


def two_face_clip(face: np.ndarray, n: int = 8) -> list[np.ndarray]:
    """Two faces moving towards each other by 3 px a frame."""
    return [paste(paste(canvas(), face, 20 + 3 * i, 80), face, 260 - 3 * i, 100) for i in range(n)]


# --- the reader --------------------------------------------------------------------------------


def test_reader_counts_seeks_and_caches(tmp_path, face) -> None:
    frames = [paste(canvas(40 + 20 * i), face, 10 * i, 50) for i in range(10)]
    path = write_video(tmp_path / "clip.avi", frames, fps=12.0)
    with VideoReader(path, cache_frames=3) as r:
        assert len(r) == 10 and r.size == (W, H) and abs(r.fps - 12.0) < 0.01
        seq = list(r)
        assert len(seq) == 10 and seq[0].shape == (H, W, 3) and seq[0].dtype == np.uint8
        back = r.frame(2)  # a seek backwards, beyond the cache of three
        assert np.abs(back.astype(int) - frames[2]).mean() < 6  # MJPG is lossy
        assert np.abs(back.astype(int) - frames[7]).mean() > 10
        assert r.frame(2) is back and len(r._cache) <= 3  # cached, and the cache stays small
        with pytest.raises(VideoError, match=r"clip\.avi: no frame 11 \(the clip has 10\)"):
            r.frame(10)


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40])
def test_corrupt_clip_is_refused_with_its_name(tmp_path, content) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoError, match="broken.mp4"):
        VideoReader(bad)
    with pytest.raises(VideoError, match="no such file"):
        VideoReader(tmp_path / "missing.mp4")


# --- tracking ----------------------------------------------------------------------------------


def test_faces_keep_their_identity(predictor, face) -> None:
    tracker = Tracker(predictor, TrackerSettings())
    outs = [tracker.step(f) for f in two_face_clip(face)]
    assert outs[0].detector_ran and not any(o.detector_ran for o in outs[1:])
    assert tracker.detector_calls == 1
    # which track is the face on the left (the detector numbers them by its score)
    start = {f.track: f.points[:, 0].mean() for f in outs[0].faces}
    left_track = min(start, key=start.get)
    assert start[3 - left_track] - start[left_track] > 200
    for i, o in enumerate(outs):
        assert sorted(f.track for f in o.faces) == [1, 2]
        for f in o.faces:
            # the faces move towards each other (6 px closer each frame), so a swap of
            # identities would put a track ~200 px from where its face is
            want = start[f.track] + (3 * i if f.track == left_track else -3 * i)
            assert abs(f.points[:, 0].mean() - want) < 10
    assert outs[-1].faces[0].detected is False


def test_a_resumed_tracker_keeps_the_identities_it_is_given(predictor, face) -> None:
    """A clip reopened before its tracking ended goes on from its last tracked frame: the faces
    keep their tracks (a fresh tracker would number them 1, 2 again) and a new face gets a new one."""
    frames = two_face_clip(face)
    before = Tracker(predictor, TrackerSettings())
    outs = [before.step(f) for f in frames[:4]]
    x = {f.track: f.points[:, 0].mean() for f in outs[3].faces}
    left = min(x, key=x.get)
    given = {7 if f.track == left else 9: f.points for f in outs[3].faces}  # the clip's own numbers
    tracker = Tracker(predictor, TrackerSettings())
    tracker.resume(frames[3], given, 4, next_track=12)
    for i, frame in enumerate(frames[4:], start=4):
        out = tracker.step(frame)
        assert out.index == i and not out.detector_ran and sorted(f.track for f in out.faces) == [7, 9]
        xs = {f.track: f.points[:, 0].mean() for f in out.faces}
        assert xs[7] < xs[9]  # the left face is still 7
    assert tracker.next_track == 12


def test_a_face_added_by_a_person_is_tracked_under_a_new_identity(predictor, face) -> None:
    """A face the tracker does not follow (here: dropped from the resumed tracker, as a missed
    detection would be), given back by a person on the current frame, is tracked from the next
    frame on with an identity never used, and the detector is not needed for it."""
    frames = two_face_clip(face)
    first = Tracker(predictor, TrackerSettings())
    outs = [first.step(f) for f in frames[:3]]
    by_x = sorted(outs[2].faces, key=lambda f: f.points[:, 0].mean())
    tracker = Tracker(predictor, TrackerSettings())
    tracker.resume(frames[2], {5: by_x[0].points}, 3, next_track=8)  # the right face missed
    assert tracker.add_face(by_x[1].points) == 8 and tracker.next_track == 9
    for frame in frames[3:]:
        out = tracker.step(frame)
        assert sorted(f.track for f in out.faces) == [5, 8] and not out.detector_ran
    xs = {f.track: f.points[:, 0].mean() for f in out.faces}
    assert xs[5] < xs[8]  # the added face is the right one, followed as it moved


def test_a_cut_re_detects(predictor, face) -> None:
    shot1 = [paste(canvas(90), face, 40 + 2 * i, 60) for i in range(4)]
    shot2 = [paste(canvas(200)[:, ::-1], face[:, ::-1], 250 - 2 * i, 140) for i in range(4)]
    tracker = Tracker(predictor, TrackerSettings())
    outs = [tracker.step(f) for f in shot1 + shot2]
    assert [o.cut for o in outs] == [False] * 4 + [True, False, False, False]
    assert [o.detector_ran for o in outs] == [True, False, False, False, True, False, False, False]
    x = outs[4].faces[0].points[:, 0]
    assert x.min() > 250 and x.max() < 450  # the new shot's face (pasted at x 244..444), not the old place


def test_a_face_leaving_the_frame_is_dropped(predictor, face) -> None:
    frames = [paste(canvas(), face, x, 60) for x in (40, 0, -50, -100, -150, -200)]
    tracker = Tracker(predictor, TrackerSettings())
    outs = [tracker.step(f) for f in frames]
    assert outs[0].faces and not outs[-1].faces
    assert any(o.lost for o in outs[1:]) and tracker.detector_calls >= 2


def test_retracking_from_a_keyframe_changes_the_frames_after_it_and_stops_at_a_cut(predictor, face) -> None:
    frames = [paste(canvas(), face, 40 + 4 * i, 60) for i in range(7)]
    tracker = Tracker(predictor, TrackerSettings())
    model = {i: tracker.step(f).faces[0].points for i, f in enumerate(frames)}
    key = model[2] + [0.0, 6.0]  # a person moved the face down on frame 3; frame 6 is the next keyframe
    base, again = retrack(predictor, frames[2], key, frames[3:5], TrackerSettings())
    assert len(again) == 2 and base.shape == (68, 2)
    assert all(np.abs(again[i] - model[3 + i]).max() > 0.05 for i in range(2))  # tracked again: changed
    retracked = {**model, 3: again[0], 4: again[1]}
    keys = {2: key, 5: model[5] + [0.0, 2.0]}
    plain = propagate(model, keys)
    out = propagate(retracked, keys, bases={2: base})
    for f in (0, 1):  # not before it
        np.testing.assert_allclose(out[f], plain[f])
    for f in (2, 5):  # the keyframes as the person put them
        np.testing.assert_allclose(out[f], keys[f])
    assert np.abs(out[3] - plain[3]).max() > 0.05
    np.testing.assert_allclose(out[6], plain[6])  # after the next keyframe: untouched
    other_shot = paste(canvas(200)[:, ::-1], face[:, ::-1], 250, 140)
    _, stopped = retrack(predictor, frames[2], key, [frames[3], other_shot, frames[5]], TrackerSettings())
    assert len(stopped) == 1  # the cut ends it
    _, lost = retrack(predictor, frames[2], key + [300.0, 0.0], frames[3:5], TrackerSettings())
    assert lost == []  # from points where there is no face: lost at once, nothing re-tracked


def test_cut_measure_ignores_brightness_drift(face) -> None:
    a = paste(canvas(90), face, 40, 60)
    brighter = np.clip(a.astype(int) + 30, 0, 255).astype(np.uint8)
    other = paste(canvas(200)[:, ::-1], face[:, ::-1], 250, 140)
    assert not is_cut(thumbnail(a), thumbnail(brighter))
    assert is_cut(thumbnail(a), thumbnail(other))


def test_similarity_fit_is_exact_for_a_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(68, 2)) * 30
    t = np.deg2rad(17)
    m = np.array([[1.3 * np.cos(t), -1.3 * np.sin(t), 12.0], [1.3 * np.sin(t), 1.3 * np.cos(t), -7.0]])
    np.testing.assert_allclose(similarity(src, src @ m[:, :2].T + m[:, 2]), m, atol=1e-9)


def test_smoothing_steadies_a_still_face_without_lag_on_a_moving_one() -> None:
    from model.tracking import ShapeSmoother

    rng = np.random.default_rng(1)
    base = rng.normal(size=(68, 2)) * 20 + 200
    base[36:48] = [[150 + 5 * k, 180] for k in range(6)] + [[230 + 5 * k, 180] for k in range(6)]
    smoother, raw_jitter, smooth_jitter, prev_raw, prev_out = ShapeSmoother(), [], [], None, None
    for i in range(60):
        moved = base + [4.0 * i, 0]  # moving 4 px a frame
        noisy = moved + rng.normal(size=moved.shape) * 1.5
        out = smoother(noisy, 1 / 25)
        if prev_out is not None:
            raw_jitter.append(np.abs((noisy - moved) - prev_raw).mean())
            smooth_jitter.append(np.abs((out - moved) - prev_out).mean())
        prev_raw, prev_out = noisy - moved, out - moved
    assert np.mean(smooth_jitter) < 0.6 * np.mean(raw_jitter)
    assert np.abs((out - (base + [4.0 * 59, 0])).mean(0)).max() < 1.0  # no lag behind the motion


# --- propagation -------------------------------------------------------------------------------


def moving_face(n: int, roll_per_frame: float = 2.0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(2)
    shape = rng.normal(size=(68, 2)) * 15
    shape[36:42] += [-30, -20]
    shape[42:48] += [30, -20]
    out = {}
    for f in range(n):
        t = np.deg2rad(roll_per_frame * f)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        out[f] = shape @ rot.T * (1 + 0.01 * f) + [200 + 3 * f, 150]
    return out


def test_keyframes_pull_the_frames_between_them() -> None:
    model = moving_face(21)
    fix0, fix20 = np.zeros((68, 2)), np.zeros((68, 2))
    fix0[8], fix20[8] = [0.0, 0.2], [0.0, 0.4]  # the chin lower, in eye distances of the eye frame
    keys = {0: model[0] + from_frame(model[0], fix0), 20: model[20] + from_frame(model[20], fix20)}
    out = propagate(model, keys)
    np.testing.assert_allclose(out[0], keys[0])
    np.testing.assert_allclose(out[20], keys[20])
    mid = to_frame(model[10], out[10] - model[10])
    np.testing.assert_allclose(mid[8], [0.0, 0.3], atol=1e-9)  # halfway, and turned with the face
    np.testing.assert_allclose(np.delete(mid, 8, 0), 0.0, atol=1e-9)
    quarter = to_frame(model[5], out[5] - model[5])
    np.testing.assert_allclose(quarter[8], [0.0, 0.25], atol=1e-9)


def test_corrections_do_not_cross_a_cut_and_are_held_after_the_last_key() -> None:
    model = moving_face(12)
    fix = np.zeros((68, 2))
    fix[30] = [0.1, 0.0]
    keys = {2: model[2] + from_frame(model[2], fix)}
    out = propagate(model, keys, breaks={8})
    for f in (0, 5, 7):  # held before and after the key, within its shot
        np.testing.assert_allclose(to_frame(model[f], out[f] - model[f])[30], [0.1, 0.0], atol=1e-9)
    for f in (8, 11):  # the next shot is not touched
        np.testing.assert_allclose(out[f], model[f])


# --- files -------------------------------------------------------------------------------------


def sample_clip() -> files.ClipAnnotation:
    model = moving_face(5)
    clip = files.ClipAnnotation("talk.mp4", 5, 25.0, cuts=[3])
    for i, pts in model.items():
        faces = [files.ClipFace(1, files.FaceRecord(pts, "predicted", box_of_points(pts) - 2, box_source="detector"))]
        if i != 2:  # the second face leaves on frame 3
            faces.append(files.ClipFace(4, files.FaceRecord(pts + [150, 0], "predicted")))
        clip.frames[i] = faces
    clip.frames[1][0] = files.ClipFace(1, files.FaceRecord(model[1] + 1.5, "corrected", occluded={3}, placed={8, 30}),
                                       keyframe=True)
    return clip


def test_clip_files_round_trip_in_300vw_layout(tmp_path) -> None:
    clip = sample_clip()
    written = files.write_clip(tmp_path / "talk", clip)
    names = sorted(p.name for p in written)
    assert "000001.pts" in names and "000001_face2.pts" in names and "000005.pts" in names
    assert "000003_face2.pts" not in names and files.CLIP_SIDECAR in names
    back, problems = files.read_clip(tmp_path / "talk", 68)
    assert problems == [] and back.video == "talk.mp4" and back.frame_count == 5 and back.cuts == [3]
    assert back.keyframes() == [1] and back.keyframes(4) == [] and back.tracks() == [1, 4]
    for i in range(5):
        assert [f.track for f in back.frames[i]] == [f.track for f in clip.frames[i]]
        for a, b in zip(back.frames[i], clip.frames[i]):
            np.testing.assert_allclose(a.record.points, b.record.points, atol=1e-3)
            assert a.record.status == b.record.status and a.keyframe == b.keyframe
    key = back.frames[1][0].record
    assert key.occluded == {3} and key.placed == {8, 30}
    assert back.frames[0][0].record.box_source == "detector"
    np.testing.assert_allclose(back.frames[0][0].record.box, clip.frames[0][0].record.box, atol=1e-3)
    # a frame that loses a face on a rewrite loses its file
    clip.frames[4] = clip.frames[4][:1]
    files.write_clip(tmp_path / "talk", clip)
    assert not (tmp_path / "talk" / "000005_face2.pts").exists()


def test_keyframes_survive_reopening_and_propagate(tmp_path) -> None:
    """Corrections carried through time: saved, read back, and they still pull the frames between."""
    model = moving_face(11)
    clip = files.ClipAnnotation("c.mp4", 11, 25.0)
    for i, pts in model.items():
        clip.frames[i] = [files.ClipFace(1, files.FaceRecord(pts, "predicted"))]
    fix = np.zeros((68, 2))
    fix[8] = [0.0, 0.3]
    for k in (0, 10):
        clip.frames[k] = [files.ClipFace(1, files.FaceRecord(model[k] + from_frame(model[k], fix), "corrected"), True)]
    files.write_clip(tmp_path / "c", clip)
    back, _ = files.read_clip(tmp_path / "c")
    keys = {k: back.track(1)[k].record.points for k in back.keyframes(1)}
    assert sorted(keys) == [0, 10]
    out = propagate(model, keys)
    np.testing.assert_allclose(to_frame(model[6], out[6] - model[6])[8], [0.0, 0.3], atol=1e-3)


def test_clip_folder_without_side_file_and_bad_files(tmp_path) -> None:
    from model.pts import write_pts

    annot = tmp_path / "001" / "annot"
    annot.mkdir(parents=True)
    pts = moving_face(3)
    for i in range(3):
        write_pts(annot / f"{i + 1:06d}.pts", pts[i])
    (annot / "000004.pts").write_text("not a pts file")
    assert files.is_clip_folder(tmp_path / "001")
    clip, problems = files.read_clip(tmp_path / "001")
    assert sorted(clip.frames) == [0, 1, 2] and clip.frames[0][0].record.status == "corrected"
    assert len(problems) == 1 and "000004.pts" in problems[0]
    (tmp_path / "001" / files.CLIP_SIDECAR).write_text("{ broken")
    clip, problems = files.read_clip(tmp_path / "001")
    assert sorted(clip.frames) == [0, 1, 2] and any(files.CLIP_SIDECAR in p for p in problems)


def test_clip_coco_round_trip(tmp_path) -> None:
    from model.formats import clip_from_coco, clip_to_coco

    clip = sample_clip()
    data = clip_to_coco(clip, (640, 480))
    assert len(data["images"]) == 5 and data["images"][2]["frame_id"] == 2 and data["images"][2]["frame_number"] == 3
    assert {a["track_id"] for a in data["annotations"]} == {1, 4}
    back = clip_from_coco(data, tmp_path / "x.json")
    assert back.keyframes() == [1] and back.video == "talk.mp4"
    for i in range(5):
        assert [f.track for f in back.frames[i]] == [f.track for f in clip.frames[i]]
        np.testing.assert_allclose(back.frames[i][0].record.points, clip.frames[i][0].record.points, atol=1e-4)
    assert back.frames[1][0].record.occluded == {3}


# --- the command line --------------------------------------------------------------------------


def test_drr_predict_tracks_a_clip_and_drr_eval_scores_it(tmp_path, face, capsys) -> None:
    from model.cli.evaluate import main as drr_eval
    from model.cli.predict import main as drr_predict
    from model.pts import write_pts

    clip = write_video(tmp_path / "talk.mp4", [paste(canvas(), face, 40 + 4 * i, 60 + i) for i in range(6)])
    assert drr_predict([str(clip), "--out", str(tmp_path / "out"), "--precision", "fp32"]) == 0
    said = capsys.readouterr().out
    assert "6 frames tracked" in said and "frames per second" in said
    folder = tmp_path / "out" / "talk"
    assert sorted(p.name for p in folder.glob("*.pts")) == [f"{i:06d}.pts" for i in range(1, 7)]
    pred, problems = files.read_clip(folder, 68)
    assert not problems and pred.video == "talk.mp4" and pred.frame_count == 6 and pred.tracks() == [1]
    assert [f.record.status for i in range(6) for f in pred.frames[i]] == ["predicted"] * 6
    # ground truth in the same layout: the predictions moved 0.1 eye distances to the right
    truth = tmp_path / "gt" / "talk"
    truth.mkdir(parents=True)
    shift = None
    for i in range(6):
        pts = pred.frames[i][0].record.points
        right, left = pts[36:42].mean(0), pts[42:48].mean(0)
        shift = 0.1 * np.linalg.norm(left - right)
        write_pts(truth / f"{i + 1:06d}.pts", pts + [shift, 0])
    assert drr_eval([str(truth), "--predictions", str(folder), "--json", str(tmp_path / "e.json")]) == 0
    said = capsys.readouterr().out
    assert "6 of 6 annotated faces" in said
    import json

    summary = json.loads((tmp_path / "e.json").read_text())["talk"]
    assert abs(summary["inter-pupil"]["nme"] - 10.0) < 0.5  # the shift, measured on the truth's eyes
    assert summary["inter-pupil"]["jitter"] < 0.5  # a constant offset is no jitter


def test_drr_predict_names_a_broken_clip_and_exits_1(tmp_path, capsys) -> None:
    from model.cli.predict import main as drr_predict

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    assert drr_predict([str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "broken").exists()


# --- the benchmark's simulated annotator -------------------------------------------------------


def test_propagation_needs_one_keyframe_per_shot_for_a_steady_error() -> None:
    from bench.video import annotate_frames, annotate_with_propagation

    truth = moving_face(20)
    off = np.zeros((68, 2))
    off[0:17] = [0.0, 0.15]  # the jaw drawn 0.15 eye distances too high, on every frame
    model = [truth[i] + from_frame(truth[i], off) for i in range(20)]
    truth_list = [truth[i] for i in range(20)]
    per_frame = annotate_frames(model, truth_list, None)
    out = annotate_with_propagation(model, truth_list, [10], None)
    assert out["keyframes"] == 2  # one keyframe in each of the two shots fixes the rest of it
    assert per_frame >= 20 and out["corrections"] * 5 <= per_frame and out["retracked"] == 0
    # re-tracking: a (perfect) tracker run again from each keyframe up to the cut or the clip's end
    spans = []

    def fake(frame: int, points: np.ndarray, end: int) -> tuple[np.ndarray, list[np.ndarray]]:
        spans.append((frame, end))
        return points, [truth[f] for f in range(frame + 1, end)]

    again = annotate_with_propagation(model, truth_list, [10], None, fake)
    assert spans == [(0, 10), (10, 20)] and again["retracked"] == 18 and again["keyframes"] == 2
    assert again["nme"] < out["nme"]  # the frames after a keyframe are the re-tracked ones, as they are


def test_clip_cvat_video_round_trip(tmp_path) -> None:
    import xml.etree.ElementTree as ET

    from model.formats import clip_from_cvat_video, clip_to_cvat_video

    clip = sample_clip()
    path = tmp_path / "annotations.xml"
    path.write_text(clip_to_cvat_video(clip, (640, 480)))
    root = ET.parse(path).getroot()
    assert root.findtext("meta/task/mode") == "interpolation"
    tracks = root.findall("track")
    assert len(tracks) == 2 and all(t.get("label") == "face" for t in tracks)
    # track 4 has no face on frame 3 (index 2): an outside shape there, and it comes back on frame 4
    second = {int(s.get("frame")): s.get("outside") for s in tracks[1].iter("skeleton")}
    assert second == {0: "0", 1: "0", 2: "1", 3: "0", 4: "0"}
    back = clip_from_cvat_video(path)
    assert back.frame_count == 5 and back.tracks() == [1, 2] and sorted(back.frames) == [0, 1, 2, 3, 4]
    assert [len(back.frames[i]) for i in range(5)] == [2, 2, 1, 2, 2]
    for i in range(5):
        np.testing.assert_allclose(back.frames[i][0].record.points, clip.frames[i][0].record.points, atol=1e-3)
    assert back.frames[1][0].record.occluded == {3}
    # keyframes: the person's frame 2 of track 1 is a CVAT keyframe, the tracker's frames are not
    # (on the skeleton; its points stay keyframes, which CVAT's importer needs to keep the frame)
    first = {int(s.get("frame")): s.get("keyframe") for s in tracks[0].iter("skeleton")}
    assert first == {0: "0", 1: "1", 2: "0", 3: "0", 4: "0"}
    assert {p.get("keyframe") for p in tracks[0].iter("points")} == {"1"}
    assert back.keyframes(1) == [1] and back.keyframes(2) == []
    assert back.frames[1][0].record.status == "corrected" and back.frames[0][0].record.status == "predicted"
    # a track whose every shape is a CVAT keyframe (an older export, or CVAT's after import): no keyframes
    for sk in root.iter("skeleton"):
        sk.set("keyframe", "1")
    ET.ElementTree(root).write(path)
    old = clip_from_cvat_video(path)
    assert old.keyframes(1) == [] and old.frames[0][0].record.status == "corrected"
    path.write_text("<annotations><track id='0' label='face'><skeleton frame='0' outside='0'>"
                    "<points label='jaw 1' points='1,2'/></skeleton></track></annotations>")
    from model.formats import FormatError

    with pytest.raises(FormatError, match="annotations.xml: track 0 frame 0 has 1 of 68 points"):
        clip_from_cvat_video(path)


def test_drr_convert_converts_a_clip_folder_and_back(tmp_path, capsys) -> None:
    from model.cli.convert import main as drr_convert

    files.write_clip(tmp_path / "talk", sample_clip())
    assert drr_convert([str(tmp_path / "talk"), "--to", "cvat", "--out", str(tmp_path / "talk.xml")]) == 0
    assert "9 faces on 5 frames of a clip" in capsys.readouterr().out
    assert drr_convert([str(tmp_path / "talk.xml"), "--to", "coco", "--out", str(tmp_path / "talk.json")]) == 0
    assert drr_convert([str(tmp_path / "talk.json"), "--to", "pts", "--out", str(tmp_path / "again")]) == 0
    back, problems = files.read_clip(tmp_path / "again", 68)
    assert not problems and [len(back.frames[i]) for i in range(5)] == [2, 2, 1, 2, 2]
    np.testing.assert_allclose(back.frames[4][1].record.points, sample_clip().frames[4][1].record.points, atol=1e-3)
    assert drr_convert([str(tmp_path / "talk"), "--to", "labelme", "--out", str(tmp_path / "lm")]) == 2
    assert "not labelme" in capsys.readouterr().err


def test_drr_predict_keeps_the_frames_before_a_clip_stops_decoding(tmp_path, face, capsys) -> None:
    from model.cli.predict import main as drr_predict

    frames = [paste(canvas(), face, 40 + 4 * i, 60) + np.uint8(i) for i in range(12)]
    data = write_video(tmp_path / "cut.avi", frames).read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])  # the end of the file lost
    assert drr_predict([str(tmp_path / "cut.avi"), "--out", str(tmp_path / "out"), "--precision", "fp32"]) == 1
    err = capsys.readouterr().err
    assert "cut.avi: frame" in err and "cannot be decoded" in err and "Traceback" not in err
    clip, problems = files.read_clip(tmp_path / "out" / "cut", 68)
    assert not problems and 0 < clip.tracked < 12 and sorted(clip.frames) == list(range(clip.tracked))


def test_bench_video_runs_end_to_end(shared_data, tmp_path, capsys) -> None:
    import json

    from bench.video import main as bench_video

    out = tmp_path / "video.json"
    assert bench_video(["--clips", "1", "--frames", "8", "--threads", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["methods"]) == {"frame by frame", "tracking", "no smoothing", "S0 previous"}
    for m in res["methods"].values():
        assert m["frames"] == 8 and m["nme"] > 0 and m["fps"] > 0 and m["detector_calls"] >= 1
    assert res["methods"]["frame by frame"]["detector_calls"] == 8
    assert res["methods"]["tracking"]["detector_calls"] < 8  # the detector only on frame 1, the cut, a loss
    assert len(res["annotator"]["tracking + propagation"]) == 1 and res["motion"].startswith("2-D")
    assert "jitter" in capsys.readouterr().out
