"""The timeline under a clip's picture: a frame slider with the keyframes marked on it, how far
tracking has got, play, and the keys to move through the clip.

Keys (while the clip window has focus): Left/Right or ,/. one frame; Shift+Left/Right ten;
[ and ] the previous/next keyframe; Home/End the first/last frame; Space play/pause.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

KEY_COLOUR = QColor(40, 200, 90)
CUT_COLOUR = QColor(220, 80, 60)
TRACKED_COLOUR = QColor(90, 140, 230, 110)


class Marks(QWidget):
    """A strip drawn above the slider: tracked frames (blue band), keyframes (green ticks), cuts
    (red ticks) and the current frame (a dark line)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(14)
        self.frames = 1
        self.keys: list[int] = []
        self.cuts: list[int] = []
        self.tracked = 0
        self.current = 0

    def show(self, keys: list[int], cuts: list[int], tracked: int) -> None:
        self.keys, self.cuts, self.tracked = list(keys), list(cuts), int(tracked)
        self.update()

    def x_of(self, frame: int) -> int:
        w = max(self.width() - 12, 1)  # the slider's handle leaves about 6 px at each end
        return 6 + round(w * frame / max(self.frames - 1, 1))

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        h = self.height()
        if self.tracked:
            p.fillRect(QRect(6, h // 2 - 2, self.x_of(self.tracked - 1) - 6 + 1, 4), TRACKED_COLOUR)
        # keyframes in the lower two thirds, cuts over the whole height on top, so that a shot's
        # first frame made a keyframe still shows its cut
        for frames, colour, top in ((self.keys, KEY_COLOUR, h // 3), (self.cuts, CUT_COLOUR, 1)):
            p.setPen(QPen(colour, 2))
            for f in frames:
                x = self.x_of(f)
                p.drawLine(x, top, x, h - 1)
        p.setPen(QPen(QColor(30, 30, 30), 1))
        x = self.x_of(self.current)
        p.drawLine(x, 0, x, h)
        p.end()


class Timeline(QWidget):
    """Frame slider, marks, play button and the frame's number; `frameChanged(int)` (0-based)."""

    frameChanged = Signal(int)
    message = Signal(str)  # something to tell the person (a key that had nothing to do)

    def __init__(self, frames: int, fps: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fps = fps if fps > 0 else 25.0
        self.marks = Marks(self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the window's keys move it
        self.play_button = QPushButton("Play", self)
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label = QLabel(self)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.play_button.clicked.connect(self.toggle_play)
        self.slider.valueChanged.connect(self._moved)
        row = QHBoxLayout()
        row.addWidget(self.play_button)
        row.addWidget(self.label)
        row.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 2, 4, 2)
        col.addWidget(self.marks)
        col.addWidget(self.slider)
        col.addLayout(row)
        self.set_frames(frames)

    # --- state ------------------------------------------------------------------------------
    def set_frames(self, frames: int) -> None:
        self.slider.setRange(0, max(frames - 1, 0))
        self.marks.frames = max(frames, 1)
        self._label()

    @property
    def frame(self) -> int:
        return self.slider.value()

    def set_frame(self, frame: int) -> None:
        self.slider.setValue(max(0, min(int(frame), self.slider.maximum())))

    def follow(self, clip) -> None:
        """Marks from a clip document (drr_studio.clip_document), redrawn when they change."""
        self._clip = clip
        clip.marks_changed.connect(self._clip_marks)
        self._clip_marks()

    def _clip_marks(self) -> None:
        self.set_marks(self._clip.keyframes(), sorted(self._clip.cuts), self._clip.tracked)

    def set_marks(self, keys: list[int], cuts: list[int], tracked: int) -> None:
        self.marks.show(keys, cuts, tracked)
        self._label()

    # --- moving -------------------------------------------------------------------------------
    def step(self, delta: int) -> None:
        self.set_frame(self.frame + delta)

    def jump_key(self, direction: int) -> None:
        """To the previous (-1) or next (+1) keyframe, if there is one."""
        keys = [k for k in self.marks.keys if (k - self.frame) * direction > 0]
        if keys:
            self.set_frame(max(keys) if direction < 0 else min(keys))
        else:
            self.message.emit(f"No keyframe {'before' if direction < 0 else 'after'} this frame")

    def pause(self) -> None:
        if self.timer.isActive():
            self.toggle_play()

    def toggle_play(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.play_button.setText("Play")
        else:
            if self.frame >= self.slider.maximum():
                self.set_frame(0)
            self.timer.start(max(1, round(1000 / self.fps)))
            self.play_button.setText("Pause")

    def _tick(self) -> None:
        if self.frame >= self.slider.maximum():
            self.toggle_play()
            return
        self.step(1)

    def _moved(self, frame: int) -> None:
        self.marks.current = frame
        self.marks.update()
        self._label()
        self.frameChanged.emit(frame)

    def _label(self) -> None:
        n = self.slider.maximum() + 1
        key = "  keyframe" if self.frame in self.marks.keys else ""
        key += "  cut (a new shot)" if self.frame in self.marks.cuts else ""
        tracked = f"  (tracked {self.marks.tracked} of {n})" if self.marks.tracked < n else ""
        self.label.setText(f"frame {self.frame + 1} of {n}  {self.frame / self.fps:6.2f} s{key}{tracked}")

    def handle_key(self, key: int, shift: bool) -> bool:
        """The timeline's keys (module docstring); True when the key was one of them."""
        steps = {Qt.Key.Key_Right: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Period: 1, Qt.Key.Key_Comma: -1}
        if key in steps:
            self.step(steps[key] * (10 if shift else 1))
        elif key in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight):
            self.jump_key(-1 if key == Qt.Key.Key_BracketLeft else 1)
        elif key == Qt.Key.Key_Home:
            self.set_frame(0)
        elif key == Qt.Key.Key_End:
            self.set_frame(self.slider.maximum())
        elif key == Qt.Key.Key_Space:
            self.toggle_play()
        else:
            return False
        return True
