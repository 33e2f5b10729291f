"""Timeline in, animated stills out, timeline with a new track back: the `stillmotion timeline` pipeline.

Read IN, find the stills and their music, build one `RenderRequest` per still (exact record duration at the
timeline's rate), render them through one seam (`render_requests`), and write OUT with a new video track above
the others holding each generated clip at exactly its still's record range, with its provenance. IN is never
written unless asked (then a backup is kept); every write is atomic.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from ..atomic import atomic_path, check_output, write_text
from ..errors import BadInputError, OutputError, StillMotionError
from ..jobs.batch import EXECUTORS, run_batch
from ..jobs.identity import code_digest
from ..request import RenderRequest
from .edit import DEFAULT_TRACK, generated_clip
from .io import ReadInfo, read_timeline_info, timeline_format, write_timeline
from .markers import annotate_request, check_grid_fits
from .native import NewClip, NewTrack, has_native_writer, write_native
from .select import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Relinker, Still, find_stills
from .timebase import frames_range

#: Track name used when none is given.
#: Name of the provenance file kept in the media folder (formats that drop clip metadata still regenerate).
PROVENANCE_FILE = "stillmotion.json"
#: Outputs that cannot take a new track faithfully: OUT is written as .otio beside the name asked for.
LOSSY_OUTPUTS = {
    ".edl": "a CMX 3600 EDL holds one video track, so it cannot carry the new track next to the editor's",
    ".aaf": "OTIO's AAF writer regenerates the composition and drops what it does not model",
}
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)

RenderFunction = Callable[[RenderRequest], Any]


@dataclass
class TimelineSettings:
    """How to animate: engine settings shared by every clip, and what to select."""

    engine: str = "procedural"
    model: str | None = None
    preset: str = "pulse"
    seed: int = 0
    width: int | None = None
    height: int | None = None
    clips: list[str] | None = None
    from_video: bool = False
    audio_track: int | None = None
    track_name: str = DEFAULT_TRACK
    executor: str = "local"
    #: Clips rendered at once (None: one per core for the procedural engine, one for diffusion engines).
    workers: int | None = None
    rate: str | None = None
    ray_address: str | None = None
    #: Ray nodes see the same paths as this machine (else media travel through Ray as bytes).
    shared_storage: bool = False
    #: Keep finished clips of the same work made by other code (another StillMotion version) instead of re-rendering.
    reuse_stale: bool = False
    #: Write OUT with the clips that rendered even when some failed (default: OUT only when all are done).
    partial: bool = False
    #: Read the timeline's markers (stack, audio tracks, music clips) as each still's beat grid.
    beats_from_markers: bool = False
    #: Generated clips' size without --width/--height: "sequence" (the timeline's frame size where the file
    #: says) or "image" (the still's own).
    size: str = "sequence"
    #: Folders to search, by file name, for media whose recorded path does not exist here (--relink).
    relink: list[str] = field(default_factory=list)
    #: Other RenderRequest fields for every clip (intensity, fit, anchor, prompts, qc, options), as the shared
    #: render options give them.
    render: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClipOutcome:
    """One still: its request, and the result or the one-line error."""

    still: Still
    request: RenderRequest
    result: Any = None
    error: str | None = None


@dataclass
class TimelineSummary:
    """What a run did, for the CLI's text and --json output."""

    input: str
    output: str
    media_folder: str
    rate: str
    track: str
    rendered: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backup: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------------------------
# names and paths
# ---------------------------------------------------------------------------------------------------------------
def media_folder_for(out: Path) -> Path:
    """Rendered media go beside OUT in a folder named after it: edit.otio -> edit_stillmotion/."""
    return out.with_name(f"{out.stem}_stillmotion")


def safe_file_name(name: str, index: int, suffix: str = ".mp4") -> str:
    """A file name from a timeline clip name that cannot leave its folder ('../x', '/etc/y', 'a\\b', NUL...),
    with one extension: a clip named after its media ('shot.png') gives '001_shot.mp4', not '001_shot.png.mp4'."""
    text = unicodedata.normalize("NFC", name or "")
    stem, dot, ext = text.rpartition(".")
    if dot and stem and f".{ext.lower()}" in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        text = stem
    text = _UNSAFE.sub("_", text).strip("._-")[:80] or "clip"
    return f"{index:03d}_{text}{suffix}"


