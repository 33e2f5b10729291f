"""Run inside Blender's interface (`blender --factory-startup --python THIS -- ARGS_JSON`, under Xvfb): build a
sequencer scene with an image strip and a sound strip, open the StillMotion panel through its operator, drive it
through Qt (Animate, wait for the job, Insert), record what an editor would see, grab the whole screen, quit.

Every step runs from a `bpy.app.timers` callback so Blender keeps drawing its own window between steps; the
report (JSON) is written before Blender quits, and a deadline turns a stuck step into a reported failure.
Used by tests/test_blender_gui.py.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import bpy

ARGS = json.loads(sys.argv[sys.argv.index("--") + 1])
REPORT: dict = {"steps": [], "errors": [], "blender_python": list(sys.version_info[:2])}
STARTED = time.monotonic()
TICK = 0.02


def write_report() -> None:
    with open(ARGS["report"], "w", encoding="utf-8") as handle:
        json.dump(REPORT, handle, indent=1)


def build_scene() -> None:
    bpy.context.preferences.filepaths.temporary_directory = ARGS["tmp"]  # Blender's quit.blend goes there
    bpy.context.preferences.view.show_splash = False  # read after this script runs, before the splash opens
    bpy.ops.preferences.addon_enable(module="stillmotion_vse")
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 320, 180, 100
    scene.frame_start, scene.frame_end = 1, ARGS["frames"]
    editor = scene.sequence_editor_create()
    editor.sequences.new_sound("music", ARGS["wav"], 1, 1)
    still = editor.sequences.new_image("rocket", ARGS["png"], 2, 1)
    still.frame_final_duration = ARGS["frames"]
    for number, frame in enumerate(ARGS["markers"]):
        scene.timeline_markers.new(f"M{number + 1}", frame=frame)
    # the main area shows the sequencer (factory start-up opens the 3D layout)
    screen = bpy.context.window.screen
    biggest = max(screen.areas, key=lambda a: a.width * a.height)
    biggest.type = "SEQUENCE_EDITOR"
    biggest.spaces.active.view_type = "SEQUENCER"
    biggest.spaces.active.timeline_overlay.show_strip_source = False  # strip names without temp paths


def strips() -> list[dict]:
    editor = bpy.context.scene.sequence_editor
    return [{"name": s.name, "type": s.type, "channel": s.channel, "start": s.frame_final_start,
             "frames": s.frame_final_duration} for s in editor.sequences_all]


class Session:
    """A small state machine, one step per timer tick until its condition holds."""

    def __init__(self) -> None:
        self.step = "open"
        self.since = time.monotonic()
        self.window = None
        self.painted = 0
        self.job_id = ""

    def advance(self, step: str) -> None:
        REPORT["steps"].append({"step": self.step, "seconds": round(time.monotonic() - self.since, 3)})
        self.step, self.since = step, time.monotonic()

    def tick(self) -> float | None:
        try:
            if time.monotonic() - STARTED > ARGS["deadline"]:
                raise TimeoutError(f"step {self.step!r} did not finish before the deadline")
            return getattr(self, f"do_{self.step}")()
        except Exception as exc:  # noqa: BLE001 - reported to the test, then Blender quits
            REPORT["errors"].append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            return self.finish()

    def do_open(self) -> float:
        from PySide6.QtCore import QEvent, QObject

        session = self

        class PaintCounter(QObject):
            def eventFilter(self, watched, event):  # noqa: N802 - Qt's name
                if event.type() == QEvent.Type.Paint:
                    session.painted += 1
                return False

        start = time.perf_counter()
        result = bpy.ops.stillmotion.open_panel()
        REPORT["operator"] = list(result)
        if "FINISHED" not in result:
            return self.finish()
        from stillmotion.plugin.blender import operators

        self.window = operators._PANELS[-1]
        self.counter = PaintCounter()
        self.window.panel.installEventFilter(self.counter)
        self.open_started = start
        REPORT["operator_seconds"] = round(time.perf_counter() - start, 3)
        self.advance("ready")
        return 0.0

    def do_ready(self) -> float:
        """Ready = the scene's still is loaded and selected, its thumbnail and music are in, and the panel has
        painted after that."""
        vm, controller = self.window.vm, self.window.controller
        loaded = bool(controller.stills) and vm.thumbnail is not None and vm.music is not None
        if loaded and not controller.tasks.busy():
            if not hasattr(self, "painted_before"):
                self.painted_before = self.painted
                self.window.panel.update()
            elif self.painted > self.painted_before:
                REPORT["ready_seconds"] = round(time.perf_counter() - self.open_started, 3)
                REPORT["panel_status"] = vm.status
                REPORT["window"] = self.window_facts()
                self.advance("animate")
        return TICK

    def window_facts(self) -> dict:
        from PySide6.QtCore import Qt
        from stillmotion.plugin.x11 import transient_for

        w = self.window
        flags = w.windowFlags()
        return {"geometry": [w.x(), w.y(), w.width(), w.height()], "editor": list(w.host.editor_rect() or []),
                "tool": bool(flags & Qt.WindowType.Tool == Qt.WindowType.Tool),
                "stays_on_top": bool(flags & Qt.WindowType.WindowStaysOnTopHint),
                "host_window": w.host.native_window(), "transient_for": transient_for(int(w.winId())),
                "title": w.windowTitle(),
                "tracks": [t.name for t in w.vm.overview.tracks] if w.vm.overview else [],
                "markers": [[m.frame, m.name] for m in getattr(w.vm.overview, "markers", [])]}

    def do_animate(self) -> float:
        vm = self.window.vm
        vm.quality, vm.long_side, vm.engine, vm.preset, vm.seed_mode, vm.seed = (
            "custom", ARGS["long_side"], "procedural", "pulse", "lock", 5)
        button = self.window.panel.controls.enqueue
        REPORT["animate_button"] = [button.text(), button.isEnabled()]
        before = set(j.id for j in vm.jobs)
        button.click()
        new = [j.id for j in vm.jobs if j.id not in before]
        if not new:
            raise RuntimeError(f"Animate queued nothing: {vm.error or vm.status}")
        self.job_id = new[0]
        self.advance("render")
        return TICK

    def do_render(self) -> float:
        job = self.window.vm.jobs.get(self.job_id)
        if job.state.done and not self.window.controller.tasks.busy():
            REPORT["job"] = {"state": job.state.value, "error": job.error, "badges": job.badges(),
                             "verdict": (job.qc or {}).get("verdict")}
            self.advance("insert")
        return TICK

    def do_insert(self) -> float:
        card = self.window.panel.jobs.cards[self.job_id]
        REPORT["insert_button"] = [card.insert.isVisible(), card.insert.isEnabled(), card.insert.toolTip()]
        card.insert.click()
        self.window.panel.repaint()
        vm = self.window.vm
        REPORT["after_insert"] = {"status": vm.status, "error": vm.error, "strips": strips()}
        REPORT["card"] = self.card_facts(card)
        self.advance("settle")
        return TICK

    def card_facts(self, card) -> dict:
        image = card.preview.image
        if image is None:
            return {"preview": None}
        from PySide6.QtGui import QImage

        small = image.convertToFormat(QImage.Format.Format_RGB888).scaled(32, 32)
        values = [c for y in range(small.height()) for x in range(small.width())
                  for c in small.pixelColor(x, y).getRgb()[:3]]
        return {"preview": [image.width(), image.height()], "preview_mean": sum(values) / len(values),
                "badges": {gate: badge.status for gate, badge in card.badges.items() if badge.isVisible()},
                "state": card.state.text()}

    def do_settle(self) -> float:
        """Let Blender draw the new strip and Qt the inserted card before the screen is grabbed."""
        if not hasattr(self, "framed"):
            self.framed = True
            window = bpy.context.window_manager.windows[0]
            area = next(a for a in window.screen.areas if a.type == "SEQUENCE_EDITOR")
            region = next(r for r in area.regions if r.type == "WINDOW")
            with bpy.context.temp_override(window=window, area=area, region=region):
                bpy.ops.sequencer.view_all()
        if time.monotonic() - self.since < 0.6:
            for area in bpy.context.window_manager.windows[0].screen.areas:
                area.tag_redraw()
            return TICK
        from PySide6.QtGui import QGuiApplication

        screen = QGuiApplication.primaryScreen()
        shot = screen.grabWindow(0)
        REPORT["screenshot"] = [shot.width(), shot.height(), bool(shot.save(ARGS["screenshot"], "PNG"))]
        return self.finish()

    def finish(self) -> None:
        REPORT["seconds"] = round(time.monotonic() - STARTED, 3)
        write_report()
        bpy.ops.wm.quit_blender()  # the add-on's exit hook closes the panel
        return None


try:
    build_scene()
    REPORT["strips_before"] = strips()
except Exception as exc:  # noqa: BLE001
    REPORT["errors"].append(f"scene: {exc}\n{traceback.format_exc()}")
    write_report()
    bpy.ops.wm.quit_blender()
else:
    SESSION = Session()
    bpy.app.timers.register(SESSION.tick, first_interval=0.5)
