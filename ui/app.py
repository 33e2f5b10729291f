"""The standalone panel: a window on a timeline file (`stillmotion panel`), and offscreen screenshots of it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
from stillmotion.engine.atomic import atomic_path

from .controller import PanelController
from .settings import PanelSettings
from .theme import apply_standalone_theme
from .viewmodel import PanelViewModel
from .widgets.panel import StillMotionPanel, connect_panel

DEFAULT_SIZE = (1180, 760)
#: The smallest window height the panel keeps (it scrolls nothing: below this its rows are squeezed).
MIN_HEIGHT = 480


def application(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, or a new one with the standalone look."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv or [sys.argv[0]])
        app.setApplicationName("StillMotion")
        app.setOrganizationName("StillMotion")
        apply_standalone_theme(app)
    return app  # type: ignore[return-value]


class PanelWindow(QMainWindow):
    """The panel as a main window; closing it cancels jobs and stops the render thread."""

    def __init__(self, settings: QSettings | None = None, render: object = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = PanelViewModel(self)
        self.settings = PanelSettings(settings)
        self.controller = PanelController(self.vm, self.settings, render=render, parent=self)
        self.panel = StillMotionPanel(self.vm)
        connect_panel(self.panel, self.controller)
        self.setCentralWidget(self.panel)
        pin_minimum_size(self, self.panel)
        self.setWindowTitle("StillMotion")
        self.vm.timeline_path_changed.connect(
            lambda p: self.setWindowTitle(f"{Path(p).name} — StillMotion" if p else "StillMotion"))
        geometry = self.settings.get("window_size")
        self.resize(*(geometry if isinstance(geometry, list) and len(geometry) == 2 else DEFAULT_SIZE))

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.settings.set("window_size", [self.width(), self.height()])
        self.controller.shutdown()
        super().closeEvent(event)


def pin_minimum_size(window: QWidget, panel: StillMotionPanel) -> None:
    """Give the top-level window an explicit minimum size (the panel's stacked, narrow layout).

    Without one, Qt's layout sets the window's minimum from its contents every time they change (the error
    banner appears, a comparison opens) and pushes it to the window system; platforms without size hints
    (offscreen, used for screenshots) print "This plugin does not support propagateSizeHints()" each time.
    An explicit minimum is never overridden by the layout, so nothing is pushed after the window is shown.
    """
    orientation = panel.splitter.orientation()
    panel.splitter.setOrientation(Qt.Orientation.Vertical)
    stacked = panel.minimumSizeHint()
    panel.splitter.setOrientation(orientation)
    window.setMinimumSize(stacked.width(), min(stacked.height(), MIN_HEIGHT))


def wait_until_idle(controller: PanelController, timeout_s: float = 30.0) -> None:
    """Process events until background analysis (thumbnail, music) has delivered."""
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if not controller.tasks.busy():
            break
        controller.tasks.wait(50)
    QCoreApplication.processEvents()


def save_screenshot(widget: QWidget, out: Path, overwrite: bool = True) -> Path:
    """Grab the widget (at the screen's device pixel ratio) and write a PNG atomically."""
    widget.repaint()
    QCoreApplication.processEvents()
    pixmap = widget.grab()
    with atomic_path(out, overwrite) as tmp:
        if not pixmap.save(str(tmp), "PNG"):
            raise OSError(f"cannot encode {out}")
    return out


def run_window(timeline: str | None, screenshot: str | None = None, output: str | None = None,
               size: tuple[int, int] | None = None) -> int:
    """Open the window (on `timeline`); with `screenshot`, render it offscreen to a PNG and return."""
    if screenshot and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = application()
    store = None
    if screenshot:  # a screenshot must not depend on (or change) the user's saved settings
        import tempfile

        store = QSettings(str(Path(tempfile.mkdtemp(prefix="stillmotion-shot-")) / "panel.ini"),
                          QSettings.Format.IniFormat)
    window = PanelWindow(settings=store)
    if size:
        window.resize(*size)
    if timeline:
        window.controller.open_timeline(timeline, output=output)
    if screenshot:
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        window.show()
        wait_until_idle(window.controller)
        QTimer.singleShot(0, lambda: None)
        QCoreApplication.processEvents()
        save_screenshot(window, Path(screenshot))
        window.close()
        return 0
    window.show()
    return app.exec()
