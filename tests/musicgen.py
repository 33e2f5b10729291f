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



# ---------------------------------------------------------------------------------------------------------------
# Seeded song generator: an evaluation corpus that cannot be overfit (bench/bench_beats.py draws fresh seeds).
#
# `song_spec(seed)` draws a style, tempo (map), meter, form, instruments and mix; `compose_song` writes the MIDI
# and returns the exact beat / downbeat times from its tempo map. Conventions for "the beat":
# - simple meters (4/4, 3/4): the quarter note; the notated tempo is quarter notes per minute.
# - compound meters (6/8, 12/8): the dotted quarter (three eighths), 2 or 4 beats per bar; the notated tempo is
#   dotted quarters per minute (a 6/8 jig at ♩.=100 has eighths at 300 per minute and "tempo 100").
# - half-time trap: the quarter note at the producer's tempo (130-160), hats in eighths with 16th/32nd rolls,
#   kick and snare in half time (snare on 3) — the level most annotators tap, and the level the hats carry.
# - drum'n'bass / breakbeat: the quarter note at the notated tempo (160-180 / 120-140).
# In MIDI one "beat" (TPB ticks) is always the counted beat, so the tempo map is written in beats per minute.
# ---------------------------------------------------------------------------------------------------------------

#: Bump when a seed's song changes (the on-disk render cache is keyed by seed + version).
GEN_VERSION = 2  # 2: the 6/8 bass figure spans one bar, not two
GEN_RATE = 22050
STYLES = ("four_floor", "breakbeat", "dnb", "trap", "swing", "shuffle", "ballad", "piano_only", "strings_only",
          "reggae", "bossa", "waltz", "six_eight", "twelve_eight", "rock", "funk")
#: (meter in beats per bar, subdivisions per beat, tempo range) per style.
STYLE_FORM = {
    "four_floor": (4, 2, (115, 135)), "breakbeat": (4, 4, (120, 140)), "dnb": (4, 4, (160, 180)),
    "trap": (4, 4, (130, 160)), "swing": (4, 3, (100, 190)), "shuffle": (4, 3, (80, 130)),
    "ballad": (4, 2, (60, 85)), "piano_only": (4, 2, (60, 140)), "strings_only": (4, 2, (60, 120)),
    "reggae": (4, 2, (70, 100)), "bossa": (4, 2, (120, 150)), "waltz": (3, 2, (90, 180)),
    "six_eight": (2, 3, (60, 110)), "twelve_eight": (4, 3, (60, 90)), "rock": (4, 2, (90, 170)),
    "funk": (4, 4, (90, 120)),
}
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39, 43)
KEYS_PROGRAMS = (0, 1, 2, 4, 5, 6, 7, 16, 17, 18, 19, 24, 25, 26, 27, 29, 46, 48, 49, 50, 52, 61, 88, 89, 90, 91)
PIANOS = (0, 1, 2, 4, 5, 6, 7, 46)
STRINGS = (40, 41, 42, 44, 45, 48, 49, 50, 51)
PROGRESSIONS = [
    [(36, (60, 64, 67)), (43, (59, 62, 67)), (45, (60, 64, 69)), (41, (60, 65, 69))],   # I V vi IV
    [(45, (57, 60, 64)), (41, (57, 60, 65)), (36, (55, 60, 64)), (43, (55, 59, 62))],   # vi IV I V
    [(38, (62, 65, 69)), (43, (59, 62, 67)), (36, (60, 64, 67)), (36, (60, 64, 67))],   # ii V I I
    [(40, (59, 64, 67)), (45, (57, 60, 64)), (38, (57, 62, 65)), (43, (59, 62, 67))],   # iii vi ii V
]
HAND_CLAP, PEDAL_HAT, TAMB, COWBELL, SHAKER, RIM, LOW_TOM, MID_TOM, HI_TOM = 39, 44, 54, 56, 70, 37, 45, 47, 50


