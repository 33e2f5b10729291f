"""Read + write of the 192-clip Premiere XML fixture (kdenlive_example_from_fcp.xml, CC0): budget 0.5 s.

The speed half of tests/test_timeline_io.py::test_premiere_xml_read_write_round_trip (timed targets live here).

Run: .venv/bin/python bench/bench_timeline.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from stillmotion.engine.timeline import read_timeline, read_timeline_info, write_timeline

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "timelines" / "fcp7_xml" / \
    "kdenlive_example_from_fcp.xml"
BUDGET_S = 0.5


def main(repeats: int = 5) -> None:
    read_timeline(FIXTURE)  # import the adapters once; a session does this once too
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for n in range(repeats):
            started = time.perf_counter()
            timeline, info = read_timeline_info(FIXTURE)
            write_timeline(timeline, Path(folder) / f"out{n}.xml", rate=info.rate)
            times.append(time.perf_counter() - started)
    best, median = min(times), statistics.median(times)
    print(f"read+write {FIXTURE.name} ({len(timeline.find_clips())} clips in OTIO, {info.rate} fps): "
          f"median {median:.3f} s, best {best:.3f} s over {repeats} runs; ratio to {BUDGET_S} s budget: "
          f"{median / BUDGET_S:.2f}")


if __name__ == "__main__":
    main()
