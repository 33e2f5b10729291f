"""`stillmotion qc` end to end: real H.264 clips, a real still on disk, real audio analysed for beats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import qc_fixtures as fx
from stillmotion.engine.cli import main


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qc_cli")
    out = {name: fx.write_clip(folder / f"{name}.mp4", name) for name in ("local", "pan", "beat_on", "beat_off")}
    still = folder / "still.png"
    cv2.imwrite(str(still), cv2.cvtColor(fx.reference(), cv2.COLOR_RGB2BGR))
    out["still"] = still
    out["junk"] = folder / "junk.mp4"
    out["junk"].write_bytes(b"not a video at all\n" * 100)
    # music whose beats fall on the clip's beat times when played from 1.0 s into the file
    out["music"] = fx.click_track(folder / "clicks.wav", fx.BEATS + 1.0, seconds=4.0)
    return out


def test_json_and_plot(tmp_path, clips, capsys):
    report_path, plot_path = tmp_path / "qc.json", tmp_path / "qc.png"
    code = main(["qc", str(clips["pan"]), "--image", str(clips["still"]), "--json", str(report_path),
                 "--plot", str(plot_path)])
    assert code == 0
    assert capsys.readouterr().out.startswith("fail: ken_burns:")
    data = json.loads(report_path.read_text())
    for key in ("frozen", "dynamic_degree", "ken_burns", "global_motion_share", "identity_drift", "av_align",
                "beat_hit_rate", "verdict", "reasons"):
        assert key in data
    assert data["verdict"] == "fail" and data["ken_burns"] is True and data["frozen"] is False
    assert data["identity_drift_to_reference"] < 0.3 and data["av_align"] is None
    assert len(data["curves"]["motion_energy"]) == 60
    image = cv2.imread(str(plot_path))
    assert image is not None and image.shape[:2] == (600, 1000)
    assert not list(tmp_path.glob(".*part*"))  # no temp files left behind


def test_strict_exit_code_gates_and_thresholds(tmp_path, clips):
    out = tmp_path / "qc.json"
    assert main(["qc", str(clips["pan"]), "--json", str(out), "--strict"]) == 3
    assert main(["qc", str(clips["pan"]), "--json", str(out), "--strict", "--overwrite",
                 "--gates", "frozen,drift"]) == 0
    assert json.loads(out.read_text())["ken_burns"] is True  # still measured, just not a gate
    assert main(["qc", str(clips["pan"]), "--json", str(out), "--strict", "--overwrite",
                 "--threshold", "max_global_motion_share=1.0"]) == 0
    thresholds = tmp_path / "t.json"
    thresholds.write_text(json.dumps({"min_dynamic_degree": 1.01}))
    assert main(["qc", str(clips["local"]), "--json", str(out), "--strict", "--overwrite",
                 "--thresholds", str(thresholds)]) == 3
    assert json.loads(out.read_text())["reasons"][0].startswith("frozen:")


@pytest.mark.parametrize("args, message", [
    (["missing.mp4"], "does not exist"),
    (["{local}", "--threshold", "max_drift=0.2"], "unknown QC threshold 'max_drift'"),
    (["{local}", "--threshold", "max_flicker"], "NAME=VALUE"),
    (["{local}", "--gates", "frozen,blur"], "unknown QC gate 'blur'"),
    (["{local}", "--image", "nope.png"], "does not exist"),
    (["{local}", "--audio", "nope.wav"], "does not exist"),
    (["{local}", "--audio-start", "-1", "--audio", "{music}"], "--audio-start must be"),
    (["{junk}"], "not a readable video"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, clips, capsys, args, message):
    args = [a.format(**{k: str(v) for k, v in clips.items()}) for a in args]
    out = tmp_path / "qc.json"
    assert main(["qc", *args, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path, clips, capsys):
    out = tmp_path / "qc.json"
    out.write_text("keep")
    assert main(["qc", str(clips["local"]), "--json", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "keep"


def test_audio_beats_on_and_off(tmp_path, clips):
    results = {}
    for name in ("beat_on", "beat_off"):
        out = tmp_path / f"{name}.json"
        assert main(["qc", str(clips[name]), "--audio", str(clips["music"]), "--audio-start", "1.0",
                     "--json", str(out)]) == 0
        results[name] = json.loads(out.read_text())
    beats = np.array(results["beat_on"]["curves"]["beat_times"])
    assert beats.size >= 4 and np.all(np.abs(beats[:, None] - fx.BEATS[None]).min(axis=1) < 1 / 24)
    assert results["beat_on"]["beat_hit_rate"] >= 0.75 and results["beat_on"]["verdict"] == "pass"
    assert results["beat_on"]["av_align"] > 0.6
    assert results["beat_off"]["beat_hit_rate"] <= 0.25 and results["beat_off"]["verdict"] == "fail"
    assert results["beat_off"]["reasons"][0].startswith("sync:")


def test_help_lists_gates_and_thresholds():
    result = subprocess.run([sys.executable, "-m", "stillmotion.engine", "qc", "--help"], capture_output=True,
                            text=True, check=True)
    for word in ("ken_burns", "flicker", "--audio-start", "--plot", "max_identity_drift", "--strict"):
        assert word in result.stdout
