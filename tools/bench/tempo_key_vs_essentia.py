#!/usr/bin/env python3
"""Tempo and key of real tracks: `sonantica analyze --json` beside Essentia's
RhythmExtractor2013 (BPM) and KeyExtractor (key), an independent estimator,
so a reader can judge where they agree.

Needs a release build, and numpy + essentia (python3 -m venv v &&
v/bin/pip install numpy essentia).

  tools/bench/tempo_key_vs_essentia.py [TRACK ...]   (default: Wesnoth's music)
"""
import json
import pathlib
import subprocess
import sys

import essentia.standard as es

REPO = pathlib.Path(__file__).resolve().parents[2]
MUSIC = pathlib.Path("/usr/share/games/wesnoth/1.16/data/core/music")
FLATS = {"C#": "C#", "Db": "C#", "D#": "Eb", "Eb": "Eb", "F#": "F#", "Gb": "F#",
         "G#": "Ab", "Ab": "Ab", "A#": "Bb", "Bb": "Bb"}


def main():
    tracks = [pathlib.Path(a) for a in sys.argv[1:]] or sorted(MUSIC.glob("*.ogg"))[:12]
    exe = REPO / "target/release/sonantica"
    if not exe.exists():
        sys.exit("build first: cargo build --release --locked")
    print("| track | ours: BPM | Essentia: BPM (confidence) | ours: key | Essentia: key (strength) |")
    print("|---|---|---|---|---|")
    agree_bpm = agree_key = 0
    for t in tracks:
        ours = json.loads(subprocess.run([str(exe), "analyze", "--json", str(t)], check=True,
                                         capture_output=True, text=True).stdout)
        audio = es.MonoLoader(filename=str(t), sampleRate=44100)()
        bpm, _, conf, _, _ = es.RhythmExtractor2013(method="multifeature")(audio)
        key, scale, strength = es.KeyExtractor()(audio)
        theirs_key = f"{FLATS.get(key, key)} {scale}"
        ob = ours.get("bpm")
        if ob is not None and min(abs(ob - bpm), abs(ob - 2 * bpm), abs(2 * ob - bpm)) <= 2:
            agree_bpm += 1
        if ours.get("key") == theirs_key:
            agree_key += 1
        print(f"| {t.stem} | {ob if ob is not None else '–'} | {bpm:.1f} ({conf:.2f}) | "
              f"{ours.get('key') or '–'} | {theirs_key} ({strength:.2f}) |")
    n = len(tracks)
    print(f"\ntempo agrees (within 2 BPM, or an octave apart) on {agree_bpm} of {n}; "
          f"key agrees exactly on {agree_key} of {n}")


if __name__ == "__main__":
    main()
