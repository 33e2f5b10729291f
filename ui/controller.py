"""The panel's logic: open a timeline, follow the selection, build requests, run the job queue off the UI thread,
insert results into the timeline and save it back. Widgets never call this directly: they emit named signals
that `connect_panel` wires to the methods of the same name (tests wire a fake controller instead)."""

from __future__ import annotations

import importlib
import random
import shutil
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import opentimelineio as otio
from PySide6.QtCore import QObject, Signal
from stillmotion.engine import audio
from stillmotion.engine.atomic import write_bytes
from stillmotion.engine.audio.grid import BeatGrid
from stillmotion.engine.backends import REGISTRY, engine_names
from stillmotion.engine.backends.base import CancelToken
from stillmotion.engine.errors import BadInputError, StillMotionError
from stillmotion.engine.images import DEFAULT_LONG_SIDE, default_size, load_image
from stillmotion.engine.jobs.store import JobStore, Owner
from stillmotion.engine.models import usable_weights
from stillmotion.engine.motion import PRESETS, MotionSchedule
from stillmotion.engine.qc import ALL_GATES
from stillmotion.engine.rates import FrameGrid
from stillmotion.engine.request import RenderRequest
from stillmotion.engine.timeline import (
    FORMATS,
    find_stills,
    read_timeline_info,
    timeline_format,
    write_timeline,
)
from stillmotion.engine.timeline.edit import generated_clip, place_clip, replace_generated_clip
from stillmotion.engine.timeline.native import (
    add_to_document,
    has_native_writer,
    tracks_from_timeline,
    write_native,
)
from stillmotion.engine.timeline.pipeline import (
    ClipOutcome,
    media_folder_for,
    media_url,
    provenance,
    safe_file_name,
)
from stillmotion.engine.timeline.select import Relinker, Still
from stillmotion.engine.video import read_frames

from . import grid_control, history, timeline_edit
from .settings import PanelSettings
from .viewmodel import QUALITY_PRESETS, SEED_MODES, Job, JobState, MusicView, PanelViewModel
from .worker import RenderThread, TaskRunner, to_qimage

DEFAULT_INSERT_TRACK = "StillMotion"
#: Buckets of the waveform drawn under the selection.
WAVEFORM_BUCKETS = 1200
#: Long side of frames decoded to play a result in the panel, and the most frames kept.
PLAYER_SIDE = 480
PLAYER_MAX_FRAMES = 1500
#: Past jobs (from the job store) whose first frame is decoded for their card, newest first, and its long side.
PAST_PREVIEWS = 24
PAST_PREVIEW_SIDE = 168


def engine_needs_weights(name: str) -> bool:
    """Whether engine `name` is a diffusion engine (weights, prompts), without instantiating it."""
    module_name, class_name = REGISTRY[name].split(":")
    module = importlib.import_module(f"stillmotion.engine.backends.{module_name}")
    return bool(getattr(getattr(module, class_name), "needs_weights", False))


@dataclass
class StillMusic:
    """What the background analysis of a still's music returns."""

    view: MusicView | None
    features: Any | None
    message: str
    grid_summary: str = ""


def peaks_of(samples: np.ndarray, sample_rate: int, offset: float, duration: float, buckets: int,
             out: np.ndarray) -> None:
    """Fold mono `samples` starting `offset` s into the clip into per-bucket min / max (in place)."""
    if samples.size == 0 or duration <= 0:
        return
    t = offset + np.arange(samples.size) / sample_rate
    index = np.clip((t / duration * buckets).astype(np.int64), 0, buckets - 1)
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    where = index[starts]
    out[where, 0] = np.minimum(out[where, 0], np.minimum.reduceat(samples, starts))
    out[where, 1] = np.maximum(out[where, 1], np.maximum.reduceat(samples, starts))


def analyse_still_music(still: Still, rate: Fraction, offline: list[str], beat_grid: Any = None) -> StillMusic:
    """Waveform, beats, downbeats and sections of the music under `still`, in its own clip time (beats from
    `beat_grid`, the editor's correction, when given)."""
    duration = float(Fraction(still.frames) / rate)
    if not still.audio:
        message = offline[0] if offline else "No music under this still: it will move with ambient motion only."
        return StillMusic(None, None, message)
    peaks = np.zeros((WAVEFORM_BUCKETS, 2), dtype=np.float32)
    sections: list[tuple[float, float, str]] = []
    for seg in still.audio:
        clip = audio.load_audio(seg.path, start=seg.source_start, duration=seg.duration, mono=True)
        peaks_of(clip.samples[0] * seg.gain, clip.sample_rate, float(seg.record_start), duration,
                 WAVEFORM_BUCKETS, peaks)
        analysis = audio.analyze(seg.path)
        shift = float(seg.record_start - seg.source_start)
        for a, b, label in analysis.sections:
            lo, hi = max(0.0, a + shift), min(duration, b + shift)
            if hi > lo:
                sections.append((lo, hi, label))
    features = audio.clip_features(still.audio, FrameGrid(rate, still.frames), beat_grid)
    view = MusicView(duration=duration, peaks=peaks, beats=np.asarray(features.beat_times),
                     downbeats=np.asarray(features.downbeat_times), sections=sorted(sections),
                     tempo=features.tempo)
    return StillMusic(view, features, offline[0] if offline else "", grid_control.grid_summary(beat_grid))


