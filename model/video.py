"""Reading a clip frame by frame, decoded on demand (no extraction to disk, memory flat).

`VideoReader(path)` opens anything OpenCV's FFmpeg backend decodes (mp4, avi, mov, mkv, ...)
and gives frame i (0-based) as an RGB uint8 array. Frames are decoded when asked for: reading
the next frame is one decode, any other index is a seek (OpenCV goes back to the key frame
before it and decodes forward). A small LRU keeps the last few decoded frames, so stepping
back and forth on a timeline costs nothing and memory stays flat whatever the clip's length.
Frame numbers on disk and in messages are 1-based (300-VW's 000001.pts); in code, 0-based.
Anything unusable raises VideoError naming the file, never a bare OpenCV failure.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

# FFmpeg's own messages ("moov atom not found") go straight to stderr, before our VideoError says
# the same with the file's name; quiet unless the person asked for a level themselves
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
CACHE_FRAMES = 16  # decoded frames kept: 16 x 1080p RGB is 100 MB, 16 x 640x480 15 MB


class VideoError(ValueError):
    """A clip that cannot be used; the message names the file and what is wrong."""


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open_capture(path: Path) -> cv2.VideoCapture:
    """cv2.VideoCapture without OpenCV's own log lines for a file it cannot open (VideoError says
    it with the file's name); the log level is put back at once."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        return cv2.VideoCapture(str(path))
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(str(path))
    finally:
        logging.setLogLevel(level)


class VideoReader:
    """Frames of a clip on demand: `len(reader)`, `reader.frame(i)`, iteration, `fps`, `size`."""

    def __init__(self, path: str | Path, cache_frames: int = CACHE_FRAMES) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path}: the file is empty (0 bytes)")
        self._cap = _open_capture(self.path)
        if not self._cap.isOpened():
            raise VideoError(f"{self.path}: not a readable video (corrupt, truncated or a format OpenCV cannot decode)")
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_frames = max(1, cache_frames)
        self._next = 0  # the index the capture decodes next without seeking
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 25.0
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        try:
            first = self._decode(0)  # a clip whose first frame does not decode is refused at once
        except VideoError:
            self.close()
            raise VideoError(f"{self.path}: no frame can be decoded (corrupt, truncated or an unsupported codec)") from None
        self.height, self.width = first.shape[:2]
        # some containers do not store the count (0 or negative): count by decoding once
        self._count = count if count > 0 else self._count_frames()

    # --- properties ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r}, {len(self)} frames, {self.width}x{self.height}, {self.fps:.2f} fps)"

    # --- frames ----------------------------------------------------------------------------
    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0-based) as RGB uint8 (h, w, 3); VideoError when it cannot be decoded."""
        index = int(index)
        if not 0 <= index < self._count:
            raise VideoError(f"{self.path}: no frame {index + 1} (the clip has {self._count})")
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        return self._decode(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame in order; a frame the container promised but that does not decode at the
        very end shortens the clip (container counts are estimates), elsewhere it is an error."""
        for i in range(self._count):
            try:
                yield self.frame(i)
            except VideoError:
                if i >= self._count - 2 and i > 0:
                    self._count = i
                    return
                raise

    def _decode(self, index: int) -> np.ndarray:
        if index != self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            self._next = -1  # the capture's position is unknown now: the next read seeks
            raise VideoError(f"{self.path}: frame {index + 1} cannot be decoded (corrupt or truncated clip)")
        self._next = index + 1
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        rgb.setflags(write=False)  # cached: a caller must not draw into another caller's frame
        self._cache[index] = rgb
        while len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
        return rgb

    def _count_frames(self) -> int:
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        n = 0
        while self._cap.grab():
            n += 1
        self._next = n
        return max(n, 1)

    # --- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._cache.clear()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()


def write_video(path: str | Path, frames, fps: float = 25.0) -> Path:
    """Encode RGB uint8 frames (all the same size) with OpenCV's writer (mp4v for .mp4, MJPG
    for .avi): for tests and the benchmark's synthetic clips."""
    path = Path(path)
    frames = iter(frames)
    first = next(frames)  # the writer needs the size before the first frame
    h, w = first.shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, float(fps), (w, h))
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot write this kind of video")
    try:
        for f in itertools.chain([first], frames):  # one frame in memory at a time
            writer.write(np.ascontiguousarray(f[..., ::-1]))
    finally:
        writer.release()
    return path
