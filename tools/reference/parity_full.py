#!/usr/bin/env python3
"""Full-size parity and speed check of `sonantica separate` against the reference.

Not part of CI (it needs the reference demucs and takes minutes):

    ~/demucs-venv/bin/python tools/reference/parity_full.py [--arch htdemucs|htdemucs_6s] \
        [--input TRACK] [--seconds 30] [--threads 2] [--repeat 3] [--work DIR] \
        [--simd avx512|avx2|portable] [--device cpu|gpu]

It builds a random-weight network with the official kwargs of the chosen
architecture (LayerScales and norms randomised as in make_fixtures.py, weights
rounded through fp16 as the official files are), saves it as an HF safetensors
file, and separates the same 44.1 kHz stereo excerpt with:
  - the reference: the CLI's normalisation around `apply_model(shifts=0)`, on
    `--threads` torch threads, in a child process whose peak RSS is measured;
  - `target/release/sonantica separate --shifts 0 --format wav-f32 --threads N
    --device D`, timed and measured with /usr/bin/time. With `--device gpu` our
    engine runs on the GPU (any wgpu adapter, Mesa's lavapipe included) while
    the reference stays on the CPU: the parity of the GPU engine, and its
    speed against PyTorch on the CPU.
The two run in `--repeat` interleaved pairs (the machine's speed drifts); it
prints every pair, the SNR of every stem, the median wall times, the peak RSS,
and the ratios.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).parent))
from make_fixtures import build, save_safetensors, FOUR, SIX  # noqa: E402

OFFICIAL = dict(channels=48, bottom_channels=512, t_layers=5, segment=Fraction(39, 5))
ARCHS = {
    "htdemucs": (FOUR, OFFICIAL),
    "htdemucs_6s": (SIX, dict(OFFICIAL, bottom_channels=0)),
}
REPO = Path(__file__).resolve().parents[2]


def reference_child(model_path, wav_path, out_dir, threads):
    """Runs in a child process so that its peak RSS is its own."""
    torch.set_num_threads(threads)
    from demucs.apply import apply_model
    from demucs.hf import load_safetensors_model
    model = load_safetensors_model(model_path)
    model.eval()
    wav, sr = sf.read(wav_path, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.T.copy())
    start = time.time()
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    with torch.no_grad():
        out = apply_model(model, ((wav - mean) / std)[None], shifts=0, split=True, overlap=0.25)[0]
    out = out * std + mean
    elapsed = time.time() - start
    for name, stem in zip(model.sources, out):
        sf.write(str(Path(out_dir) / f"{name}.wav"), stem.numpy().T, sr, subtype="FLOAT")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "rss_mb": rss}))


def snr_db(ref, got):
    n = min(len(ref), len(got))
    ref, got = ref[:n].astype(np.float64), got[:n].astype(np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="htdemucs", choices=sorted(ARCHS))
    p.add_argument("--input", default="/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default=None)
    p.add_argument("--repeat", type=int, default=3, help="interleaved (reference, ours) pairs")
    p.add_argument("--simd", default=None, choices=["avx512", "avx2", "portable"],
                   help="lower our engine's kernels to this level (SONANTICA_SIMD); default: the widest the CPU has")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"],
                   help="where our engine runs (sonantica separate --device); the reference runs on the CPU")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        reference_child(*args.child, args.threads)
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="sonantica-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    sources, kwargs = ARCHS[args.arch]
    model_path = work / f"{args.arch}-random.safetensors"
    if not model_path.exists():
        model, kw = build(sources, seed=1234, **kwargs)
        save_safetensors(model, kw, model_path)
    wav_path = work / "input.wav"
    audio, sr = sf.read(args.input, dtype="float32", always_2d=True)
    assert sr == 44100, f"input must be 44.1 kHz, is {sr}"
    audio = audio[: int(args.seconds * sr)]
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    sf.write(str(wav_path), audio[:, :2], sr, subtype="FLOAT")

    ref_dir, our_dir = work / "reference", work / "sonantica"
    ref_dir.mkdir(exist_ok=True)
    our_dir.mkdir(exist_ok=True)
    binary = REPO / "target/release/sonantica"
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)

    def reference():
        child = subprocess.run(
            [sys.executable, __file__, "--threads", str(args.threads), "--child", str(model_path), str(wav_path),
             str(ref_dir)],
            check=True, capture_output=True, text=True)
        stats = json.loads(child.stdout.strip().splitlines()[-1])
        return stats["seconds"], stats["rss_mb"]

    env = dict(os.environ)
    if args.simd:
        env["SONANTICA_SIMD"] = args.simd

    def ours():
        start = time.time()
        run = subprocess.run(
            ["/usr/bin/time", "-f", "%M", str(binary), "separate", str(wav_path), "--model", str(model_path),
             "--out", str(our_dir), "--shifts", "0", "--format", "wav-f32", "--threads", str(args.threads),
             "--device", args.device],
            check=True, capture_output=True, text=True, env=env)
        return time.time() - start, int(run.stderr.strip().splitlines()[-1]) / 1024

    # Interleaved (reference, ours) pairs: this shared machine's speed drifts by
    # tens of percent over minutes, so each pair runs under the same conditions
    # and the medians and per-pair ratios are reported, not one lucky run.
    pairs = []
    for i in range(args.repeat):
        r, o = reference(), ours()
        pairs.append((r, o))
        print(f"  run {i + 1}: reference {r[0]:.1f} s, sonantica {o[0]:.1f} s, ratio {r[0] / o[0]:.2f}x",
              flush=True)

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    simd = " ".join(f for f in flags if f in ("avx2", "fma") or f.startswith("avx512"))
    print(f"{args.arch}, random weights, {args.seconds:.0f} s of {Path(args.input).name}, {args.threads} threads")
    print(f"  CPU: {cpu} ({simd}); our kernels: {args.simd or 'widest available'}; our device: {args.device}")
    worst = float("inf")
    for name in sources:
        ref, _ = sf.read(str(ref_dir / f"{name}.wav"), dtype="float32")
        got, _ = sf.read(str(our_dir / f"{name}.wav"), dtype="float32")
        snr = snr_db(ref.reshape(-1), got.reshape(-1))
        worst = min(worst, snr)
        print(f"  {name:<7} SNR {snr:6.1f} dB")
    ref_s = float(np.median([r[0] for r, _ in pairs]))
    ours_s = float(np.median([o[0] for _, o in pairs]))
    ref_rss = max(r[1] for r, _ in pairs)
    ours_rss = max(o[1] for _, o in pairs)
    ratios = [r[0] / o[0] for r, o in pairs]
    print(f"  reference apply_model: median {ref_s:.1f} s of {args.repeat}, peak RSS {ref_rss:.0f} MB")
    print(f"  sonantica separate:    median {ours_s:.1f} s of {args.repeat} (whole command, decode and encode "
          f"included), peak RSS {ours_rss:.0f} MB")
    print(f"  speed ratio (reference / sonantica): {ref_s / ours_s:.2f}x of the medians; per pair "
          f"{min(ratios):.2f}x to {max(ratios):.2f}x; RSS ratio (sonantica / reference): {ours_rss / ref_rss:.2f}")
    print(f"  worst stem: {worst:.1f} dB ({'PASS' if worst >= 100 else 'FAIL'} at 100 dB)")


if __name__ == "__main__":
    main()
