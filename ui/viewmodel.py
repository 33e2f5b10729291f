"""The panel's view-model: everything the widgets show, as observable properties, and the job list.

Widgets read and write these properties (simple values such as the preset go straight in, two-way); anything
that does work goes to the controller through named signals. The controller fills the derived properties
(overview, thumbnail, music, motion curves, jobs).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage
from stillmotion.engine.motion import DEFAULT_PRESET
from stillmotion.engine.qc import ALL_GATES

from .observable import ObservableObject, observable

SEED_MODES = ("lock", "random", "increment")
#: Quality presets: name -> (label, long side of the output in pixels; None = the still's own size up to 1920).
QUALITY_PRESETS: dict[str, tuple[str, int | None]] = {
    "draft": ("Draft (360 px)", 360),
    "preview": ("Preview (720 px)", 720),
    "hd": ("HD (1280 px)", 1280),
    "full": ("Full (still's size, ≤1920)", None),
    "custom": ("Custom long side", None),
}
#: QC badges shown per attempt (gate name -> short label).
BADGES = {"frozen": "Frozen", "ken_burns": "Ken Burns", "drift": "Drift", "sync": "Sync"}


@dataclass
class ClipItem:
    """One clip as the overview draws it (frames at the timeline's rate)."""

    key: str
    name: str
    start: int
    frames: int
    is_still: bool = False
    generated: bool = False
    offline: bool = False


@dataclass
class TrackItem:
    index: int
    name: str
    kind: str  # "Video" or "Audio"
    clips: list[ClipItem] = field(default_factory=list)


@dataclass
class MarkerItem:
    """A timeline marker as the overview draws it (record frame at the timeline's rate)."""

    frame: int
    name: str
    frames: int = 0  # a ranged marker's length (0: a point)
    colour: str = ""  # OTIO's marker colour name (RED, GREEN, ...)


@dataclass
class TimelineOverview:
    name: str
    rate: Fraction
    frames: int
    tracks: list[TrackItem] = field(default_factory=list)
    markers: list[MarkerItem] = field(default_factory=list)

    def still_keys(self, track_index: int | None = None) -> list[str]:
        return [c.key for t in self.tracks if track_index is None or t.index == track_index
                for c in t.clips if c.is_still]

    def clip(self, key: str) -> ClipItem | None:
        for track in self.tracks:
            for clip in track.clips:
                if clip.key == key:
                    return clip
        return None


@dataclass
class MusicView:
    """The music under the selected still, in the still's own time (seconds from its first frame)."""

    duration: float
    peaks: np.ndarray  # (buckets, 2) min / max per bucket, -1..1
    beats: np.ndarray
    downbeats: np.ndarray
    sections: list[tuple[float, float, str]]
    tempo: float | None = None


class JobState(enum.Enum):
    queued = "queued"
    executing = "executing"
    finished = "finished"
    cancelled = "cancelled"
    failed = "failed"

    @property
    def done(self) -> bool:
        return self in (JobState.finished, JobState.cancelled, JobState.failed)


@dataclass
class Job:
    """One render: its request and parameters, its live progress, and what came out."""

    id: str
    still_key: str
    label: str
    request: Any  # RenderRequest
    params: dict[str, Any]
    state: JobState = JobState.queued
    step: int = 0
    total: int = 0
    stage: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    preview: QImage | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    inserted: str = ""  # track name once inserted into the timeline
    store_id: str = ""  # the job store's id for this work (`job_id(request)`), once recorded or loaded
    past: bool = False  # loaded from the job store (a batch or an earlier session), not rendered here
    missing: bool = False  # a finished past job whose clip file no longer exists

    @property
    def usable(self) -> bool:
        """Finished with a clip on disk: it can be played, inserted, compared."""
        return self.state is JobState.finished and not self.missing

    @property
    def eta_seconds(self) -> float | None:
        """Remaining seconds from the render rate so far (None until a frame or two is done)."""
        if self.state is not JobState.executing or self.started is None or self.step < 2 or not self.total:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.step * (self.total - self.step)

    @property
    def qc(self) -> dict[str, Any] | None:
        return (self.result or {}).get("qc")

    def badges(self) -> dict[str, str]:
        """gate -> "pass" / "fail" / "off" for the QC badges (empty when QC did not run)."""
        qc = self.qc
        if not qc:
            return {}
        gates = set((qc.get("thresholds") or {}).get("gates", ALL_GATES))
        skipped = {s.split(":", 1)[0] for s in qc.get("skipped", [])}
        out: dict[str, str] = {}
        for gate in BADGES:
            if gate not in gates or gate in skipped:
                out[gate] = "off"
            elif any(r.startswith(f"{gate}:") for r in qc.get("reasons", [])):
                out[gate] = "fail"
            else:
                out[gate] = "pass"
        return out

    def summary(self) -> dict[str, Any]:
        """What the timeline's metadata keeps of this job (history survives reopening the timeline)."""
        return {"id": self.id, "still_key": self.still_key, "label": self.label, "state": self.state.value,
                "params": self.params, "request": self.request.to_json(), "result": self.result,
                "error": self.error, "inserted": self.inserted, "created": self.created,
                "store_id": self.store_id, "past": self.past}


class JobList(QObject):
    """Ordered jobs with add / change / remove signals (the queue and the history are one list)."""

    job_added = Signal(object)
    job_changed = Signal(object)
    job_removed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: dict[str, Job] = {}

    def __iter__(self):
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._jobs

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def add(self, job: Job) -> Job:
        self._jobs[job.id] = job
        self.job_added.emit(job)
        return job

    def notify(self, job: Job) -> None:
        self.job_changed.emit(job)

    def remove(self, job_id: str) -> None:
        if self._jobs.pop(job_id, None) is not None:
            self.job_removed.emit(job_id)

    def by_state(self, *states: JobState) -> list[Job]:
        return [j for j in self._jobs.values() if j.state in states]


class PanelViewModel(ObservableObject):
    """Observable state of one panel."""

    timeline_path_changed = Signal(object)
    overview_changed = Signal(object)
    selection_changed = Signal(object)
    playhead_changed = Signal(object)
    in_out_changed = Signal(object)
    host_features_changed = Signal(object)
    thumbnail_changed = Signal(object)
    selection_label_changed = Signal(object)
    music_changed = Signal(object)
    music_message_changed = Signal(object)
    motion_changed = Signal(object)
    engines_changed = Signal(object)
    engine_changed = Signal(object)
    models_changed = Signal(object)
    model_changed = Signal(object)
    diffusion_changed = Signal(object)
    prompt_changed = Signal(object)
    negative_prompt_changed = Signal(object)
    seed_changed = Signal(object)
    seed_mode_changed = Signal(object)
    preset_changed = Signal(object)
    intensity_changed = Signal(object)
    routing_changed = Signal(object)
    quality_changed = Signal(object)
    long_side_changed = Signal(object)
    qc_enabled_changed = Signal(object)
    qc_gates_changed = Signal(object)
    insert_tracks_changed = Signal(object)
    insert_track_changed = Signal(object)
    compare_changed = Signal(object)
    player_changed = Signal(object)
    error_changed = Signal(object)
    status_changed = Signal(object)
    problems_changed = Signal(object)
    tempo_factor_changed = Signal(object)
    tap_bpm_changed = Signal(object)
    beat_offset_changed = Signal(object)
    use_markers_changed = Signal(object)
    grid_summary_changed = Signal(object)

    timeline_path = observable("")
    overview = observable(None)               # TimelineOverview | None
    selection = observable((), tuple)          # keys of the selected stills, primary first
    playhead = observable(None)                # frame, when the host has one
    in_out = observable(None)                  # (start, end) frames, when the host has them
    host_features = observable(frozenset(), frozenset)  # e.g. {"playhead", "in_out", "insert"}
    thumbnail = observable(None)               # QImage of the primary still
    selection_label = observable("")
    music = observable(None)                   # MusicView | None
    music_message = observable("")             # why there is no waveform, inline
    motion = observable({}, dict)              # channel -> per-frame level (np.ndarray)
    engines = observable([], list)
    engine = observable("procedural", str)
    models = observable([], list)
    model = observable("", str)
    diffusion = observable(False, bool)        # prompt fields only mean something for diffusion engines
    prompt = observable("", str)
    negative_prompt = observable("", str)
    seed = observable(0, int)
    seed_mode = observable("increment", str)
    preset = observable(DEFAULT_PRESET, str)
    intensity = observable(1.0, float)
    routing = observable({}, dict)             # channel -> audio source overrides
    quality = observable("preview", str)
    long_side = observable(720, int)
    qc_enabled = observable(True, bool)
    qc_gates = observable(tuple(ALL_GATES), tuple)
    insert_tracks = observable([], list)       # choices for "Insert into timeline"
    insert_track = observable("", str)
    compare = observable((), tuple)            # job ids shown side by side
    player = observable(None)                  # (job_id, list[QImage], fps) while a result plays
    error = observable("", str)                # one line, shown inline; "" hides the banner
    status = observable("", str)
    problems = observable([], list)            # per-clip problems from reading the timeline
    # The editor's hand on the beat grid (ui/grid_control.py turns these into an engine BeatGrid).
    tempo_factor = observable(1.0, float)      # ×2 / ÷2 of the tracked (or marker) grid
    tap_bpm = observable(None)                 # tempo tapped by the editor (a hint), None = not tapped
    beat_offset = observable(0.0, float)       # seconds the grid is shifted (dragging the waveform)
    use_markers = observable(False, bool)      # the timeline's markers are the beats
    grid_summary = observable("", str)         # where the shown grid comes from, one short line

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs = JobList(self)

    def settings_keys(self) -> list[str]:
        """Properties that persist between sessions (QSettings) and per timeline (its metadata)."""
        return ["engine", "model", "prompt", "negative_prompt", "seed", "seed_mode", "preset", "intensity",
                "routing", "quality", "long_side", "qc_enabled", "qc_gates", "insert_track"]
