"""Re-render one generated clip from its stored provenance alone, and say whether it came out identical.

The clip's provenance (in OUT's metadata, or the media folder's provenance file for formats that cannot keep
it) holds the whole request, so the clip can be made again without the original timeline; with the stored seed
the result must be the stored clip bit for bit (a render is a pure function of its request).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from ..errors import BadInputError
from ..jobs.identity import code_digest, compare_clips, frame_digests, output_digest
from ..request import RenderRequest
from .io import read_timeline_info, timeline_format, write_timeline
from .pipeline import (
    PROVENANCE_FILE,
    ClipOutcome,
    RenderFunction,
    inside_folder,
    media_folder_for,
    plain_json,
    provenance,
    render_one,
    write_provenance,
)
from .select import Still


def _generated_clips(timeline: otio.schema.Timeline) -> list[otio.schema.Clip]:
    return [c for c in timeline.find_clips() if "stillmotion" in c.metadata]


def _provenance_for(out: Path, timeline: otio.schema.Timeline, clip_name: str
                    ) -> tuple[otio.schema.Clip | None, dict[str, Any]]:
    """The generated clip named `clip_name` (or whose source still is) and its provenance: from the clip's
    metadata when OUT's format keeps it, else from the media folder's provenance file."""
    candidates = [c for c in _generated_clips(timeline)
                  if clip_name in (c.name, c.metadata["stillmotion"].get("source_clip"))]
    if len(candidates) > 1:
        raise BadInputError(f"--clip {clip_name!r} names {len(candidates)} generated clips; use the full name "
                            f"({', '.join(repr(c.name) for c in candidates)})")
    if candidates:
        return candidates[0], plain_json(candidates[0].metadata["stillmotion"])
    folder = media_folder_for(out)
    path = folder / PROVENANCE_FILE
    if not path.is_file():
        raise BadInputError(f"{out.name} has no StillMotion clip named {clip_name!r} and no {PROVENANCE_FILE} "
                            f"in {folder}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("clips", {})
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path} is unreadable: {exc}") from None
    found = [e for e in entries.values()
             if clip_name in (e.get("source_clip"), f"{e.get('source_clip')} (StillMotion)")]
    if not found:
        names = ", ".join(sorted(repr(e.get("source_clip")) for e in entries.values()))
        raise BadInputError(f"no StillMotion clip named {clip_name!r} (known: {names or 'none'})")
    if len(found) > 1:
        raise BadInputError(f"--clip {clip_name!r} is ambiguous: {len(found)} generated clips came from it")
    clips = [c for c in timeline.find_clips()
             if c.name == f"{found[0].get('source_clip')} (StillMotion)"]
    return (clips[0] if len(clips) == 1 else None), found[0]


def regenerate(out_path: str | Path, clip_name: str, seed: int | None = None,
               render: RenderFunction = render_one) -> dict[str, Any]:
    """Render one generated clip again from its provenance alone (optionally with a new seed), replacing its
    media file atomically and updating its provenance in OUT (and the media folder's provenance file)."""
    out = Path(out_path)
    timeline, info = read_timeline_info(out)
    clip, data = _provenance_for(out, timeline, clip_name)
    request = RenderRequest.from_json(data["request"])
    folder = media_folder_for(out)
    inside_folder(folder, Path(request.output))
    if not Path(request.image).is_file():
        raise BadInputError(f"the still {request.image} of clip {clip_name!r} is missing")
    if seed is not None:
        request.seed = seed
    request.overwrite = True
    existing = Path(request.output)
    stored = (output_digest(existing), frame_digests(existing)) if existing.is_file() else None
    result = render(request)
    comparison = compare_clips(stored, request.output)
    comparison["why"] = _why_different(comparison, data, request)
    still = Still(clip=clip or otio.schema.Clip(), name=data.get("source_clip", clip_name), track_index=0,
                  track_name=data.get("source_track", ""), record_start=data["record_range"]["start_frame"],
                  frames=data["record_range"]["frames"], image=Path(request.image),
                  audio=list(request.audio), audio_ranges=data.get("audio", []))
    rate = Fraction(data["record_range"]["rate"])
    updated = provenance(ClipOutcome(still, request, result), rate)
    if clip is not None and timeline_format(out).suffix in (".otio", ".otioz"):
        clip.metadata["stillmotion"] = updated
        write_timeline(timeline, out, overwrite=True, rate=info.rate)
    write_provenance(folder, {request.output: updated | {"timeline": str(out.resolve())}})
    return {"clip": still.name, "output": request.output, "seed": updated["seed"], "qc": updated["qc"],
            "frames": still.frames, "rate": str(rate), "comparison": comparison}


def _why_different(comparison: dict[str, Any], stored: dict[str, Any], request: RenderRequest) -> str | None:
    """Why a regenerated clip is not the stored one (None when it is)."""
    if not comparison["stored"]:
        return "there was no stored clip to compare with"
    if comparison["identical_frames"]:
        return None
    if request.seed != stored["request"].get("seed"):
        return f"a new seed ({stored['request'].get('seed')} -> {request.seed})"
    if stored.get("code") and stored["code"] != code_digest(request.engine):
        return "the stored clip was made by other StillMotion code"
    if not stored.get("code"):
        return "the stored clip predates code digests (it may have been made by other code)"
    return "same request and code, different frames: a determinism bug, please report it"