class PanelController(QObject):
    """Holds the timeline and the jobs; every method is a named action a widget (or a host) can ask for."""

    timeline_loaded = Signal(str)
    job_done = Signal(str)  # any terminal state: finished, cancelled or failed

    def __init__(self, vm: PanelViewModel, settings: PanelSettings | None = None, render: Any = None,
                 parent: QObject | None = None, store: JobStore | None = None) -> None:
        super().__init__(parent)
        from stillmotion.engine.render import render_clip

        self.vm = vm
        self._store = store
        self._store_lock = threading.Lock()
        self.store_owner = Owner.current()
        self.settings = settings
        self.timeline: otio.schema.Timeline | None = None
        self.rate = Fraction(24)
        self.source_path: Path | None = None
        self.save_path: Path | None = None
        self.stills: dict[str, Still] = {}
        self.still_index: dict[str, int] = {}
        self.offline: dict[str, list[str]] = {}
        #: Folders searched by file name for media not found where the timeline says ("Relink…").
        self.relink_folders: list[str] = []
        self.offline_stills: set[tuple[int, int]] = set()
        #: The opened file's bytes: saving in its own format adds the StillMotion tracks to these (never to
        #: an earlier save), so nothing of the editor's document changes.
        self.native_base: bytes | None = None
        self.features: dict[str, Any] = {}
        self.image_sizes: dict[str, tuple[int, int]] = {}
        self.tokens: dict[str, CancelToken] = {}
        self.running: str | None = None
        self._job_counter = 0
        self.tasks = TaskRunner(self)
        self.renderer = RenderThread(render or render_clip, self)
        worker = self.renderer.worker
        worker.progress.connect(self._on_progress)
        worker.preview.connect(self._on_preview)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)

        vm.engines = engine_names()
        if settings is not None:
            settings.restore(vm)
            settings.track(vm)
        if vm.engine not in vm.engines:
            vm.engine = vm.engines[0]
        if vm.preset not in PRESETS:
            vm.preset = "pulse"
        self._on_engine(vm.engine)
        vm.engine_changed.connect(self._on_engine)
        vm.quality_changed.connect(self._on_quality)
        for name in ("preset", "intensity", "routing", "seed", "selection"):
            getattr(vm, f"{name}_changed").connect(self._refresh_motion)
        vm.selection_changed.connect(self._on_selection)
        self.job_done.connect(self._load_result_preview)
        self.tapper = grid_control.TapTempo()
        for name in ("tempo_factor", "tap_bpm", "beat_offset"):
            getattr(vm, f"{name}_changed").connect(self._on_grid)
        vm.use_markers_changed.connect(self._on_use_markers)

    # ------------------------------------------------------------------ timeline
    def open_timeline(self, path: str, output: str | None = None) -> bool:
        """Read a timeline file; a bad file is one inline error line, never a dialog."""
        try:
            timeline, info = read_timeline_info(path)
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        except OSError as exc:
            self.vm.error = f"cannot read {path}: {exc.strerror or exc}"
            return False
        self.native_base = None if Path(path).is_dir() else Path(path).read_bytes()
        self.load_timeline(timeline, Path(path), info.rate, info.media_root, output=output)
        for note in info.notes:
            self.vm.status = note
        return True

    def load_timeline(self, timeline: otio.schema.Timeline, source_path: Path, rate: Fraction,
                      media_root: Path | None = None, output: str | None = None) -> None:
        """Show an OTIO timeline (from a file, or handed over by a host)."""
        self.timeline, self.rate, self.source_path = timeline, Fraction(rate), Path(source_path)
        self.save_path = Path(output) if output else self.default_save_path(self.source_path)
        relinker = Relinker(self.relink_folders)
        selection = find_stills(timeline, self.rate, self.source_path.resolve().parent, media_root=media_root,
                                relinker=relinker)
        self.offline_stills = {(track, start) for track, start, _name in selection.offline}
        self.stills = {timeline_edit.still_key(s): s for s in selection.stills}
        self.still_index = {key: n for n, key in enumerate(self.stills, start=1)}
        self.offline = {key: [p for p in selection.problems if f"under still {s.name!r}" in p]
                        for key, s in self.stills.items()}
        self.features.clear()
        self.vm.problems = list(selection.problems)
        self.vm.error = ""
        self._refresh_overview()
        self._restore_timeline_state()
        self._load_past_jobs()
        self.vm.timeline_path = str(self.source_path)
        first = next(iter(self.stills), None)
        self.vm.selection = (first,) if first else ()
        if not self.stills and not selection.offline:
            self.vm.error = f"{self.source_path.name}: no stills (image clips) on this timeline"
        self.vm.status = f"{len(self.stills)} still(s) on {timeline.name or self.source_path.name}"
        if selection.offline:
            self.vm.status = (f"{len(selection.offline)} still(s) offline — Relink… to find their media "
                              f"({len(self.stills)} ready)")
        if relinker.relinked:
            self.vm.status += f"; relinked {len(relinker.relinked)} file(s)"
        self.timeline_loaded.emit(str(self.source_path))

    def relink(self, folder: str) -> None:
        """Search `folder` (and those given before) for offline media by file name, and read the timeline again.
        The saved file keeps the editor's paths for every clip StillMotion did not add."""
        if folder and folder not in self.relink_folders:
            self.relink_folders.append(folder)
        if self.source_path is not None:
            self.open_timeline(str(self.source_path), output=str(self.save_path) if self.save_path else None)

    @staticmethod
    def default_save_path(source: Path) -> Path:
        """Beside the input, never the input: edit.xml -> edit_animated.xml (.otio for EDL and unknown)."""
        suffix = source.suffix.lower()
        if suffix not in FORMATS or not FORMATS[suffix].writable or suffix == ".edl":
            suffix = ".otio"
        return source.with_name(f"{source.stem}_animated{suffix}")

    def _refresh_overview(self) -> None:
        assert self.timeline is not None
        offline = {p.split("'")[1] for problems in self.offline.values() for p in problems if "'" in p}
        self.vm.overview = timeline_edit.build_overview(self.timeline, self.rate, list(self.stills.values()),
                                                        offline, self.offline_stills)
        names = timeline_edit.video_track_names(self.timeline)
        source_tracks = {s.track_name for s in self.stills.values()}
        choices = [n for n in names if n not in source_tracks]
        if DEFAULT_INSERT_TRACK not in choices:
            choices.insert(0, DEFAULT_INSERT_TRACK)
        self.vm.insert_tracks = choices
        if self.vm.insert_track not in choices:
            self.vm.insert_track = choices[0]

    def set_playhead(self, frame: int | None) -> None:
        """Hosts with a playhead call this; the overview draws it."""
        self.vm.playhead = frame
        self.vm.host_features = self.vm.host_features | {"playhead"}

    def set_in_out(self, start: int | None, end: int | None) -> None:
        self.vm.in_out = None if start is None or end is None else (int(start), int(end))
        self.vm.host_features = self.vm.host_features | {"in_out"}

    # ------------------------------------------------------------------ selection
    def select(self, keys: list[str], mode: str = "replace") -> None:
        """mode: replace, toggle (ctrl-click) or extend (shift-click: everything between, same track)."""
        keys = [k for k in keys if k in self.stills]
        current = list(self.vm.selection)
        if mode == "toggle":
            for key in keys:
                if key in current:
                    current.remove(key)
                else:
                    current.append(key)
        elif mode == "extend" and current and keys:
            order = list(self.stills)
            a, b = sorted((order.index(current[0]), order.index(keys[-1])))
            current = [current[0]] + [k for k in order[a:b + 1] if k != current[0]]
        else:
            current = keys
        self.vm.selection = tuple(current)

    def select_track_stills(self, track_index: int) -> None:
        """All stills on one track (by its index among the timeline's tracks)."""
        if self.vm.overview is not None:
            self.vm.selection = tuple(self.vm.overview.still_keys(track_index))

    def select_all_stills(self) -> None:
        self.vm.selection = tuple(self.stills)

    def _primary(self) -> Still | None:
        return self.stills.get(self.vm.selection[0]) if self.vm.selection else None

    def _on_selection(self, keys: tuple[str, ...]) -> None:
        still = self._primary()
        if still is None:
            self.vm.thumbnail, self.vm.music, self.vm.selection_label = None, None, "Nothing selected"
            self.vm.music_message = "Select a still on the timeline above." if self.stills else ""
            return
        key = keys[0]
        seconds = float(Fraction(still.frames) / self.rate)
        more = f"  (+{len(keys) - 1} more)" if len(keys) > 1 else ""
        self.vm.selection_label = (f"{still.name} · {still.track_name} · {seconds:.2f} s "
                                   f"({still.frames} frames @ {float(self.rate):g}){more}")
        image = still.image

        def thumbnail() -> tuple[Any, tuple[int, int]]:
            loaded = load_image(image, max_long_side=512)
            return to_qimage(loaded.rgb), loaded.original_size

        def show_thumbnail(value: tuple[Any, tuple[int, int]]) -> None:
            self.vm.thumbnail = value[0]
            self.image_sizes[key] = value[1]

        self.tasks.submit("thumbnail", thumbnail, show_thumbnail, self._task_error)
        if key in self.features:
            return
        self.vm.music, self.vm.music_message = None, "Analysing the music under this still…"
        offline = self.offline.get(key, [])
        rate, timeline = self.rate, self.timeline
        controls = SimpleNamespace(**{n: getattr(self.vm, n) for n in ("tempo_factor", "tap_bpm", "beat_offset",
                                                                        "use_markers")})

        def analyse() -> StillMusic:
            return analyse_still_music(still, rate, offline, grid_control.panel_grid(controls, still, rate, timeline))

        self.tasks.submit("music", analyse, lambda music: self._show_music(key, music), self._music_error)

    def _show_music(self, key: str, music: StillMusic) -> None:
        self.features[key] = music
        if self.vm.selection and self.vm.selection[0] == key:
            self.vm.music, self.vm.music_message = music.view, music.message
            self.vm.grid_summary = music.grid_summary
            self._refresh_motion()

    def _music_error(self, message: str) -> None:
        self.vm.music = None
        self.vm.music_message = f"Music unavailable: {message}"
        if self.vm.selection:
            self.features[self.vm.selection[0]] = StillMusic(None, None, self.vm.music_message)
        self._refresh_motion()

    def _task_error(self, message: str) -> None:
        self.vm.error = message

    # ------------------------------------------------------------------ parameters
    def schedule(self) -> MotionSchedule:
        vm = self.vm
        return MotionSchedule(preset=vm.preset, intensity=vm.intensity, seed=vm.seed,
                              routing={k: v for k, v in vm.routing.items() if k in PRESETS[vm.preset]})

    def _refresh_motion(self, *_: Any) -> None:
        """The motion the current preset will apply to the selected still's music, recomputed live."""
        still = self._primary()
        if still is None:
            self.vm.motion = {}
            return
        music = self.features.get(self.vm.selection[0])
        try:
            schedule = self.schedule()
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return
        from stillmotion.engine.timeline.markers import still_cues

        schedule.cues = still_cues(still, self.rate)
        self.vm.motion = schedule.channels(music.features if music else None, still.frames, float(self.rate))

    # ------------------------------------------------------------------ beat grid (ui/grid_control.py)
    def double_tempo(self) -> None:
        self._step_tempo(up=True)

    def halve_tempo(self) -> None:
        self._step_tempo(up=False)

    def _step_tempo(self, up: bool) -> None:
        if self.vm.tap_bpm is not None:  # a tapped tempo is doubled / halved itself
            self.vm.tap_bpm = min(max(self.vm.tap_bpm * (2 if up else 0.5), 20.0), 400.0)
        else:
            self.vm.tempo_factor = grid_control.step_factor(self.vm.tempo_factor, up)

    def tap_tempo(self) -> None:
        bpm = self.tapper.tap()
        if bpm is not None:
            self.vm.tempo_factor = 1.0
            self.vm.tap_bpm = round(bpm, 1)

    def shift_grid(self, seconds: float) -> None:
        self.vm.beat_offset = round(min(max(self.vm.beat_offset + float(seconds), -60.0), 60.0), 4)

    def reset_grid(self) -> None:
        vm = self.vm
        vm.tempo_factor, vm.tap_bpm, vm.beat_offset = 1.0, None, 0.0

    def _on_use_markers(self, *_: Any) -> None:
        """Markers are beats of their own: a ×2 or tapped tempo meant for the other grid does not carry over."""
        self.vm.tempo_factor, self.vm.tap_bpm = 1.0, None
        self._on_grid()

    def _on_grid(self, *_: Any) -> None:
        """A grid control changed: analyse the selected still's music again, so waveform, beats and motion
        curve are redrawn together."""
        self.features.clear()
        if self.vm.selection:
            self._on_selection(self.vm.selection)

    def _on_engine(self, engine: str) -> None:
        diffusion = engine_needs_weights(engine)
        self.vm.diffusion = diffusion
        self.vm.models = usable_weights(engine) if diffusion else []
        if self.vm.model not in self.vm.models:
            self.vm.model = self.vm.models[0] if self.vm.models else ""

    def _on_quality(self, quality: str) -> None:
        side = QUALITY_PRESETS.get(quality, ("", None))[1]
        if side is not None:
            self.vm.long_side = side

    def output_size(self, key: str) -> tuple[int, int]:
        """Rendered size for a still from the quality preset (even sides, the still's aspect)."""
        size = self.image_sizes.get(key)
        if size is None:
            from PIL import Image

            with Image.open(self.stills[key].image) as img:
                size = img.size
            self.image_sizes[key] = size
        vm = self.vm
        long_side = DEFAULT_LONG_SIDE if vm.quality == "full" else vm.long_side
        if vm.quality == "full":
            long_side = min(DEFAULT_LONG_SIDE, max(size))
        if not 16 <= long_side <= 8192:
            raise BadInputError(f"long side {long_side} px is out of range (16..8192)")
        return default_size(size, long_side=long_side)

    def random_seed(self) -> None:
        self.vm.seed = random.randrange(0, 2**31 - 1)

    def _next_seed(self) -> int:
        vm = self.vm
        if vm.seed_mode == "random":
            vm.seed = random.randrange(0, 2**31 - 1)
        seed = vm.seed
        if vm.seed_mode == "increment":
            vm.seed = seed + 1
        return seed

    # ------------------------------------------------------------------ jobs
    def enqueue(self) -> list[str]:
        """One job per selected still, with the current parameters; returns the new job ids."""
        vm = self.vm
        if self.timeline is None or not vm.selection:
            vm.error = "Open a timeline and select at least one still first."
            return []
        if vm.seed_mode not in SEED_MODES:
            vm.seed_mode = "increment"
        if vm.diffusion and not vm.model:
            vm.error = (f"engine {vm.engine!r} needs local weights: put a model folder in $STILLMOTION_MODELS "
                        "and pick it under Model")
            return []
        try:
            schedule = self.schedule()
        except StillMotionError as exc:
            vm.error = str(exc)
            return []
        seed = self._next_seed() if vm.seed_mode != "random" else None
        ids = []
        for key in vm.selection:
            job_seed = seed if seed is not None else self._next_seed()
            try:
                ids.append(self._add_job(key, job_seed, schedule))
            except StillMotionError as exc:
                vm.error = f"{self.stills[key].name}: {exc}"
        self._start_next()
        return ids

    def _params(self, seed: int, size: tuple[int, int]) -> dict[str, Any]:
        vm = self.vm
        return {"engine": vm.engine, "model": vm.model or None, "preset": vm.preset,
                "intensity": round(vm.intensity, 3), "seed": seed, "routing": dict(vm.routing),
                "quality": vm.quality, "size": f"{size[0]}x{size[1]}", "qc": vm.qc_enabled,
                "gates": list(vm.qc_gates), "prompt": vm.prompt if vm.diffusion else "",
                "negative_prompt": vm.negative_prompt if vm.diffusion else ""}

    def _add_job(self, key: str, seed: int, schedule: MotionSchedule, params: dict[str, Any] | None = None
                 ) -> str:
        assert self.save_path is not None
        still = self.stills[key]
        size = self.output_size(key) if params is None else tuple(int(v) for v in params["size"].split("x"))
        params = dict(params) if params is not None else self._params(seed, size)
        params["seed"] = seed
        self._job_counter += 1
        job_id = f"{int(time.time() * 1000) % 10**9:09d}-{self._job_counter}"
        folder = media_folder_for(self.save_path.resolve())
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / safe_file_name(f"{still.name} seed{seed} {job_id}", self.still_index[key])
        schedule = MotionSchedule.from_json(schedule.to_json() | {"seed": seed})
        options: dict[str, Any] = {"timeline": {"clip": still.name, "track": still.track_name,
                                                "record_start_frame": still.record_start},
                                   "schedule": schedule.to_json()}
        if params["qc"]:
            options["qc_thresholds"] = {"gates": [g for g in params["gates"] if g in ALL_GATES]}
        request = RenderRequest(
            image=str(still.image), output=str(output), fps=self.rate, frames=still.frames, width=size[0],
            height=size[1], audio=list(still.audio), engine=params["engine"], model=params["model"],
            preset=params["preset"], intensity=float(params["intensity"]), seed=seed, prompt=params["prompt"],
            negative_prompt=params["negative_prompt"], qc=bool(params["qc"]), options=options)
        if "beat_grid" in params:  # regenerate: the attempt's own grid, not the controls' current one
            grid = BeatGrid.from_json(params["beat_grid"]) if params["beat_grid"] else None
        else:
            grid = grid_control.panel_grid(self.vm, still, self.rate, self.timeline)
            params["beat_grid"] = grid.to_json() if grid is not None else None
        grid_control.apply_to_request(request, grid, self.timeline, still, self.rate)
        from stillmotion.engine.render import validate

        validate(request)
        job = Job(id=job_id, still_key=key, label=still.name, request=request, params=params, total=still.frames)
        self.vm.jobs.add(job)
        return job_id

    def _start_next(self) -> None:
        if self.running is not None:
            return
        queued = self.vm.jobs.by_state(JobState.queued)
        if not queued:
            return
        job = queued[0]
        token = CancelToken()
        self.tokens[job.id] = token
        self.running = job.id
        job.state, job.started, job.stage = JobState.executing, time.monotonic(), "starting"
        self.vm.jobs.notify(job)
        self.renderer.start_job(job.id, job.request, token)

    def _job(self, job_id: str) -> Job | None:
        return self.vm.jobs.get(job_id)

    def _on_progress(self, job_id: str, step: int, total: int, stage: str) -> None:
        job = self._job(job_id)
        if job is None or job.state is not JobState.executing:
            return
        job.step, job.total, job.stage = step, max(total, 1), stage
        self.vm.jobs.notify(job)

    def _on_preview(self, job_id: str, image: Any) -> None:
        job = self._job(job_id)
        if job is not None and job.state is JobState.executing:
            job.preview = image
            self.vm.jobs.notify(job)

    def _finish(self, job_id: str, state: JobState, result: dict[str, Any] | None = None, error: str = "") -> None:
        job = self._job(job_id)
        self.tokens.pop(job_id, None)
        if self.running == job_id:
            self.running = None
        if job is not None:
            job.state, job.ended, job.result, job.error = state, time.time(), result, error
            if state is JobState.finished:
                job.step = job.total
            self.vm.jobs.notify(job)
            verdict = ((result or {}).get("qc") or {}).get("verdict")
            self.vm.status = (f"{job.label}: {state.value}" + (f" (QC {verdict})" if verdict else "")
                              + (f": {error}" if error else ""))
            self._record(job)
        self.job_done.emit(job_id)
        self._start_next()

    def _on_finished(self, job_id: str, result: dict[str, Any]) -> None:
        self._finish(job_id, JobState.finished, result=result)

    def _on_failed(self, job_id: str, message: str) -> None:
        self._finish(job_id, JobState.failed, error=message)

    def _on_cancelled(self, job_id: str) -> None:
        self._finish(job_id, JobState.cancelled)

    def cancel_job(self, job_id: str) -> None:
        job = self._job(job_id)
        if job is None or job.state.done:
            return
        if job.state is JobState.queued:
            job.state = JobState.cancelled
            self.vm.jobs.notify(job)
            return
        token = self.tokens.get(job_id)
        if token is not None:
            token.cancel()
            job.stage = "cancelling"
            self.vm.jobs.notify(job)

    def cancel_all(self) -> None:
        for job in self.vm.jobs.by_state(JobState.queued, JobState.executing):
            self.cancel_job(job.id)

    def regenerate(self, job_id: str) -> str | None:
        """The same still and parameters with a new random seed."""
        job = self._job(job_id)
        if job is None or job.still_key not in self.stills:
            self.vm.error = "that attempt's still is no longer on the timeline"
            return None
        schedule = MotionSchedule.from_json(job.request.options.get("schedule", {}))
        new_seed = random.randrange(0, 2**31 - 1)
        try:
            new_id = self._add_job(job.still_key, new_seed, schedule, params=job.params)
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return None
        self._start_next()
        return new_id

    def remove_job(self, job_id: str) -> None:
        job = self._job(job_id)
        if job is not None and job.state.done:
            self.vm.jobs.remove(job_id)
            self.vm.compare = tuple(j for j in self.vm.compare if j != job_id)

    # ------------------------------------------------------------------ results
    def _finished_job(self, job_id: str) -> Job | None:
        job = self._job(job_id)
        if job is None or job.state is not JobState.finished or not job.result:
            self.vm.error = "only a finished attempt can be used"
            return None
        if not Path(job.result["output"]).is_file():
            self.vm.error = f"the rendered file {job.result['output']} is gone"
            return None
        return job

    def _clip_metadata(self, job: Job) -> dict[str, Any]:
        still = self.stills[job.still_key]
        outcome = ClipOutcome(still, job.request, SimpleNamespace(**job.result))
        return provenance(outcome, self.rate) | {"panel_job": job.id}

    def _media_url(self, job: Job) -> str:
        assert self.save_path is not None
        relative = timeline_format(self.save_path).relative_media
        return media_url(Path(job.result["output"]), self.save_path, relative)

    def insert_job(self, job_id: str, track: str = "") -> bool:
        """Place the attempt at its still's record range on `track` (default: the chosen insert track)."""
        job = self._finished_job(job_id)
        if job is None or self.timeline is None:
            return False
        still = self.stills.get(job.still_key)
        if still is None:
            self.vm.error = "that attempt's still is no longer on the timeline"
            return False
        track = track or self.vm.insert_track or DEFAULT_INSERT_TRACK
        clip = generated_clip(f"{still.name} (StillMotion)", self._media_url(job), still.frames,
                                            self.rate, self._clip_metadata(job))
        try:
            place_clip(self.timeline, clip, still.record_start, self.rate, track)
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        job.inserted = track
        self.vm.jobs.notify(job)
        self._refresh_overview()
        return self.save()

    def replace_job(self, job_id: str) -> bool:
        """Swap the clip inserted earlier for this still with this attempt."""
        job = self._finished_job(job_id)
        if job is None or self.timeline is None:
            return False
        still = self.stills[job.still_key]
        try:
            clip = replace_generated_clip(self.timeline, still.name, still.record_start,
                                                        self._media_url(job), self._clip_metadata(job))
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        job.inserted = clip.parent().name if clip.parent() is not None else "timeline"
        for other in self.vm.jobs:
            if other is not job and other.still_key == job.still_key and other.inserted:
                other.inserted = ""
                self.vm.jobs.notify(other)
        self.vm.jobs.notify(job)
        self._refresh_overview()
        return self.save()

    def play_job(self, job_id: str) -> None:
        job = self._finished_job(job_id)
        if job is None:
            return
        path, fps = job.result["output"], float(Fraction(job.result["fps"]))

        def decode() -> list[Any]:
            frames = []
            for frame in read_frames(path, max_side=PLAYER_SIDE):
                frames.append(to_qimage(frame))
                if len(frames) >= PLAYER_MAX_FRAMES:
                    break
            return frames

        self.vm.status = f"Loading {Path(path).name}…"
        self.tasks.submit("player", decode, lambda frames: self._show_player(job_id, frames, fps),
                          self._task_error)

    def _show_player(self, job_id: str, frames: list[Any], fps: float) -> None:
        self.vm.player = (job_id, frames, fps)
        self.vm.status = f"Playing {len(frames)} frames"

    def stop_player(self) -> None:
        self.vm.player = None

    def compare_jobs(self, job_ids: list[str]) -> None:
        """Show finished attempts side by side (their middle frames, parameters and QC)."""
        jobs = [j for j in (self._job(i) for i in job_ids) if j is not None and j.usable]
        if len(jobs) < 2:
            self.vm.error = "tick two or more finished attempts to compare them"
            return
        ids = tuple(j.id for j in jobs)

        def middles() -> dict[str, Any]:
            out = {}
            for job in jobs:
                middle = job.request.frames // 2
                for k, frame in enumerate(read_frames(job.result["output"], max_side=320)):
                    if k == middle:
                        out[job.id] = to_qimage(frame)
                        break
            return out

        def show(frames: dict[str, Any]) -> None:
            for job in jobs:
                if job.id in frames:
                    job.preview = frames[job.id]
            self.vm.compare = ids

        self.tasks.submit("compare", middles, show, self._task_error)

    def close_compare(self) -> None:
        self.vm.compare = ()

    # ------------------------------------------------------------------ job store
    def job_store(self) -> JobStore:
        """The job store (the user's default one unless given); opened on first use, from any thread."""
        with self._store_lock:
            if self._store is None:
                self._store = JobStore()
            return self._store

    def store_timeline(self) -> str | None:
        """The timeline path panel renders are recorded under: the file the panel saves to, like a batch's OUT
        (`stillmotion jobs --timeline OUT` lists both)."""
        return history.timeline_key(self.save_path) if self.save_path is not None else None

    def _record(self, job: Job) -> None:
        """Write a render that just ended into the job store, on the task pool (hashing and SQLite off the UI
        thread); the job learns its store id when that is done."""
        request, state, result, error = job.request, job.state.value, job.result, job.error
        timeline, owner = self.store_timeline(), self.store_owner

        def write() -> str:
            return history.record_render(self.job_store(), owner, request, state, result, error, timeline)

        def recorded(store_id: str) -> None:
            job.store_id = store_id

        self.tasks.submit(f"record:{job.id}", write, recorded, self._store_error)

    def _store_error(self, message: str) -> None:
        self.vm.status = f"Job history not updated: {message}"

    def _load_past_jobs(self) -> None:
        """Bring this timeline's jobs from the store (batch renders, earlier sessions) into the history."""
        assert self.source_path is not None
        timelines = [history.timeline_key(self.source_path)]
        if self.save_path is not None:
            timelines.append(history.timeline_key(self.save_path))
        loading = self.source_path

        def load() -> list[history.PastJob]:
            return history.load_past_jobs(self.job_store(), timelines)

        def show(past: list[history.PastJob]) -> None:
            if self.source_path == loading:
                self._add_past_jobs(past)

        self.tasks.submit("past_jobs", load, show, self._store_error)

    def _still_for(self, request: RenderRequest) -> tuple[str, str]:
        """(still key, label) of the still a stored request was rendered for, matched by track and record start
        (then by clip name); key "" when that still is not on this timeline."""
        where = request.options.get("timeline") or {}
        name = str(where.get("clip") or Path(request.image).name)
        for key, still in self.stills.items():
            if still.track_name == where.get("track") and still.record_start == where.get("record_start_frame"):
                return key, still.name
        same_name = [k for k, s in self.stills.items() if s.name == name]
        return (same_name[0] if len(same_name) == 1 else ""), name

    def _add_past_jobs(self, past: list[history.PastJob]) -> None:
        """Add stored jobs the history does not already show (same store id, or one of its clip files)."""
        known_ids = {j.store_id for j in self.vm.jobs if j.store_id}
        known_outputs = set()
        for job in self.vm.jobs:
            for path in (job.request.output, (job.result or {}).get("output")):
                if path:
                    known_outputs.add(history.timeline_key(path))
        for item in past:
            if item.store_id in known_ids or any(history.timeline_key(p) in known_outputs for p in item.outputs):
                continue
            key, label = self._still_for(item.request)
            state = JobState(item.state)
            missing = state is JobState.finished and item.output is None
            job = Job(id=f"store-{item.store_id[:16]}", still_key=key, label=label, request=item.request,
                      params=history.params_of(item.request), state=state, step=item.request.frames, total=item.request.frames,
                      result=item.result, error=item.error or ("the clip file is gone" if missing else ""),
                      created=item.updated, store_id=item.store_id, past=True, missing=missing)
            if job.id in self.vm.jobs:
                continue
            self.vm.jobs.add(job)
        self._load_past_previews()

    def _load_past_previews(self) -> None:
        """First frames of the newest past clips for their cards (decoded on the pool, a few at a time)."""
        wanted = sorted((j for j in self.vm.jobs if j.past and j.usable and j.preview is None),
                        key=lambda j: j.created, reverse=True)[:PAST_PREVIEWS]
        paths = {j.id: str(j.result["output"]) for j in wanted if j.result}

        def decode() -> dict[str, Any]:
            previews = {}
            for job_id, path in paths.items():
                for frame in read_frames(path, max_side=PAST_PREVIEW_SIDE):
                    previews[job_id] = to_qimage(frame)
                    break
            return previews

        def show(previews: dict[str, Any]) -> None:
            for job_id, image in previews.items():
                job = self._job(job_id)
                if job is not None:
                    job.preview = image
                    self.vm.jobs.notify(job)

        if paths:
            self.tasks.submit("past_previews", decode, show, self._store_error)

    def _load_result_preview(self, job_id: str) -> None:
        """A finished job whose render sent no preview (a host's child-process render sends progress only)
        gets its clip's first frame on its card, as past jobs do, instead of an empty black box."""
        job = self._job(job_id)
        if job is None or job.preview is not None or not job.usable or not job.result:
            return
        path = str(job.result["output"])

        def decode() -> Any:
            for frame in read_frames(path, max_side=PAST_PREVIEW_SIDE):
                return to_qimage(frame)
            return None

        def show(image: Any) -> None:
            if image is not None and job.preview is None:
                job.preview = image
                self.vm.jobs.notify(job)

        self.tasks.submit(f"result_preview:{job_id}", decode, show, self._task_error)

    # ------------------------------------------------------------------ saving
    def _store_timeline_state(self) -> None:
        assert self.timeline is not None
        vm = self.vm
        data = dict(self.timeline.metadata.get("stillmotion", {}) or {})
        # past jobs live in the job store; the metadata only keeps those this panel put on the timeline
        history = [j.summary() for j in vm.jobs if j.state.done and (not j.past or j.inserted)]
        data["panel"] = {"settings": {k: (list(v) if isinstance(v, tuple) else v)
                                      for k in vm.settings_keys() for v in [getattr(vm, k)]},
                         "history": history}
        self.timeline.metadata["stillmotion"] = timeline_edit_jsonable(data)

    def _restore_timeline_state(self) -> None:
        """Per-timeline settings and attempt history from the timeline's metadata["stillmotion"]["panel"]."""
        assert self.timeline is not None
        vm = self.vm
        for job in list(vm.jobs):
            vm.jobs.remove(job.id)
        vm.compare, vm.player = (), None
        panel = (self.timeline.metadata.get("stillmotion") or {}).get("panel") or {}
        for key, value in dict(panel.get("settings") or {}).items():
            if key in vm.settings_keys():
                try:
                    setattr(vm, key, tuple(value) if key == "qc_gates" else value)
                except (TypeError, ValueError):
                    continue
        for entry in panel.get("history") or []:
            try:
                request = RenderRequest.from_json(dict(entry["request"]))
                state = JobState(entry["state"])
            except (KeyError, TypeError, ValueError):
                continue
            if state is JobState.finished and not Path(request.output).is_file():
                continue
            job = Job(id=str(entry["id"]), still_key=str(entry["still_key"]), label=str(entry["label"]),
                      request=request, params=dict(entry.get("params") or {}), state=state,
                      step=request.frames, total=request.frames, result=entry.get("result"),
                      error=str(entry.get("error") or ""), inserted=str(entry.get("inserted") or ""),
                      created=float(entry.get("created") or 0.0), store_id=str(entry.get("store_id") or ""),
                      past=bool(entry.get("past")))
            vm.jobs.add(job)

    def save(self, in_place: bool = False) -> bool:
        """Write the timeline (with the panel's state in its metadata) atomically beside the input, or over the
        input when asked (keeping IN.bak)."""
        if self.timeline is None or self.save_path is None or self.source_path is None:
            self.vm.error = "no timeline to save"
            return False
        target = self.source_path if in_place else self.save_path
        self._store_timeline_state()
        try:
            if in_place:
                backup = self.source_path.with_name(self.source_path.name + ".bak")
                shutil.copy2(self.source_path, backup)
            if self.native_base is not None and has_native_writer(self.source_path, target):
                tracks = tracks_from_timeline(self.timeline, self.rate)
                data, _ = add_to_document(self.native_base, timeline_format(target).suffix, tracks, self.rate,
                                          self.source_path.name)
                write_bytes(target, data, overwrite=True)
            elif self.source_path.is_dir() and not in_place and has_native_writer(self.source_path, target):
                write_native(self.source_path, target, tracks_from_timeline(self.timeline, self.rate), self.rate,
                             overwrite=True)  # an .fcpxmld bundle: a copy of it with the tracks added
            else:
                write_timeline(self.timeline, target, overwrite=True, rate=self.rate)
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return False
        except OSError as exc:
            self.vm.error = f"cannot save {target}: {exc.strerror or exc}"
            return False
        self.vm.status = f"Saved {target.name}"
        return True

    def dismiss_error(self) -> None:
        self.vm.error = ""

    def shutdown(self) -> None:
        """Cancel everything and stop the threads (the window is closing)."""
        self.cancel_all()
        self.renderer.stop()
        self.tasks.wait()
        if self.settings is not None:
            self.settings.sync()


def timeline_edit_jsonable(value: Any) -> Any:
    """Plain JSON types only: OTIO metadata rejects Fractions, tuples of numpy scalars and the like."""
    import json

    return json.loads(json.dumps(value, default=str))
