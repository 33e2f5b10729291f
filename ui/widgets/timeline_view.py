"""A compact timeline overview: one thin row per track, clips to scale, stills selectable.

Click selects a still, Ctrl-click toggles, Shift-click extends; clicking a track's name selects all stills on it.
Left / Right step through the stills, Ctrl+A selects them all. The host's playhead and in / out range are drawn
when it has them.
"""

from __future__ import annotations

from fractions import Fraction

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QKeyEvent, QMouseEvent, QPainter, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..theme import is_dark, mix, tone
from ..viewmodel import ClipItem, MarkerItem, PanelViewModel, TimelineOverview

HEADER = 64  # the narrowest track-name column; it widens to fit the names, up to MAX_HEADER
MAX_HEADER = 180
RULER = 16
MARKER_LANE = 14  # a lane under the ruler for the timeline's markers (only when it has some)
ROW = 20


#: OTIO's marker colour names as drawn (an unknown or empty colour draws in the palette's accent).
MARKER_COLOURS = {"RED": "#e05252", "PINK": "#e070b0", "ORANGE": "#e8913a", "YELLOW": "#e0c040",
                  "GREEN": "#5cbf5c", "CYAN": "#4cc4d0", "BLUE": "#5a8ee0", "PURPLE": "#9a6ae0",
                  "MAGENTA": "#d050d0", "BLACK": "#303030", "WHITE": "#f0f0f0"}


def timecode(frame: int, rate: Fraction) -> str:
    """HH:MM:SS:FF at the nominal integer rate (display only)."""
    base = max(1, round(float(rate)))
    seconds, frames = divmod(int(frame), base)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"


