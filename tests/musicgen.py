"""Test music with exactly known beats: MIDI composed with mido, rendered by fluidsynth with the GM soundfont.

Ground truth comes from the MIDI itself (tempo maps included, so ramps are exact); the only unknown, fluidsynth's
start latency, is measured once by rendering a single click and finding its attack.

Tracks (see TRACKS): slow, mid straight, mid swung, fast, 3/4 waltz, a 90 → 140 BPM ramp and a 100 → 132 BPM
step; each ~20-38 s.
Run `python tests/musicgen.py OUTDIR` to render the set by hand.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RATE = 44100
TPB = 480  # ticks per beat
DRUM_CH, BASS_CH, KEYS_CH = 9, 0, 1
KICK, SNARE, STICK, CLOSED_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 37, 42, 46, 51, 49

# I-V-vi-IV in C (root midi note for the bass, chord tones for the keys).
PROGRESSION = [(36, (60, 64, 67)), (43, (59, 62, 67)), (45, (60, 64, 69)), (41, (60, 65, 69))]


@dataclass
class TrackSpec:
    name: str
    bpm_start: float
    bpm_end: float
    bars: int
    meter: int = 4
    swing: bool = False
    style: str = "rock"          # rock | swing | punk | waltz | ballad
    break_bars: tuple[int, ...] = ()  # bars where the drums drop out (bass and chords continue)
    step_at_bar: int | None = None  # tempo jumps from bpm_start to bpm_end here (instead of a linear ramp)
    seed: int = 0
    extra: dict = field(default_factory=dict)


TRACKS = [
    TrackSpec("slow_ballad", 76, 76, 8, style="ballad", seed=1),
    TrackSpec("mid_straight", 118, 118, 12, style="rock", break_bars=(8,), seed=2),
    TrackSpec("mid_swing", 108, 108, 12, swing=True, style="swing", seed=3),
    TrackSpec("fast_punk", 168, 168, 16, style="punk", seed=4),
    TrackSpec("waltz_3_4", 138, 138, 16, meter=3, style="waltz", seed=5),
    TrackSpec("ramp_90_140", 90, 140, 16, style="rock", seed=6),
    TrackSpec("step_100_132", 100, 132, 16, style="rock", step_at_bar=8, seed=7),
]


def beat_bpms(spec: TrackSpec) -> list[float]:
    """Tempo of each beat (linear in beat index for ramps, a jump for steps)."""
    n = spec.bars * spec.meter
    if spec.step_at_bar is not None:
        return [spec.bpm_start if i < spec.step_at_bar * spec.meter else spec.bpm_end for i in range(n)]
    if n == 1:
        return [spec.bpm_start]
    return [spec.bpm_start + (spec.bpm_end - spec.bpm_start) * i / (n - 1) for i in range(n)]


def _drum_hits(spec: TrackSpec, bar: int, beat: int, rng: random.Random) -> list[tuple[float, int, int]]:
    """(position within the beat 0..1, note, velocity) for one beat."""
    off = 2.0 / 3.0 if spec.swing else 0.5
    hits: list[tuple[float, int, int]] = []
    vel = lambda base: max(1, min(127, base + rng.randint(-8, 8)))  # noqa: E731
    last_bar = bar == spec.bars - 1
    if spec.style == "waltz":
        if beat == 0:
            hits += [(0.0, KICK, vel(110))]
        else:
            hits += [(0.0, STICK, vel(70)), (0.0, CLOSED_HAT, vel(60))]
        return hits
    if spec.style == "swing":
        hits += [(0.0, RIDE, vel(85 if beat % 2 else 70))]
        if beat % 2 == 1:
            hits += [(0.0, CLOSED_HAT, vel(75)), (off, RIDE, vel(60))]
        if beat == 0:
            hits += [(0.0, KICK, vel(90))]
        if beat == 3 and rng.random() < 0.5:
            hits += [(off, SNARE, vel(55))]
        if beat in (1, 3):
            hits += [(0.0, SNARE, vel(70))]
        return hits
    # rock / punk / ballad backbeat
    kick_beats = {0, 2}
    hits += [(0.0, CLOSED_HAT, vel(80 if beat % 2 == 0 else 70))]
    hits += [(off, CLOSED_HAT, vel(55))]
    if spec.style == "ballad" and beat == 2:
        hits += [(off, KICK, vel(70))]  # syncopated kick on "and of 3"
    if beat in kick_beats:
        hits += [(0.0, KICK, vel(110))]
    if beat in (1, 3):
        hits += [(0.0, SNARE, vel(105))]
    if spec.style == "punk" and beat == 3 and bar % 4 == 3:
        hits += [(off, SNARE, vel(90)), (off, KICK, vel(80))]
    if beat == 0 and bar % 4 == 0:
        hits += [(0.0, CRASH, vel(95))]
    if last_bar and beat == spec.meter - 1:
        hits += [(0.25, SNARE, vel(80)), (0.5, SNARE, vel(85)), (0.75, SNARE, vel(90))]
    return hits


def compose(spec: TrackSpec) -> tuple[mido.MidiFile, np.ndarray, np.ndarray]:
    """(MIDI file, beat times, downbeat times) — times in seconds from the MIDI start, exact."""
    rng = random.Random(spec.seed)
    bpms = beat_bpms(spec)
    midi = mido.MidiFile(ticks_per_beat=TPB)
    tempo_track = mido.MidiTrack()
    midi.tracks.append(tempo_track)
    # One beat of silence before the music, at the first tempo.
    lead_in = TPB
    events: list[tuple[int, mido.Message]] = []
    events.append((0, mido.Message("program_change", channel=BASS_CH, program=33)))
    keys_program = {"swing": 4, "waltz": 0, "ballad": 4}.get(spec.style, 29 if spec.style == "punk" else 0)
    events.append((0, mido.Message("program_change", channel=KEYS_CH, program=keys_program)))

    beat_times: list[float] = []
    downbeats: list[float] = []
    seconds = 60.0 / bpms[0]  # lead-in
    tempo_events: list[tuple[int, int]] = [(0, mido.bpm2tempo(bpms[0]))]
    for i, bpm in enumerate(bpms):
        tick = lead_in + i * TPB
        tempo_events.append((tick, mido.bpm2tempo(bpm)))
        # mido tempos are integer microseconds per beat: use the same rounding for the ground truth.
        beat_times.append(seconds)
        if i % spec.meter == 0:
            downbeats.append(seconds)
        seconds += mido.bpm2tempo(bpm) / 1e6
    for bar in range(spec.bars):
        root, chord = PROGRESSION[bar % len(PROGRESSION)]
        drums_on = bar not in spec.break_bars
        for beat in range(spec.meter):
            tick0 = lead_in + (bar * spec.meter + beat) * TPB
            if drums_on:
                for pos, note, velocity in _drum_hits(spec, bar, beat, rng):
                    jitter = rng.randint(-6, 6)  # ~±6 ms of human timing at ~120 BPM
                    t = max(0, tick0 + int(pos * TPB) + jitter)
                    events.append((t, mido.Message("note_on", channel=DRUM_CH, note=note, velocity=velocity)))
                    events.append((t + TPB // 8, mido.Message("note_off", channel=DRUM_CH, note=note)))
            # Bass: root on 1, fifth or root on other beats (eighths in punk).
            if spec.style == "punk":
                for half in (0, 1):
                    t = tick0 + half * TPB // 2
                    events.append((t, mido.Message("note_on", channel=BASS_CH, note=root, velocity=95)))
                    events.append((t + TPB // 2 - 20, mido.Message("note_off", channel=BASS_CH, note=root)))
            elif beat == 0 or spec.style != "waltz":
                note = root if beat % 2 == 0 else root + 7
                length = TPB - 30 if spec.style != "ballad" else (2 * TPB - 30 if beat % 2 == 0 else 0)
                if length > 0:
                    events.append((tick0, mido.Message("note_on", channel=BASS_CH, note=note, velocity=100)))
                    events.append((tick0 + length, mido.Message("note_off", channel=BASS_CH, note=note)))
            # Keys: chord per bar (ballad: sustained; waltz: beats 2 and 3; others: on 1 and 3).
            if spec.style == "waltz":
                play = beat > 0
                length = TPB - 60
            elif spec.style == "ballad":
                play = beat == 0
                length = spec.meter * TPB - 30
            else:
                play = beat % 2 == 0
                length = 2 * TPB - 40
            if play:
                for note in chord:
                    events.append((tick0, mido.Message("note_on", channel=KEYS_CH, note=note, velocity=72)))
                    events.append((tick0 + length, mido.Message("note_off", channel=KEYS_CH, note=note)))
    end_tick = lead_in + len(bpms) * TPB + TPB  # one beat of tail
    _write_track(tempo_track, [(t, mido.MetaMessage("set_tempo", tempo=v)) for t, v in tempo_events], end_tick)
    music = mido.MidiTrack()
    midi.tracks.append(music)
    _write_track(music, events, end_tick)
    return midi, np.asarray(beat_times), np.asarray(downbeats)


def _write_track(track: mido.MidiTrack, events: list[tuple[int, mido.Message]], end_tick: int) -> None:
    # note_off before note_on at the same tick so retriggered notes are not cut.
    order = sorted(events, key=lambda e: (e[0], 0 if e[1].type == "note_off" else 1))
    now = 0
    for tick, msg in order:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))


def render_midi(midi_path: Path, wav_path: Path, rate: int = RATE) -> None:
    """Render with fluidsynth (no audio device: -ni -F), GM soundfont."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise RuntimeError("fluidsynth or the GM soundfont is missing")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-F", str(wav_path), "-r", str(rate),
                    str(SOUNDFONT), str(midi_path)], check=True, capture_output=True, timeout=120)