def inside_folder(folder: Path, path: Path) -> Path:
    """`path`, checked to sit directly in the media folder (a clip name must never write elsewhere)."""
    resolved = path.resolve()
    if resolved.parent != folder.resolve():
        raise OutputError(f"refusing to write {path}: outside {folder}")
    return path


# ---------------------------------------------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------------------------------------------
def extract_video_frame(video: Path, seconds: Fraction, dest: Path, overwrite: bool = True) -> Path:
    """Save the frame of `video` shown at `seconds` (its in-point) as a PNG still, atomically."""
    import av
    from PIL import Image

    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as exc:
        raise BadInputError(f"{video.name} is not a readable video: {exc}") from None
    with container:
        if not container.streams.video:
            raise BadInputError(f"{video.name} has no video stream")
        stream = container.streams.video[0]
        target = float(seconds)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if target > 0:
            container.seek(int((target + start) / stream.time_base), stream=stream, backward=True)
        chosen = None
        try:
            for frame in container.decode(stream):
                if frame.time is None or frame.time - start <= target + 1e-6 or chosen is None:
                    chosen = frame
                if frame.time is not None and frame.time - start >= target - 1e-6:
                    break
        except av.error.FFmpegError as exc:
            raise BadInputError(f"{video.name} is truncated or corrupt: {exc}") from None
        if chosen is None:
            raise BadInputError(f"{video.name} has no frame at {target:.3f} s")
        image = Image.fromarray(chosen.to_ndarray(format="rgb24"))
    with atomic_path(dest, overwrite) as tmp:
        image.save(tmp, format="PNG")
    return dest


def build_request(still: Still, index: int, rate: Fraction, folder: Path, settings: TimelineSettings,
                  overwrite: bool = False, frame_size: tuple[int, int] | None = None) -> RenderRequest:
    """One still's request: exactly its record duration at the timeline's rate, its music, the settings.

    With neither --width nor --height, the clip takes the sequence's `frame_size` (the fit policy places the
    image in it), unless `settings.size` is "image"."""
    from ..images import default_size, load_image

    output = inside_folder(folder, folder / safe_file_name(still.name, index))
    image = still.image
    if image is None and still.video is not None:
        image = inside_folder(folder, folder / safe_file_name(still.name, index, ".png"))
        extract_video_frame(still.video, still.video_time or Fraction(0), image)
        still.image = image
    assert image is not None
    loaded = load_image(image)
    if frame_size and settings.size == "sequence" and settings.width is None and settings.height is None:
        width, height = default_size(frame_size, *frame_size)
    else:
        width, height = default_size((loaded.width, loaded.height), settings.width, settings.height)
    extra = dict(settings.render)
    options = dict(extra.pop("options", {}))
    options["timeline"] = {"clip": still.name, "track": still.track_name, "record_start_frame": still.record_start}
    return RenderRequest(
        image=str(image), output=str(output), fps=rate, frames=still.frames, width=width, height=height,
        audio=list(still.audio), engine=settings.engine, model=settings.model, preset=settings.preset,
        seed=settings.seed, overwrite=overwrite, options=options, **extra,
    )


# ---------------------------------------------------------------------------------------------------------------
# rendering (the one seam an executor plugs into)
# ---------------------------------------------------------------------------------------------------------------
def render_one(request: RenderRequest) -> Any:
    """Render one request with the engine's `render_clip` (imported late: it pulls in the backends)."""
    from ..render import render_clip

    return render_clip(request)


