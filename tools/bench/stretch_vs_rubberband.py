#!/usr/bin/env python3
"""Tempo and transposition on real music: ours (`sonantica render --tempo
--transpose`) beside Rubber Band (`rubberband --fine`, the R3 engine), the
quality reference. Rubber Band is GPL and only run here, as an outside program.

For each track and setting it reports, for both programs:
  - frames: the output's length against the exact length (input / tempo);
  - onsets: how far the output's attacks are from the original's attacks at
    time / tempo (median and 90th percentile, ms), attacks found by spectral
    flux peaks in both;
  - balance: the largest difference of the long-term spectrum (third-octave
    bands, 50 Hz - 16 kHz) from the original's, after the transposition is
    undone by shifting bands (dB);
  - agreement: the correlation of the two programs' third-octave
    spectrograms (1 = the same time-frequency energy).
and the CPU seconds each took (one thread each).

Needs: a release build (cargo build --release), ffmpeg, rubberband-cli and
numpy (python3 -m venv v && v/bin/pip install numpy).

  tools/bench/stretch_vs_rubberband.py [--seconds 30] [TRACK.ogg ...]
"""
import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
MUSIC = pathlib.Path("/usr/share/games/wesnoth/1.16/data/core/music")
RATE = 44100
SETTINGS = [(0.75, 0), (1.25, 0), (1.0, -2), (0.8, 3)]


def run_timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def read_f32(path):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "2",
                          "-ar", str(RATE), "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).mean(axis=1)


def bands():
    centres = 1000 * 2.0 ** (np.arange(-14, 13) / 3)
    return centres[(centres >= 50) & (centres <= 16000)]


def spectrogram(x, n=4096, hop=1024):
    w = np.hanning(n)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * w
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def band_matrix(n=4096, shift=1.0):
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    m = []
    for c in bands() * shift:
        lo, hi = c / 2 ** (1 / 6), c * 2 ** (1 / 6)
        m.append(((freqs >= lo) & (freqs < hi)).astype(float))
    return np.array(m).T


def onsets(x, hop=512):
    s = spectrogram(x, 2048, hop)
    flux = np.maximum(np.diff(np.log1p(s * 100), axis=0), 0).sum(axis=1)
    flux = (flux - np.median(flux)) / (flux.std() + 1e-9)
    peaks = [i for i in range(2, len(flux) - 2)
             if flux[i] > 2.5 and flux[i] == flux[i - 3:i + 4].max()]
    return np.array(peaks) * hop / RATE + 1024 / RATE


def compare(original, out, tempo, semis):
    want = onsets(original) / tempo
    got = onsets(out)
    if len(want) == 0 or len(got) == 0:
        return float("nan"), float("nan"), float("nan")
    errs = np.array([np.min(np.abs(got - t)) for t in want]) * 1000
    errs = errs[errs < 50]  # attacks with a counterpart within 50 ms
    ratio = 2 ** (semis / 12)
    ltas_o = spectrogram(original).mean(axis=0) @ band_matrix()
    ltas_x = spectrogram(out).mean(axis=0) @ band_matrix(shift=ratio)
    keep = bands() * max(ratio, 1) < 16000
    diff = 10 * np.log10(ltas_x[keep] / ltas_o[keep])
    diff -= np.median(diff)
    return float(np.median(errs)), float(np.percentile(errs, 90)), float(np.abs(diff).max())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("tracks", nargs="*", type=pathlib.Path)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    tracks = args.tracks or [MUSIC / n for n in ("battle.ogg", "elvish-theme.ogg", "knolls.ogg")]
    exe = REPO / "target/release/sonantica"
    if not exe.exists():
        sys.exit("build first: cargo build --release --locked")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu}; rubberband: "
          + subprocess.run(["rubberband", "--version"], capture_output=True, text=True).stderr.strip())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for track in tracks:
            stems = tmp / "stems"
            stems.mkdir(exist_ok=True)
            src = tmp / "src.wav"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-t", str(args.seconds), "-i", str(track),
                            "-ac", "2", "-ar", str(RATE), "-c:a", "pcm_f32le", str(src)], check=True)
            # The track as the "other" stem of a silent set: the render is the track.
            for name in ("drums", "bass", "vocals"):
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-af", "volume=0",
                                "-c:a", "flac", str(stems / f"{name}.flac")], check=True)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "flac",
                            str(stems / "other.flac")], check=True)
            original = read_f32(src)
            print(f"\n{track.name} (first {args.seconds:.0f} s)")
            print("  setting          program     frames (exact)      onsets med/p90 ms  balance dB  agreement  CPU s")
            for tempo, semis in SETTINGS:
                ours_path, rb_path = tmp / "ours.wav", tmp / "rb.wav"
                t_ours = run_timed([str(exe), "render", "--stems", str(stems), "--out", str(ours_path),
                                    "--tempo", str(tempo), "--transpose", str(semis), "--bit-depth", "32f"])
                t_rb = run_timed(["rubberband", "--fine", "-T", str(tempo), "-p", str(semis),
                                  str(src), str(rb_path)])
                ours, rb = read_f32(ours_path), read_f32(rb_path)
                exact = round(len(original) / tempo)
                so, sr = spectrogram(ours) @ band_matrix(), spectrogram(rb) @ band_matrix()
                m = min(len(so), len(sr))
                agree = np.corrcoef(np.log10(so[:m] + 1e-12).ravel(), np.log10(sr[:m] + 1e-12).ravel())[0, 1]
                for name, out, t in (("ours", ours, t_ours), ("rubberband", rb, t_rb)):
                    med, p90, bal = compare(original, out, tempo, semis)
                    print(f"  {tempo:.2f}x {semis:+d} st     {name:<10}  {len(out):>8} ({exact:>8})  "
                          f"{med:6.1f} / {p90:5.1f}      {bal:5.2f}      {agree:5.3f}    {t:5.2f}")


if __name__ == "__main__":
    main()