def measure_latency(workdir: Path) -> float:
    """Seconds between a note's MIDI time and its attack in fluidsynth's output (a rim click at 1.0 s)."""
    midi = mido.MidiFile(ticks_per_beat=TPB)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 120 BPM: 1 s = 2 beats
    track.append(mido.Message("note_on", channel=DRUM_CH, note=STICK, velocity=120, time=2 * TPB))
    track.append(mido.Message("note_off", channel=DRUM_CH, note=STICK, time=TPB // 4))
    track.append(mido.MetaMessage("end_of_track", time=TPB))
    mid, wav = workdir / "click.mid", workdir / "click.wav"
    midi.save(mid)
    render_midi(mid, wav)
    data, rate = sf.read(wav, always_2d=True)
    mono = np.abs(data).max(axis=1)
    first = int(np.flatnonzero(mono > 0.05 * mono.max())[0])
    return first / rate - 1.0


def render_set(outdir: Path, tracks: list[TrackSpec] | None = None) -> dict[str, dict]:
    """Render every track into `outdir`; returns {name: {"wav", "beats", "downbeats", "meter", ...}}.

    Ground-truth times include the measured fluidsynth latency.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    latency = measure_latency(outdir)
    result: dict[str, dict] = {}
    for spec in tracks or TRACKS:
        midi, beats, downbeats = compose(spec)
        mid, wav = outdir / f"{spec.name}.mid", outdir / f"{spec.name}.wav"
        midi.save(mid)
        render_midi(mid, wav)
        result[spec.name] = {
            "wav": str(wav),
            "beats": (beats + latency).tolist(),
            "downbeats": (downbeats + latency).tolist(),
            "meter": spec.meter,
            "bpm": [spec.bpm_start, spec.bpm_end],
            "latency": latency,
        }
    (outdir / "truth.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "musicgen_out")
    info = render_set(out)
    for name, item in info.items():
        print(f"{name}: {item['wav']} ({len(item['beats'])} beats, latency {item['latency'] * 1000:.1f} ms)")
