"""Which stills are selected, and what the panel shows for the first one: its thumbnail, the music under it
(analysed on the task pool, once per still until the beat grid changes) and the motion the current preset
gives it, recomputed live as the controls change."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

from stillmotion.engine.errors import StillMotionError
from stillmotion.engine.images import load_image
from stillmotion.engine.timeline.select import Still

from . import grid_control
from .music_analysis import StillMusic, analyse_still_music
from .parameters import RenderParameters
from .timeline_session import TimelineSession
from .viewmodel import PanelViewModel
from .worker import TaskRunner, to_qimage


class StillSelection:
    """Selection actions, and the thumbnail, music and motion of the primary (first) selected still."""

    def __init__(self, vm: PanelViewModel, session: TimelineSession, parameters: RenderParameters,
                 tasks: TaskRunner, task_error: Callable[[str], None]) -> None:
        self.vm = vm
        self.session = session
        self.parameters = parameters
        self.tasks = tasks
        self.task_error = task_error
        #: The analysed music of each still (cleared when the timeline or the beat grid changes).
        self.features: dict[str, StillMusic] = {}

    def select(self, keys: list[str], mode: str = "replace") -> None:
        """mode: replace, toggle (ctrl-click) or extend (shift-click: everything between, same track)."""
        stills = self.session.stills
        keys = [k for k in keys if k in stills]
        current = list(self.vm.selection)
        if mode == "toggle":
            for key in keys:
                if key in current:
                    current.remove(key)
                else:
                    current.append(key)
        elif mode == "extend" and current and keys:
            order = list(stills)
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
        self.vm.selection = tuple(self.session.stills)

    def primary(self) -> Still | None:
        return self.session.stills.get(self.vm.selection[0]) if self.vm.selection else None

    def on_selection(self, keys: tuple[str, ...]) -> None:
        """Show the primary still: its label and thumbnail now, its music once analysed."""
        still = self.primary()
        session = self.session
        if still is None:
            self.vm.thumbnail, self.vm.music, self.vm.selection_label = None, None, "Nothing selected"
            self.vm.music_message = "Select a still on the timeline above." if session.stills else ""
            return
        key = keys[0]
        rate = session.rate
        seconds = float(Fraction(still.frames) / rate)
        more = f"  (+{len(keys) - 1} more)" if len(keys) > 1 else ""
        self.vm.selection_label = (f"{still.name} · {still.track_name} · {seconds:.2f} s "
                                   f"({still.frames} frames @ {float(rate):g}){more}")
        image = still.image

        def thumbnail() -> tuple[Any, tuple[int, int]]:
            loaded = load_image(image, max_long_side=512)
            return to_qimage(loaded.rgb), loaded.original_size

        def show_thumbnail(value: tuple[Any, tuple[int, int]]) -> None:
            self.vm.thumbnail = value[0]
            session.image_sizes[key] = value[1]

        self.tasks.submit("thumbnail", thumbnail, show_thumbnail, self.task_error)
        if key in self.features:
            return
        self.vm.music, self.vm.music_message = None, "Analysing the music under this still…"
        offline = session.offline.get(key, [])
        timeline = session.timeline
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
            self.refresh_motion()

    def _music_error(self, message: str) -> None:
        self.vm.music = None
        self.vm.music_message = f"Music unavailable: {message}"
        if self.vm.selection:
            self.features[self.vm.selection[0]] = StillMusic(None, None, self.vm.music_message)
        self.refresh_motion()

    def forget_music(self) -> None:
        """Drop every still's analysed music (a new timeline, or a new beat grid)."""
        self.features.clear()

    def reanalyse(self, *_: Any) -> None:
        """A beat-grid control changed: analyse the selected still's music again, so waveform, beats and motion
        curve are redrawn together."""
        self.forget_music()
        if self.vm.selection:
            self.on_selection(self.vm.selection)

    def refresh_motion(self, *_: Any) -> None:
        """The motion the current preset will apply to the selected still's music, recomputed live."""
        still = self.primary()
        if still is None:
            self.vm.motion = {}
            return
        music = self.features.get(self.vm.selection[0])
        try:
            schedule = self.parameters.schedule()
        except StillMotionError as exc:
            self.vm.error = str(exc)
            return
        from stillmotion.engine.timeline.markers import still_cues

        schedule.cues = still_cues(still, self.session.rate)
        self.vm.motion = schedule.channels(music.features if music else None, still.frames,
                                           float(self.session.rate))