def render_requests(outcomes: list[ClipOutcome], executor: str = "local", workers: int | None = None,
                    render: RenderFunction | None = None,
                    on_done: Callable[[ClipOutcome], None] | None = None, *, ray_address: str | None = None,
                    timeline: str | None = None, shared_storage: bool = False,
                    reuse_stale: bool = False) -> list[ClipOutcome]:
    """Render every outcome's request; a clip's failure is recorded on it and the others go on.

    By default the batch goes through the job store and an executor (`run_batch`): finished clips are reused,
    a crashed batch resumes where it stopped. A custom `render` (tests, `regenerate`) runs in this process.
    """
    if executor not in EXECUTORS:
        raise BadInputError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if render is None:
        items = run_batch([o.request for o in outcomes], executor, workers=workers, ray_address=ray_address,
                          timeline=timeline, shared_storage=shared_storage, reuse_stale=reuse_stale)
        for outcome, item in zip(outcomes, items, strict=True):
            if item.status == "done":
                outcome.result = item.render_result()
            else:
                outcome.error = item.error or item.status
            if on_done is not None:
                on_done(outcome)
        return outcomes

    def run(outcome: ClipOutcome) -> ClipOutcome:
        try:
            outcome.result = render(outcome.request)
        except StillMotionError as exc:
            outcome.error = str(exc)
        if on_done is not None:
            on_done(outcome)
        return outcome

    if not workers or workers <= 1 or len(outcomes) <= 1:
        return [run(o) for o in outcomes]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, outcomes))


# ---------------------------------------------------------------------------------------------------------------
# writing the new track
# ---------------------------------------------------------------------------------------------------------------
def plain_json(value: Any) -> Any:
    """OTIO metadata (AnyDictionary / AnyVector) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain_json(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    """Plain JSON types only (OTIO metadata rejects Fractions and numpy scalars)."""
    return json.loads(json.dumps(plain_json(value), default=str))


def provenance(outcome: ClipOutcome, rate: Fraction) -> dict[str, Any]:
    """What made a generated clip, enough to render it again without the original timeline."""
    result, request, still = outcome.result, outcome.request, outcome.still
    return _jsonable({
        "engine": request.engine, "model": request.model, "preset": getattr(result, "preset", request.preset),
        "seed": getattr(result, "seed", request.seed), "schedule": getattr(result, "schedule", None),
        "source_image": request.image, "source_clip": still.name, "source_track": still.track_name,
        "record_range": {"start_frame": still.record_start, "frames": still.frames, "rate": str(rate)},
        "audio": still.audio_ranges, "qc": getattr(result, "qc", None), "request": request.to_json(),
        "beat_grid": request.options.get("beat_grid"),
        "output": request.output, "code": code_digest(request.engine),
    })


def media_url(media: Path, out: Path, relative: bool) -> str:
    """Relative to OUT's folder where the format resolves that, else an absolute file:// URL."""
    if relative:
        return media.resolve().relative_to(out.resolve().parent).as_posix()
    return media.resolve().as_uri()


def track_lanes(outcomes: list[ClipOutcome]) -> list[list[ClipOutcome]]:
    """The outcomes in record order, split into as few lanes (tracks) as keep them from overlapping."""
    lanes: list[list[ClipOutcome]] = []
    for outcome in sorted(outcomes, key=lambda o: (o.still.record_start, o.still.track_index)):
        for lane in lanes:
            if lane[-1].still.record_end <= outcome.still.record_start:
                lane.append(outcome)
                break
        else:
            lanes.append([outcome])
    return lanes


def native_tracks(outcomes: list[ClipOutcome], track_name: str, rate: Fraction) -> list[NewTrack]:
    """The new tracks as the add-only native writers take them (same lanes as `add_generated_tracks`)."""
    tracks = []
    for number, lane in enumerate(track_lanes(outcomes)):
        track = NewTrack(track_name if number == 0 else f"{track_name} {number + 1}")
        for outcome in lane:
            still = outcome.still
            track.clips.append(NewClip.from_media(f"{still.name} (StillMotion)", Path(outcome.request.output),
                                                  still.record_start, still.frames, provenance(outcome, rate)))
        tracks.append(track)
    return tracks


def add_generated_tracks(timeline: otio.schema.Timeline, outcomes: list[ClipOutcome], rate: Fraction, out: Path,
                         track_name: str, relative_media: bool) -> list[otio.schema.Track]:
    """New video track(s) above the others, each generated clip at exactly its still's record range.

    Stills overlapping in time (on different tracks) go to a second track, and so on, so nothing overlaps.
    """
    tracks = []
    for number, lane in enumerate(track_lanes(outcomes)):
        name = track_name if number == 0 else f"{track_name} {number + 1}"
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video)
        position = 0
        for outcome in lane:
            still = outcome.still
            if still.record_start > position:
                track.append(otio.schema.Gap(source_range=frames_range(0, still.record_start - position, rate)))
            url = media_url(Path(outcome.request.output), out, relative_media)
            track.append(generated_clip(f"{still.name} (StillMotion)", url, still.frames, rate,
                                        provenance(outcome, rate)))
            position = still.record_end
        timeline.tracks.append(track)
        tracks.append(track)
    return tracks


