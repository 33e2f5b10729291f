"""Editors' timelines: read them through OpenTimelineIO (with adapter fixes), find the stills and their music,
and write the animated clips back as a new track, frame-exact."""

from __future__ import annotations

from .io import (
    FORMATS,
    ReadInfo,
    read_timeline,
    read_timeline_info,
    timeline_format,
    timeline_rate,
    write_timeline,
)
from .pipeline import (
    DEFAULT_TRACK,
    TimelineSettings,
    TimelineSummary,
    add_generated_tracks,
    media_folder_for,
    process_timeline,
    render_requests,
    safe_file_name,
)
from .regenerate import regenerate
from .select import Selection, Still, find_stills, is_image_reference, media_path

__all__ = [
    "DEFAULT_TRACK", "FORMATS", "ReadInfo", "Selection", "Still", "TimelineSettings", "TimelineSummary",
    "add_generated_tracks", "find_stills", "is_image_reference", "media_folder_for", "media_path",
    "process_timeline", "read_timeline", "read_timeline_info", "regenerate", "render_requests", "safe_file_name",
    "timeline_format", "timeline_rate", "write_timeline",
]