class TimelineOverviewView(QWidget):
    clip_clicked = Signal(str, str)      # key, mode (replace / toggle / extend)
    track_clicked = Signal(int)
    all_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.overview: TimelineOverview | None = None
        self.selection: tuple[str, ...] = ()
        self.playhead: int | None = None
        self.in_out: tuple[int, int] | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Timeline overview")
        self.setToolTip("Click a still to select it, Ctrl-click to add, Shift-click for a range; "
                        "click a track name for all its stills")

    def bind(self, vm: PanelViewModel) -> None:
        vm.overview_changed.connect(self.set_overview)
        vm.selection_changed.connect(self.set_selection)
        vm.playhead_changed.connect(self.set_playhead)
        vm.in_out_changed.connect(self.set_in_out)
        self.set_overview(vm.overview)
        self.set_selection(vm.selection)

    def set_overview(self, overview: TimelineOverview | None) -> None:
        self.overview = overview
        self.updateGeometry()
        self.update()

    def set_selection(self, keys: tuple[str, ...]) -> None:
        self.selection = tuple(keys)
        self.update()

    def set_playhead(self, frame: int | None) -> None:
        self.playhead = frame
        self.update()

    def set_in_out(self, span: tuple[int, int] | None) -> None:
        self.in_out = span
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        rows = len(self.overview.tracks) if self.overview else 2
        return QSize(400, self._top() + ROW * max(rows, 1) + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, self.sizeHint().height())

    # geometry
    def header_width(self) -> int:
        """Wide enough for the longest track name ("Channel 12", "Dialogue A"), within HEADER..MAX_HEADER."""
        if self.overview is None or not self.overview.tracks:
            return HEADER
        fm = QFontMetrics(self.font())
        widest = max(fm.horizontalAdvance(t.name) for t in self.overview.tracks)
        return max(HEADER, min(MAX_HEADER, widest + 12))

    def _top(self) -> int:
        """Where the first track row starts: under the ruler, and under the marker lane when there are markers."""
        return RULER + (MARKER_LANE if self.overview is not None and self.overview.markers else 0)

    def _x(self, frame: float) -> float:
        total = max(self.overview.frames if self.overview else 1, 1)
        header = self.header_width()
        return header + (self.width() - header - 4) * frame / total

    def _clip_rect(self, row: int, clip: ClipItem) -> QRectF:
        x0, x1 = self._x(clip.start), self._x(clip.start + clip.frames)
        return QRectF(x0 + 0.5, self._top() + row * ROW + 2, max(2.0, x1 - x0 - 1), ROW - 4)

    def marker_at(self, pos: QPointF) -> MarkerItem | None:
        """The marker whose flag is under `pos` (in the marker lane), if any."""
        if self.overview is None or not RULER <= pos.y() < self._top():
            return None
        near = [m for m in self.overview.markers if abs(self._x(m.frame) - pos.x()) <= 5]
        return min(near, key=lambda m: abs(self._x(m.frame) - pos.x())) if near else None

    def _hit(self, pos: QPointF) -> tuple[int, ClipItem | None] | None:
        if self.overview is None:
            return None
        row = int((pos.y() - self._top()) // ROW)
        if not 0 <= row < len(self.overview.tracks) or pos.y() < self._top():
            return None
        track = self.overview.tracks[row]
        if pos.x() < self.header_width():
            return row, None
        for clip in track.clips:
            if self._clip_rect(row, clip).adjusted(-1, 0, 1, 0).contains(pos):
                return row, clip
        return None

    # painting
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        p.fillRect(self.rect(), base)
        if self.overview is None:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No timeline: open one (Ctrl+O)")
            return
        ov = self.overview
        fm = QFontMetrics(self.font())
        # ruler: a tick every second-ish, labelled every few
        p.setPen(mix(text, base, 0.55))
        rate = float(ov.rate) or 24.0
        seconds = ov.frames / rate
        header_width, top = self.header_width(), self._top()
        step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if (self.width() - header_width) / max(
            seconds / s, 1) >= 48), 600)
        t = 0.0
        while t <= seconds + 1e-9:
            x = self._x(t * rate)
            p.drawLine(QPointF(x, RULER - 4), QPointF(x, RULER))
            p.drawText(QPointF(x + 2, RULER - 5), f"{int(t // 60)}:{int(t % 60):02d}")
            t += step
        selected_fill = pal.color(QPalette.ColorRole.Highlight)
        for row, track in enumerate(ov.tracks):
            y = top + row * ROW
            if row % 2:
                p.fillRect(QRectF(0, y, self.width(), ROW), pal.color(QPalette.ColorRole.AlternateBase))
            header = QRectF(4, y, header_width - 8, ROW)
            p.setPen(text)
            p.drawText(header, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                       fm.elidedText(track.name, Qt.TextElideMode.ElideRight, int(header.width())))
            for clip in track.clips:
                rect = self._clip_rect(row, clip)
                if clip.generated:
                    fill = tone(pal, 275, 110, 200)
                elif clip.is_still:
                    fill = tone(pal, 205, 90, 190)
                elif track.kind == "Audio":
                    fill = tone(pal, 140, 80, 150)
                else:
                    fill = mix(pal.color(QPalette.ColorRole.Mid), base, 0.2)
                if not is_dark(pal):
                    fill = mix(fill, QColor(255, 255, 255), 0.35)
                selected = clip.key in self.selection
                if selected:
                    fill = mix(fill, selected_fill, 0.55)
                p.setPen(QPen(selected_fill if selected else mix(fill, base, 0.5), 2 if selected else 1))
                p.setBrush(fill)
                p.drawRoundedRect(rect, 3, 3)
                if rect.width() > 24:
                    label_colour = QColor(20, 20, 22) if fill.lightness() > 140 else QColor(240, 240, 240)
                    p.setPen(label_colour)
                    name = clip.name + (" ⚠" if clip.offline else "")
                    p.drawText(rect.adjusted(4, 0, -3, 0), Qt.AlignmentFlag.AlignVCenter,
                               fm.elidedText(name, Qt.TextElideMode.ElideRight, int(rect.width() - 7)))
        bottom = top + ROW * len(ov.tracks)
        self._paint_markers(p, fm, bottom)
        if self.in_out is not None:
            a, b = self._x(self.in_out[0]), self._x(self.in_out[1])
            band = QColor(selected_fill)
            band.setAlpha(40)
            p.fillRect(QRectF(a, top, b - a, bottom - top), band)
            p.setPen(QPen(selected_fill, 1, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(a, top), QPointF(a, bottom))
            p.drawLine(QPointF(b, top), QPointF(b, bottom))
        if self.playhead is not None:
            x = self._x(self.playhead)
            p.setPen(QPen(tone(pal, 0, 200), 1.5))
            p.drawLine(QPointF(x, 0), QPointF(x, bottom))
        if self.hasFocus():
            p.setPen(QPen(selected_fill, 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.rect().adjusted(0, 0, -1, -1))

    def _paint_markers(self, p: QPainter, fm: QFontMetrics, bottom: int) -> None:
        """Each marker: a flag in the marker lane with its name (where it fits before the next one) and a thin
        line down through the tracks; a ranged marker also gets a band in the lane."""
        if self.overview is None or not self.overview.markers:
            return
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        markers = self.overview.markers
        lane = QRectF(0, RULER, self.width(), MARKER_LANE)
        for n, marker in enumerate(markers):
            colour = QColor(MARKER_COLOURS.get(marker.colour.upper(), "")) if marker.colour else QColor()
            if not colour.isValid():
                colour = tone(pal, 45, 200)
            x = self._x(marker.frame)
            if marker.frames:
                band = QColor(colour)
                band.setAlpha(60)
                p.fillRect(QRectF(x, lane.top() + 2, self._x(marker.frame + marker.frames) - x, lane.height() - 4),
                           band)
            line = QColor(colour)
            line.setAlpha(110)
            p.setPen(QPen(line, 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(x, lane.bottom()), QPointF(x, bottom))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawPolygon(QPolygonF([QPointF(x - 4, lane.top() + 2), QPointF(x + 4, lane.top() + 2),
                                     QPointF(x, lane.bottom() - 2)]))
            room = (self._x(markers[n + 1].frame) if n + 1 < len(markers) else self.width()) - x - 8
            if marker.name and room > 14:
                p.setPen(mix(pal.color(QPalette.ColorRole.Text), base, 0.15))
                p.drawText(QRectF(x + 6, lane.top(), room, lane.height()), Qt.AlignmentFlag.AlignVCenter,
                           fm.elidedText(marker.name, Qt.TextElideMode.ElideRight, int(room)))

    # interaction
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hit = self._hit(event.position())
        if hit is None:
            return super().mousePressEvent(event)
        row, clip = hit
        if clip is None:
            self.track_clicked.emit(self.overview.tracks[row].index)
            return
        if not clip.is_still:
            return
        mods = event.modifiers()
        mode = ("toggle" if mods & Qt.KeyboardModifier.ControlModifier else
                "extend" if mods & Qt.KeyboardModifier.ShiftModifier else "replace")
        self.clip_clicked.emit(clip.key, mode)

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip and self.overview is not None:
            marker = self.marker_at(QPointF(event.pos()))
            if marker is not None:
                span = f" + {marker.frames} frames" if marker.frames else ""
                QToolTip.showText(event.globalPos(), f"Marker {marker.name or '(unnamed)'} — "
                                  f"{timecode(marker.frame, self.overview.rate)}{span}", self)
                return True
            hit = self._hit(QPointF(event.pos()))
            if hit is not None and hit[1] is not None:
                clip = hit[1]
                kind = "still (selectable)" if clip.is_still else "StillMotion clip" if clip.generated else "clip"
                QToolTip.showText(event.globalPos(), f"{clip.name} — {kind}\n"
                                  f"{timecode(clip.start, self.overview.rate)} + {clip.frames} frames", self)
                return True
            if hit is not None:
                QToolTip.showText(event.globalPos(), "Click to select every still on this track", self)
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if self.overview is None:
            return super().keyPressEvent(event)
        stills = self.overview.still_keys()
        if event.key() == Qt.Key.Key_A and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.all_requested.emit()
            return
        if event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right) and stills:
            current = stills.index(self.selection[0]) if self.selection and self.selection[0] in stills else -1
            step = 1 if event.key() == Qt.Key.Key_Right else -1
            target = stills[max(0, min(len(stills) - 1, current + step))]
            mode = "toggle" if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else "replace"
            self.clip_clicked.emit(target, mode)
            return
        super().keyPressEvent(event)