def write_provenance(folder: Path, entries: dict[str, Any]) -> None:
    """Merge `entries` into the media folder's provenance file (for formats whose clips cannot carry metadata)."""
    path = folder / PROVENANCE_FILE
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            existing = {}
    existing.setdefault("clips", {}).update(entries)
    write_text(path, json.dumps(existing, indent=2, sort_keys=True), overwrite=True)


# ---------------------------------------------------------------------------------------------------------------
# the command's work
# ---------------------------------------------------------------------------------------------------------------
def still_label(still: Still, rate: Fraction) -> str:
    """A still as the editor finds it: its name, or (unnamed) its track and record timecode."""
    if still.clip is not None and getattr(still.clip, "name", ""):
        return repr(still.name)
    timecode = otio.opentime.to_timecode(otio.opentime.RationalTime(still.record_start, float(rate)), float(rate))
    return f"the unnamed still on V{still.track_index + 1} at {timecode}"


def _report(line: str) -> None:
    print(f"stillmotion: {line}", file=sys.stderr)


def process_timeline(in_path: str | Path, out_path: str | Path | None, settings: TimelineSettings,
                     overwrite: bool = False, in_place: bool = False, render: RenderFunction | None = None,
                     report: Callable[[str], None] = _report) -> TimelineSummary:
    """Do everything `stillmotion timeline` does; problems are reported per clip, fatal ones raise."""
    source = Path(in_path)
    if in_place:
        out = source
        overwrite = True
    elif out_path is None:
        raise BadInputError("give -o OUT (or --in-place to write IN itself, keeping a backup)")
    else:
        out = Path(out_path)
        if out.resolve() == source.resolve():
            raise BadInputError("OUT is IN: pass --in-place to replace the input (a backup is kept)")
    out_fmt = timeline_format(out)
    redirected = None
    if out_fmt.suffix in LOSSY_OUTPUTS:
        redirected = f"{out.name}: {LOSSY_OUTPUTS[out_fmt.suffix]}; wrote {out.with_suffix('.otio').name} instead"
        out = out.with_suffix(".otio")
        out_fmt = timeline_format(out)
        if out.resolve() == source.resolve():
            raise BadInputError(f"{redirected}, but that is IN: give -o OUT.otio")
    if out_fmt.suffix == ".fcpxmld":  # a bundle is a folder: only its existence matters here
        if out.exists() and not overwrite:
            raise OutputError(f"{out} exists (pass --overwrite to replace it)")
        check_output(out.parent / f"{out.stem}.fcpxml.check", overwrite=True)  # the folder is writable
    else:
        check_output(out, overwrite)
    if not out_fmt.writable:
        raise OutputError(f"{out.name}: {out_fmt.label} cannot be written")
    if settings.executor not in EXECUTORS:
        raise BadInputError(f"executor {settings.executor!r} is not one of {', '.join(EXECUTORS)}")
    if settings.workers is not None and settings.workers < 1:
        raise BadInputError(f"workers must be ≥ 1, got {settings.workers}")
    if settings.ray_address and settings.executor != "ray":
        raise BadInputError("--ray-address needs --executor ray")
    if not settings.track_name.strip():
        raise BadInputError("--track needs a non-empty name")

    timeline, info = read_timeline_info(source, settings.rate)
    if redirected:
        info.notes.append(redirected)
    for note in info.notes:
        report(note)
    relinker = Relinker(settings.relink)
    selection = find_stills(timeline, info.rate, source.resolve().parent, settings.clips, settings.from_video,
                            settings.audio_track, info.media_root, relinker)
    for written, found in relinker.relinked.items():
        info.notes.append(f"relinked {written} -> {found} (OUT keeps the editor's path for that clip)")
        report(info.notes[-1])
    for problem in selection.problems:
        report(problem)
    if not selection.stills:
        raise BadInputError(f"{source.name}: nothing to animate "
                            f"({len(selection.problems)} problem(s) reported above)" if selection.problems
                            else f"{source.name}: no stills (image clips) on the timeline")
    silent = [s for s in selection.stills if not s.audio]
    if silent:
        shown = ", ".join(still_label(s, info.rate) for s in silent[:8]) + (" …" if len(silent) > 8 else "")
        info.notes.append(f"{len(silent)} still(s) have no music under them and get ambient motion only: {shown}")
        report(info.notes[-1])
    existing = {t.name for t in timeline.tracks}
    if settings.track_name in existing:
        raise BadInputError(f"the timeline already has a track named {settings.track_name!r} (use --track)")

    check_grid_fits(settings.render.get("options", {}), selection.stills)
    folder = media_folder_for(out.resolve())
    folder_created = not folder.exists()
    folder.mkdir(exist_ok=True)
    outcomes: list[ClipOutcome] = []
    problems = list(selection.problems)
    for index, still in enumerate(selection.stills, start=1):
        try:
            request = build_request(still, index, info.rate, folder, settings, overwrite=overwrite,
                                    frame_size=info.frame_size)
            note = annotate_request(request, timeline, still, info.rate, settings.beats_from_markers)
            if note:
                report(note)
        except StillMotionError as exc:
            problems.append(f"still {still.name!r}: {exc}; skipped")
            report(problems[-1])
            continue
        outcomes.append(ClipOutcome(still, request))
    render_requests(outcomes, settings.executor, settings.workers, render, ray_address=settings.ray_address,
                    timeline=str(out.resolve()), shared_storage=settings.shared_storage,
                    reuse_stale=settings.reuse_stale)
    done = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    for outcome in failed:
        problems.append(f"still {outcome.still.name!r}: {outcome.error}"
                        + ("; skipped" if settings.partial else ""))
        report(problems[-1])
    if not done:
        if folder_created and not any(folder.iterdir()):
            folder.rmdir()
        raise BadInputError(f"{source.name}: no clip could be rendered; {out.name} not written")
    if failed and not settings.partial:
        raise BadInputError(f"{len(failed)} of {len(outcomes)} clip(s) failed; {out.name} not written "
                            "(the finished clips are kept: run the same command again to render only the rest, "
                            "or pass --partial to write OUT with the clips that are done)")

    native = has_native_writer(source, out)
    if not native:
        add_generated_tracks(timeline, done, info.rate, out, settings.track_name, out_fmt.relative_media)
    backup = None
    if in_place:
        backup = source.with_name(source.name + ".bak")
        counter = 1
        while backup.exists():
            backup = source.with_name(f"{source.name}.bak{counter}")
            counter += 1
        if source.is_dir():  # an .fcpxmld bundle
            shutil.copytree(source, backup)
        else:
            shutil.copy2(source, backup)
    if native:
        # IN is read before OUT is put in place, so --in-place (OUT is IN; IN.bak already copied) works too
        written = write_native(source, out, native_tracks(done, settings.track_name, info.rate), info.rate,
                               overwrite=overwrite)
        for total in written.changed_totals:
            info.notes.append(f"{out.name}: added to the {out_fmt.label} document, nothing else changed except "
                              f"the container total {total}")
    else:
        write_timeline(timeline, out, overwrite=overwrite, rate=info.rate)
    write_provenance(folder, {o.request.output: provenance(o, info.rate) | {"timeline": str(out.resolve())}
                               for o in done})
    return TimelineSummary(
        input=str(source), output=str(out), media_folder=str(folder), rate=str(info.rate),
        track=settings.track_name, problems=problems, notes=list(info.notes), backup=str(backup) if backup else None,
        rendered=[{"clip": o.still.name, "output": o.request.output, "record_start_frame": o.still.record_start,
                   "frames": o.still.frames, "seed": getattr(o.result, "seed", o.request.seed),
                   "qc": (o.result.qc or {}).get("verdict") if getattr(o.result, "qc", None) else None}
                  for o in done],
    )


__all__ = [
    "DEFAULT_TRACK", "EXECUTORS", "ClipOutcome", "ReadInfo", "TimelineSettings", "TimelineSummary",
    "add_generated_tracks", "build_request", "extract_video_frame", "media_folder_for", "process_timeline",
    "render_one", "render_requests", "safe_file_name",
]
