"""Per fixture: element counts of IN and OUT, changed/removed elements for the add-only native writer (OUT in
IN's format) next to the OTIO writer it replaces, and the melt comparison of the Kdenlive effect project.

    .venv/bin/python bench/native_writers_report.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_timeline_native as t  # noqa: E402  (the test's own fixture helpers)
from stillmotion.engine.timeline import read_timeline_info, write_timeline  # noqa: E402
from stillmotion.engine.timeline.pipeline import TimelineSettings, process_timeline, render_one  # noqa: E402
from xml_structure import structural_diff  # noqa: E402


def main() -> None:
    print("| fixture | IN elements | OUT elements | added | changed | removed | OTIO writer: changed | removed |")
    print("|---|---|---|---|---|---|---|---|")
    for path in t._fixtures():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            media = folder / "media"
            media.mkdir()
            source = folder / path.name
            source.write_bytes(path.read_bytes())
            names, _rate = t._pick(source, media)
            if not names:
                print(f"| {path.name} | – | – | – | – | – | – | – | (no clip with stand-in-able media)")
                continue
            out = folder / f"out{path.suffix}"
            settings = TimelineSettings(clips=None if "" in names else names, from_video=True,
                                        relink=[str(media)], width=32, height=18, render={"qc": False})
            process_timeline(source, out, settings, report=lambda _line: None, render=render_one)
            diff = structural_diff(source.read_bytes(), out.read_bytes())
            timeline, info = read_timeline_info(source)
            old = folder / f"otio{path.suffix}"
            try:
                write_timeline(timeline, old, rate=info.rate)
                lossy = structural_diff(source.read_bytes(), old.read_bytes())
                old_cells = f"{len(lossy.changed)} | {len(lossy.removed)}"
            except Exception as exc:  # noqa: BLE001 - report the old writer's failure as it is
                old_cells = f"fails: {type(exc).__name__} | –"
            print(f"| {path.name} | {diff.in_elements} | {diff.out_elements} | {diff.out_elements - diff.in_elements}"
                  f" | {len(diff.changed)} | {len(diff.removed)} | {old_cells} |")
            for change in diff.changed:
                print(f"|  changed: {change} |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = t._kdenlive_with_effect(folder)
        out = folder / "out.kdenlive"
        process_timeline(source, out, TimelineSettings(), report=lambda _line: None, render=render_one)
        timeline, info = read_timeline_info(source)
        write_timeline(timeline, folder / "otio.kdenlive", rate=info.rate)
        frames = {name: t._melt(folder / f"{name}.kdenlive", 40) for name in ("in", "out", "plain", "otio")}
        outside = [k for k in range(40) if not 10 <= k < 22]

        def worst(a: str, b: str, ks: list[int]) -> float:
            return max(float(np.abs(frames[a][k] - frames[b][k]).max()) for k in ks)

        def mean(a: str, b: str, ks: list[int]) -> float:
            return float(np.mean([np.abs(frames[a][k] - frames[b][k]).mean() for k in ks]))

        print(f"\nmelt, 40 frames at 160x90, generated range 10..21: outside it, max |IN-OUT| = "
              f"{worst('in', 'out', outside):.0f}; mean |IN-plain| (the effect) = {mean('in', 'plain', outside):.1f}; "
              f"mean |IN-OTIO writer| = {mean('in', 'otio', outside):.1f}; inside, mean |IN-OUT| = "
              f"{mean('in', 'out', list(range(10, 22))):.1f}")


if __name__ == "__main__":
    main()
