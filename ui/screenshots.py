"""Screenshots of the panel's main states for the docs (and the tests that look at them).

`python -m stillmotion.ui.screenshots OUTDIR` copies the bundled demo to a temporary folder, drives the real
panel through: empty, timeline loaded with a selection, rendering (live preview and progress), history with QC
badges and a comparison, and an inline error; one PNG each. Runs offscreen.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, Qt  # noqa: E402

from .app import PanelWindow, application, save_screenshot, wait_until_idle  # noqa: E402
from .viewmodel import JobState  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo"
STATES = ("empty", "loaded", "rendering", "history", "error")


def pump_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if condition():
            return True
        time.sleep(0.005)
    return False


def take_screenshots(out_dir: Path, demo: Path = DEMO, size: tuple[int, int] = (1180, 760)) -> dict[str, Path]:
    """Drive a real panel through its main states; return state -> PNG path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="stillmotion-shots-"))
    try:
        for item in demo.iterdir():
            if item.is_file():
                shutil.copy2(item, work / item.name)
        application()
        window = PanelWindow(settings=QSettings(str(work / "panel.ini"), QSettings.Format.IniFormat))
        window.resize(*size)
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
        window.show()
        vm, controller = window.vm, window.controller
        shots: dict[str, Path] = {}

        def shot(name: str) -> None:
            wait_until_idle(controller)
            shots[name] = save_screenshot(window, out_dir / f"panel_{name}.png")

        shot("empty")
        controller.open_timeline(str(work / "demo.otio"))
        wait_until_idle(controller)
        keys = list(controller.stills)
        controller.select([keys[1]])
        controller.select([keys[2]], "toggle")
        wait_until_idle(controller)
        vm.preset, vm.intensity, vm.routing = "dance", 1.2, {"sway": "low"}
        shot("loaded")

        vm.quality, vm.seed_mode, vm.seed = "preview", "increment", 7
        controller.select([keys[0]])
        wait_until_idle(controller)
        first = controller.enqueue()[0]
        controller.select([keys[1]])
        controller.enqueue()
        pump_until(lambda: (vm.jobs.get(first).preview is not None and vm.jobs.get(first).step >= 30)
                   or vm.jobs.get(first).state.done)
        shot("rendering")
        pump_until(lambda: not vm.jobs.by_state(JobState.queued, JobState.executing), 180)

        vm.quality, vm.intensity = "draft", 0.0  # a frozen attempt, so a failing badge shows
        controller.select([keys[0]])
        controller.enqueue()
        pump_until(lambda: not vm.jobs.by_state(JobState.queued, JobState.executing), 180)
        finished = [j for j in vm.jobs if j.state is JobState.finished]
        controller.insert_job(finished[0].id)
        same_still = [j.id for j in finished if j.still_key == keys[0]]
        controller.compare_jobs(same_still)
        pump_until(lambda: bool(vm.compare))
        shot("history")

        controller.close_compare()
        broken = work / "broken.otio"
        broken.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ', encoding="utf-8")
        controller.open_timeline(str(broken))
        shot("error")
        window.close()
        return shots
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("docs/screenshots")
    for name, path in take_screenshots(out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