@dataclass
class SongSpec:
    seed: int
    style: str
    meter: int
    subdiv: int
    bpm_start: float
    bpm_end: float
    bars: int
    tempo_change: str = "none"        # none | ramp | step
    step_at_bar: int = 0
    intro_bars: int = 0               # drumless bars at the start
    break_bars: tuple[int, ...] = ()  # bars without drums
    fill_every: int = 0               # a drum fill on the last beat of every n-th bar (0: none)
    swing: float = 0.5                # position of the off-beat eighth (0.5 straight, 0.62-0.67 swung)
    programs: dict = field(default_factory=dict)
    levels: dict = field(default_factory=dict)
    progression: int = 0
    humanise_ms: float = 6.0

    @property
    def notated_bpm(self) -> float:
        return float(np.median(song_beat_bpms(self)))


def song_spec(seed: int) -> SongSpec:
    """The song one seed stands for (style, tempo map, form, instruments, mix)."""
    rng = random.Random(seed * 7919 + GEN_VERSION)
    style = STYLES[rng.randrange(len(STYLES))]
    meter, subdiv, (lo, hi) = STYLE_FORM[style]
    bpm = round(rng.uniform(lo, hi), 1)
    change = rng.choices(("none", "ramp", "step"), weights=(6, 2, 1))[0]
    bpm_end = bpm
    if change != "none":
        factor = rng.choice((-1, 1)) * rng.uniform(0.08, 0.4)
        bpm_end = float(np.clip(round(bpm * (1 + factor), 1), 60, 190))
        if abs(bpm_end - bpm) < 5:
            change, bpm_end = "none", bpm
    duration = rng.uniform(20.0, 45.0)
    bars = max(6, int(round(duration * (bpm + bpm_end) / 2 / 60 / meter)))
    drumless = style in ("piano_only", "strings_only")
    intro = 0 if drumless or rng.random() < 0.6 else rng.choice((1, 2, 4))
    breaks: tuple[int, ...] = ()
    if not drumless and bars > 10 and rng.random() < 0.35:
        start = rng.randrange(intro + 3, bars - 3)
        breaks = tuple(range(start, start + rng.choice((1, 2))))
    keys = rng.choice(PIANOS if style == "piano_only" else STRINGS if style == "strings_only" else KEYS_PROGRAMS)
    swing = rng.uniform(0.62, 0.67) if style in ("swing", "shuffle") else 0.5
    return SongSpec(
        seed=seed, style=style, meter=meter, subdiv=subdiv, bpm_start=bpm, bpm_end=bpm_end, bars=bars,
        tempo_change=change, step_at_bar=rng.randrange(bars // 3, 2 * bars // 3) if change == "step" else 0,
        intro_bars=intro, break_bars=breaks, fill_every=0 if drumless else rng.choice((0, 4, 8)), swing=swing,
        programs={"bass": rng.choice(BASS_PROGRAMS), "keys": keys},
        levels={"drums": rng.uniform(0.6, 1.0), "bass": 0.0 if style == "strings_only" else rng.uniform(0.5, 1.0),
                "keys": rng.uniform(0.5, 1.0)},
        progression=rng.randrange(len(PROGRESSIONS)), humanise_ms=rng.uniform(2.0, 10.0),
    )


def song_beat_bpms(spec: SongSpec) -> list[float]:
    """Tempo of each counted beat (ramps linear in beat index, steps at a bar line)."""
    n = spec.bars * spec.meter
    if spec.tempo_change == "step":
        return [spec.bpm_start if i < spec.step_at_bar * spec.meter else spec.bpm_end for i in range(n)]
    if spec.tempo_change == "ramp":
        return [spec.bpm_start + (spec.bpm_end - spec.bpm_start) * i / max(1, n - 1) for i in range(n)]
    return [spec.bpm_start] * n


def _song_drums(spec: SongSpec, bar: int, beat: int, rng: random.Random) -> list[tuple[float, int, int]]:
    """(position within the beat 0..1, GM drum note, velocity) for one counted beat."""
    v = lambda base: max(1, min(127, int(base + rng.randint(-10, 10))))  # noqa: E731
    off, st, m = spec.swing, spec.style, spec.meter
    hits: list[tuple[float, int, int]] = []
    if st == "four_floor":
        hits += [(0.0, KICK, v(115)), (0.5, OPEN_HAT if bar % 2 else CLOSED_HAT, v(75))]
        if beat in (1, 3):
            hits += [(0.0, HAND_CLAP, v(95))]
        if rng.random() < 0.5:
            hits += [(0.25, CLOSED_HAT, v(45)), (0.75, CLOSED_HAT, v(45))]
    elif st in ("breakbeat", "dnb"):
        pattern = {0: [(0.0, KICK)], 1: [(0.0, SNARE)], 2: [(0.5, KICK)], 3: [(0.0, SNARE)]}
        if st == "breakbeat":
            pattern[2] = [(0.0, KICK), (0.5, KICK)]
            pattern[3] = [(0.0, SNARE), (0.75, SNARE)]
        hits += [(p, n, v(105)) for p, n in pattern[beat]]
        hits += [(q / 4, CLOSED_HAT if q % 2 == 0 else RIDE, v(70 - 15 * (q % 2))) for q in range(4)]
        if rng.random() < 0.3:
            hits += [(0.25, SNARE, v(45))]  # ghost notes
    elif st == "trap":
        if beat == 0 or (beat == 2 and rng.random() < 0.4):
            hits += [(0.0, KICK, v(120))]
        if beat == 1 and rng.random() < 0.6:
            hits += [(0.75, KICK, v(100))]
        if beat == 2:
            hits += [(0.0, SNARE, v(110)), (0.0, HAND_CLAP, v(90))]
        if rng.random() < 0.3:  # hi-hat roll: 16ths or 32nd triplets
            steps = rng.choice((4, 6, 8))
            hits += [(q / steps, CLOSED_HAT, v(55 + 40 * q // steps)) for q in range(steps)]
        else:
            hits += [(0.0, CLOSED_HAT, v(85)), (0.5, CLOSED_HAT, v(60))]
    elif st in ("swing", "shuffle"):
        if st == "swing":
            hits += [(0.0, RIDE, v(85)), (0.0, PEDAL_HAT, v(55)) if beat % 2 else (0.0, KICK, v(45))]
            if beat % 2:
                hits += [(off, RIDE, v(60))]
            if rng.random() < 0.25:
                hits += [(off, SNARE, v(45))]
        else:
            hits += [(0.0, CLOSED_HAT, v(85)), (off, CLOSED_HAT, v(60))]
            hits += [(0.0, KICK, v(105))] if beat in (0, 2) else [(0.0, SNARE, v(105))]
    elif st == "ballad":
        if beat == 0:
            hits += [(0.0, KICK, v(85))]
        if beat == 2:
            hits += [(0.0, RIM if rng.random() < 0.5 else SNARE, v(70))]
        if rng.random() < 0.6:
            hits += [(0.0, CLOSED_HAT, v(50))]
    elif st == "reggae":  # one drop: kick + rim on 3, hats on the off-beats
        if beat == 2:
            hits += [(0.0, KICK, v(110)), (0.0, RIM, v(95))]
        hits += [(0.5, CLOSED_HAT, v(75)), (0.0, CLOSED_HAT, v(40))]
    elif st == "bossa":
        clave = {0: (0.0,), 1: (0.5,), 2: (), 3: (0.0,)} if bar % 2 == 0 else {0: (), 1: (0.0,), 2: (0.5,), 3: ()}
        hits += [(p, RIM, v(85)) for p in clave[beat]]
        hits += [(0.0, KICK, v(80)), (0.75, KICK, v(60)) if beat % 2 else (0.0, SHAKER, v(50))]
        hits += [(0.0, SHAKER, v(55)), (0.5, SHAKER, v(65))]
    elif st == "waltz":
        hits += [(0.0, KICK, v(105))] if beat == 0 else [(0.0, RIM, v(70)), (0.0, CLOSED_HAT, v(60))]
    elif st in ("six_eight", "twelve_eight"):
        hits += [(0.0, KICK, v(105))] if beat % 2 == 0 else [(0.0, SNARE, v(95))]
        hits += [(q / 3, CLOSED_HAT if st == "six_eight" else RIDE, v(75 - 15 * (q > 0))) for q in range(3)]
    elif st == "funk":
        if beat == 0 or (beat == 2 and rng.random() < 0.5):
            hits += [(0.0, KICK, v(110))]
        if beat in (0, 2) and rng.random() < 0.6:
            hits += [(0.75, KICK, v(85))]
        if beat in (1, 3):
            hits += [(0.0, SNARE, v(110))]
        hits += [(q / 4, CLOSED_HAT, v(70 if q % 2 == 0 else 45)) for q in range(4)]
        if rng.random() < 0.3:
            hits += [(0.25, SNARE, v(40))]
    else:  # rock
        hits += [(0.0, CLOSED_HAT, v(80)), (0.5, CLOSED_HAT, v(60))]
        hits += [(0.0, KICK, v(110))] if beat in (0, 2) else [(0.0, SNARE, v(105))]
        if beat == 2 and rng.random() < 0.4:
            hits += [(0.5, KICK, v(90))]
    if beat == 0 and bar % 8 == 0 and st not in ("ballad", "bossa"):
        hits += [(0.0, CRASH, v(90))]
    if spec.fill_every and bar % spec.fill_every == spec.fill_every - 1 and beat == m - 1:
        steps = 3 if spec.subdiv == 3 else 4
        toms = (HI_TOM, MID_TOM, LOW_TOM, SNARE)
        hits = [h for h in hits if h[0] == 0.0 and h[1] != SNARE] + \
               [(q / steps, toms[q % 4], v(90 + 5 * q)) for q in range(steps)]
    return hits


def _note(events: list, t: int, length: int, ch: int, note: int, vel: int) -> None:
    events.append((t, mido.Message("note_on", channel=ch, note=note, velocity=max(1, min(127, vel)))))
    events.append((t + max(10, length), mido.Message("note_off", channel=ch, note=note)))


def _song_bass_keys(spec: SongSpec, bar: int, events: list, rng: random.Random, tick_bar: int) -> None:
    """Bass line and chords for one bar, in the style's rhythm (drumless intros keep these)."""
    root, chord = PROGRESSIONS[spec.progression][bar % 4]
    m, st = spec.meter, spec.style
    lb, lk = spec.levels["bass"], spec.levels["keys"]
    bass_vel, keys_vel = int(100 * lb), int(80 * lk)
    for beat in range(m):
        t = tick_bar + beat * TPB
        if lb > 0:
            if st in ("four_floor", "dnb", "breakbeat", "funk", "rock", "trap"):
                if st == "four_floor":
                    _note(events, t + TPB // 2, TPB // 2 - 20, BASS_CH, root, bass_vel)  # off-beat bass
                elif st == "trap":
                    if beat == 0:
                        _note(events, t, 2 * TPB, BASS_CH, root - 12 if root > 40 else root, bass_vel + 10)
                elif st == "funk":
                    _note(events, t, TPB // 4, BASS_CH, root, bass_vel)
                    if rng.random() < 0.5:
                        _note(events, t + TPB // 2 + TPB // 4, TPB // 4, BASS_CH, root + 12, bass_vel - 20)
                else:
                    _note(events, t, TPB - 30, BASS_CH, root if beat % 2 == 0 else root + 7, bass_vel)
            elif st == "reggae":
                if beat in (0, 2):
                    _note(events, t + TPB // 4, TPB // 2, BASS_CH, root, bass_vel)
            elif st == "bossa":
                _note(events, t, TPB + TPB // 2 - 20 if beat % 2 == 0 else TPB // 2 - 20, BASS_CH,
                      root if beat % 2 == 0 else root + 7, bass_vel)
            elif st in ("waltz",):
                if beat == 0:
                    _note(events, t, TPB - 20, BASS_CH, root, bass_vel)
            elif st in ("six_eight", "twelve_eight", "swing", "shuffle"):
                figure = (0, 7) if m == 2 else (0, 7, 12, 7)  # one figure per bar: a 6/8 bar is 2 beats
                _note(events, t, TPB - 30, BASS_CH, root + figure[beat % len(figure)], bass_vel)
            elif st in ("ballad", "piano_only"):
                if beat % 2 == 0:
                    _note(events, t, 2 * TPB - 30, BASS_CH, root, bass_vel)
        # Keys
        if st in ("reggae",):
            for n in chord:
                _note(events, t + TPB // 2, TPB // 4, KEYS_CH, n, keys_vel + 10)  # the skank
        elif st == "waltz":
            if beat > 0:
                for n in chord:
                    _note(events, t, TPB - 60, KEYS_CH, n, keys_vel)
        elif st in ("six_eight", "twelve_eight", "piano_only"):
            # Arpeggio on every subdivision: the pulse then lives in the keys (no drums in piano_only).
            notes = list(chord) + [chord[0] + 12]
            for q in range(spec.subdiv):
                accent = 15 if q == 0 else 0
                idx = (beat * spec.subdiv + q) % len(notes)
                _note(events, t + q * (TPB // spec.subdiv), TPB // spec.subdiv - 10, KEYS_CH, notes[idx],
                      keys_vel + accent + (10 if beat == 0 and q == 0 else 0))
        elif st == "strings_only":
            if beat == 0:
                for n in chord:
                    _note(events, t, m * TPB - 40, KEYS_CH, n - 12, keys_vel)
            for n in (chord[0] + 12,):  # a repeated note on each beat, accented on the bar
                _note(events, t, TPB - 40, KEYS_CH + 1, n, keys_vel + (20 if beat == 0 else 0))
        elif st in ("swing", "shuffle"):
            if beat % 2 == 1 or st == "shuffle":
                for n in chord:
                    _note(events, t + (int(spec.swing * TPB) if st == "shuffle" and beat % 2 else 0),
                          TPB // 3, KEYS_CH, n, keys_vel)
        elif st == "bossa":
            for p in ((0.0, 0.75) if beat % 2 == 0 else (0.5,)):
                for n in chord:
                    _note(events, t + int(p * TPB), TPB // 3, KEYS_CH, n, keys_vel)
        elif st == "ballad":
            if beat == 0:
                for n in chord:
                    _note(events, t, m * TPB - 30, KEYS_CH, n, keys_vel)
            _note(events, t + TPB // 2, TPB // 2, KEYS_CH, chord[(beat + 1) % 3] + 12, keys_vel - 15)
        else:
            if beat % 2 == 0:
                for n in chord:
                    _note(events, t, 2 * TPB - 40, KEYS_CH, n, keys_vel)


def compose_song(spec: SongSpec) -> tuple[mido.MidiFile, np.ndarray, np.ndarray]:
    """(MIDI, beat times, downbeat times): times in seconds from the MIDI start, exact from the tempo map."""
    rng = random.Random(spec.seed)
    bpms = song_beat_bpms(spec)
    midi = mido.MidiFile(ticks_per_beat=TPB)
    tempo_track = mido.MidiTrack()
    midi.tracks.append(tempo_track)
    lead_in = TPB
    events: list[tuple[int, mido.Message]] = [
        (0, mido.Message("program_change", channel=BASS_CH, program=spec.programs["bass"])),
        (0, mido.Message("program_change", channel=KEYS_CH, program=spec.programs["keys"])),
        (0, mido.Message("program_change", channel=KEYS_CH + 1, program=spec.programs["keys"])),
        (0, mido.Message("control_change", channel=DRUM_CH, control=7, value=int(127 * spec.levels["drums"]))),
    ]
    beat_times: list[float] = []
    downbeats: list[float] = []
    seconds = 60.0 / bpms[0]
    tempo_events = [(0, mido.bpm2tempo(bpms[0]))]
    for i, bpm in enumerate(bpms):
        tempo_events.append((lead_in + i * TPB, mido.bpm2tempo(bpm)))
        beat_times.append(seconds)
        if i % spec.meter == 0:
            downbeats.append(seconds)
        seconds += mido.bpm2tempo(bpm) / 1e6
    drumless = spec.style in ("piano_only", "strings_only")
    for bar in range(spec.bars):
        tick_bar = lead_in + bar * spec.meter * TPB
        _song_bass_keys(spec, bar, events, rng, tick_bar)
        if drumless or bar < spec.intro_bars or bar in spec.break_bars:
            continue
        for beat in range(spec.meter):
            tick0 = tick_bar + beat * TPB
            ms_ticks = spec.humanise_ms / 1000.0 * bpms[bar * spec.meter + beat] / 60.0 * TPB
            for pos, note, velocity in _song_drums(spec, bar, beat, rng):
                t = max(0, tick0 + int(pos * TPB) + int(round(rng.uniform(-ms_ticks, ms_ticks))))
                _note(events, t, TPB // 8, DRUM_CH, note, velocity)
    end_tick = lead_in + len(bpms) * TPB + 2 * TPB
    _write_track(tempo_track, [(t, mido.MetaMessage("set_tempo", tempo=v)) for t, v in tempo_events], end_tick)
    music = mido.MidiTrack()
    midi.tracks.append(music)
    _write_track(music, events, end_tick)
    return midi, np.asarray(beat_times), np.asarray(downbeats)


def render_song(seed: int, cache_dir: Path) -> dict:
    """Render one seed's song (cached on disk by seed + GEN_VERSION); returns its wav path and ground truth."""
    return render_spec(song_spec(seed), cache_dir, f"song{seed}")


def render_spec(spec: SongSpec, cache_dir: Path, stem: str) -> dict:
    """Render a song spec to `cache_dir`/gen<version>/<stem>.wav unless it is there; its ground truth as a dict."""
    folder = Path(cache_dir) / f"gen{GEN_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    wav, meta = folder / f"{stem}.wav", folder / f"{stem}.json"
    if wav.is_file() and meta.is_file():
        return json.loads(meta.read_text())
    latency_file = folder / "latency.json"
    if latency_file.is_file():
        latency = json.loads(latency_file.read_text())["latency"]
    else:
        latency = measure_latency(folder)
        latency_file.write_text(json.dumps({"latency": latency}))
    midi, beats, downbeats = compose_song(spec)
    mid = folder / f"{stem}.mid"
    midi.save(mid)
    tmp = folder / f"{stem}.tmp.wav"
    render_midi(mid, tmp, GEN_RATE)
    tmp.replace(wav)
    info = {
        "name": f"{spec.style}#{spec.seed}", "seed": spec.seed, "wav": str(wav), "style": spec.style,
        "meter": spec.meter, "bpm": [spec.bpm_start, spec.bpm_end], "notated_bpm": spec.notated_bpm,
        "tempo_change": spec.tempo_change, "beats": (beats + latency).tolist(),
        "downbeats": (downbeats + latency).tolist(), "latency": latency, "intro_bars": spec.intro_bars,
        "break_bars": list(spec.break_bars), "programs": spec.programs,
    }
    meta.write_text(json.dumps(info))
    return info


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "musicgen_out")
    info = render_set(out)
    for name, item in info.items():
        print(f"{name}: {item['wav']} ({len(item['beats'])} beats, latency {item['latency'] * 1000:.1f} ms)")
