"""Colours that follow the host's palette: every custom-painted colour is derived from the widget's palette, so a
dark host stays dark and a light one light. The standalone app uses Fusion with a dark editor palette."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

#: Motion channel colours (hue only; lightness follows the palette).
CHANNEL_HUES = {"pulse": 12, "sway": 130, "parallax": 210, "shimmer": 50, "push": 280, "drift": 180, "shake": 330}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def tone(palette: QPalette, hue: int, saturation: int = 170, alpha: int = 255) -> QColor:
    """A colour of `hue` that reads on this palette's base: light on dark themes, deep on light ones."""
    value = 230 if is_dark(palette) else 150
    colour = QColor.fromHsv(hue % 360, saturation, value)
    colour.setAlpha(alpha)
    return colour


def mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() + (b.red() - a.red()) * t), round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t), round(a.alpha() + (b.alpha() - a.alpha()) * t))


def badge_colours(palette: QPalette, status: str) -> tuple[QColor, QColor]:
    """(background, text) of a QC badge: pass green, fail red, off grey; contrast kept on either theme."""
    dark = is_dark(palette)
    if status == "off":
        background = palette.color(QPalette.ColorRole.Mid)
        return background, palette.color(QPalette.ColorRole.Text)
    hue = 130 if status == "pass" else 2
    background = QColor.fromHsv(hue, 160, 95 if dark else 215)
    text = QColor(235, 255, 235) if dark and status == "pass" else QColor(255, 232, 230) if dark else QColor(20, 20, 20)
    return background, text


def dark_palette() -> QPalette:
    """A neutral dark editor palette (Resolve / Premiere / Blender are all dark grey)."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: QColor(43, 43, 46), QPalette.ColorRole.WindowText: QColor(222, 222, 222),
        QPalette.ColorRole.Base: QColor(30, 30, 32), QPalette.ColorRole.AlternateBase: QColor(38, 38, 41),
        QPalette.ColorRole.ToolTipBase: QColor(25, 25, 27), QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
        QPalette.ColorRole.Text: QColor(222, 222, 222), QPalette.ColorRole.Button: QColor(54, 54, 58),
        QPalette.ColorRole.ButtonText: QColor(226, 226, 226), QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Highlight: QColor(64, 132, 214), QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 240), QPalette.ColorRole.PlaceholderText: QColor(140, 140, 146),
        QPalette.ColorRole.Mid: QColor(70, 70, 75), QPalette.ColorRole.Dark: QColor(22, 22, 24),
        QPalette.ColorRole.Light: QColor(90, 90, 96), QPalette.ColorRole.Midlight: QColor(62, 62, 66),
        QPalette.ColorRole.Shadow: QColor(10, 10, 10),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 126))
    return p


def apply_standalone_theme(app: QApplication, dark: bool = True) -> None:
    app.setStyle("Fusion")
    if dark:
        app.setPalette(dark_palette())


def set_role_colour(widget: QWidget, role: QPalette.ColorRole, colour: QColor) -> None:
    palette = widget.palette()
    palette.setColor(role, colour)
    widget.setPalette(palette)
