"""The selected still's reference frame, its music (waveform, beats, downbeats, sections) and the motion the
current preset will apply, on one time axis."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget
from stillmotion.engine.motion import CHANNELS

from ..theme import CHANNEL_HUES, mix, tone
from ..viewmodel import MusicView, PanelViewModel


class ImageView(QWidget):
    """An image scaled to fit, sharp on high-DPI screens (the pixmap is made at device resolution)."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.placeholder = placeholder
        self._cache: tuple[tuple[int, int, float], QPixmap] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        self._cache = None
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(160, 100)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        if self.image is None or self.image.isNull():
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect().adjusted(4, 4, -4, -4), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.placeholder)
            return
        dpr = self.devicePixelRatioF()
        key = (self.width(), self.height(), dpr)
        if self._cache is None or self._cache[0] != key:
            scaled = self.image.scaled(int(self.width() * dpr), int(self.height() * dpr),
                                       Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            pixmap = QPixmap.fromImage(scaled)
            pixmap.setDevicePixelRatio(dpr)
            self._cache = (key, pixmap)
        pixmap = self._cache[1]
        size = pixmap.deviceIndependentSize()
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        p.drawPixmap(QPointF(x, y), pixmap)


class MusicMotionView(QWidget):
    """Waveform with beat / downbeat markers and section bounds above, motion channel curves below. Dragging
    sideways shifts the beat grid's phase (`shift_requested(seconds)` on release; the beats follow the drag)."""

    shift_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.music: MusicView | None = None
        self._drag_from: float | None = None
        self.drag_shift = 0.0
        self.message = ""
        self.motion: dict[str, np.ndarray] = {}
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setAccessibleName("Music and motion")
        self.setToolTip("Top: the music under the selected still (beats thin, downbeats bold, sections shaded);\n"
                        "drag sideways to shift the beat grid.\n"
                        "Bottom: the motion the current preset applies to it, per channel.")

    def bind(self, vm: PanelViewModel) -> None:
        vm.music_changed.connect(self.set_music)
        vm.music_message_changed.connect(self.set_message)
        vm.motion_changed.connect(self.set_motion)
        self.set_music(vm.music)
        self.set_message(vm.music_message)
        self.set_motion(vm.motion)

    def set_music(self, music: MusicView | None) -> None:
        self.music = music
        self.update()

    def set_message(self, message: str) -> None:
        self.message = message
        self.update()

    def set_motion(self, motion: dict[str, np.ndarray]) -> None:
        self.motion = dict(motion)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(360, 170)

    def _seconds_per_pixel(self) -> float:
        width = max(1.0, self.width() - 12.0)
        return (self.music.duration / width) if self.music is not None else 0.0

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self.music is not None and event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = event.position().x()
            self.drag_shift = 0.0
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag_from is not None:
            self.drag_shift = (event.position().x() - self._drag_from) * self._seconds_per_pixel()
            self.update()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drag_from is not None:
            shift = (event.position().x() - self._drag_from) * self._seconds_per_pixel()
            self._drag_from, self.drag_shift = None, 0.0
            self.update()
            if abs(shift) >= 1e-3:
                self.shift_requested.emit(round(shift, 4))
        super().mouseReleaseEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        p.fillRect(self.rect(), base)
        fm = QFontMetrics(self.font())
        legend_h = fm.height() + 4
        area = QRectF(6, 4, self.width() - 12, self.height() - 8 - legend_h)
        wave = QRectF(area.left(), area.top(), area.width(), area.height() * 0.48)
        motion = QRectF(area.left(), wave.bottom() + 6, area.width(), area.bottom() - wave.bottom() - 6)
        faint = mix(text, base, 0.8)
        p.setPen(faint)
        p.drawLine(QPointF(wave.left(), wave.center().y()), QPointF(wave.right(), wave.center().y()))
        p.drawRect(motion)
        music = self.music
        if music is not None and music.duration > 0:
            self._paint_music(p, wave, area, music)
        if self.message:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText) if music is None else tone(pal, 35, 160))
            box = wave.adjusted(8, 2, -8, -2)
            flags = (Qt.AlignmentFlag.AlignCenter if music is None else
                     Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft) | Qt.TextFlag.TextWordWrap
            p.drawText(box, flags, self.message)
        self._paint_motion(p, motion, legend_h)

    def _paint_music(self, p: QPainter, wave: QRectF, area: QRectF, music: MusicView) -> None:
        pal = self.palette()
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)

        def x_of(seconds: float) -> float:
            return area.left() + area.width() * seconds / music.duration

        for n, (a, b, label) in enumerate(music.sections):
            shade = tone(pal, 45 + 70 * n, 60, 28 if n % 2 else 16)
            p.fillRect(QRectF(x_of(a), area.top(), x_of(b) - x_of(a), area.height()), shade)
            p.setPen(QPen(tone(pal, 45, 120), 1, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(x_of(a), area.top()), QPointF(x_of(a), area.bottom()))
            p.setPen(mix(text, base, 0.35))
            p.drawText(QPointF(x_of(a) + 3, area.top() + 11), label)
        peaks = music.peaks
        mid, half = wave.center().y(), wave.height() / 2 * 0.92
        n = len(peaks)
        path = QPainterPath()
        for i in range(n):
            x = wave.left() + wave.width() * i / max(n - 1, 1)
            path.moveTo(x, mid - float(peaks[i, 1]) * half)
            path.lineTo(x, mid - float(peaks[i, 0]) * half + 0.5)
        p.setPen(QPen(tone(pal, 200, 70), 1))
        p.drawPath(path)
        beat_pen = QPen(mix(text, base, 0.5), 1)
        shift = self.drag_shift  # while dragging, the grid follows the pointer
        for t in music.beats:
            p.setPen(beat_pen)
            p.drawLine(QPointF(x_of(float(t) + shift), wave.top()), QPointF(x_of(float(t) + shift), area.bottom()))
        down_pen = QPen(tone(pal, 30, 200), 2)
        for t in music.downbeats:
            p.setPen(down_pen)
            p.drawLine(QPointF(x_of(float(t) + shift), wave.top()), QPointF(x_of(float(t) + shift), area.bottom()))
        if music.tempo:
            label = f"{music.tempo:.0f} BPM · {len(music.beats)} beats"
            p.setPen(text)
            width = QFontMetrics(self.font()).horizontalAdvance(label)
            p.drawText(QPointF(wave.right() - width - 4, wave.top() + 11), label)

    def _paint_motion(self, p: QPainter, rect: QRectF, legend_h: float) -> None:
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        curves = {k: v for k, v in self.motion.items() if len(v)}
        if not curves:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "motion curve appears for a selected still")
            return
        top = max(1.0, max(float(np.max(v)) for v in curves.values()))
        x_legend = rect.left()
        fm = QFontMetrics(self.font())
        for name in CHANNELS:
            if name not in curves:
                continue
            values = curves[name]
            colour = tone(pal, CHANNEL_HUES.get(name, 0), 190)
            path = QPainterPath()
            for i, v in enumerate(values):
                x = rect.left() + rect.width() * i / max(len(values) - 1, 1)
                y = rect.bottom() - 2 - (rect.height() - 4) * float(v) / top
                if i:
                    path.lineTo(x, y)
                else:
                    path.moveTo(x, y)
            p.setPen(QPen(colour, 1.6))
            p.drawPath(path)
            p.fillRect(QRectF(x_legend, rect.bottom() + 6, 10, 4), colour)
            p.setPen(text)
            p.drawText(QPointF(x_legend + 13, rect.bottom() + legend_h - 1), name)
            x_legend += 13 + fm.horizontalAdvance(name) + 12
