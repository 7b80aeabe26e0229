#!/usr/bin/env python3
"""Reference speed of PyTorch+CUDA `demucs.apply.apply_model` on a 4-minute track.

Not part of CI. Run from the repository root on a GPU machine, with the demucs
(and julius) wheels in .whl/ and a 240 s 44.1 kHz 16-bit stereo WAV in .gpuref/
(see BENCHMARKS.md, "GPU reference"):

    PYTHONUNBUFFERED=1 python3 tools/reference/gpu_reference.py [--audio .gpuref/battle240.wav] [--runs 3]

Random-weight full-size htdemucs / htdemucs_6s (official kwargs, built as
tools/reference/make_fixtures.py and parity_full.py do, seed 1234), fp32, with
the TF32 flags left as the image has them. Reference call as the demucs CLI /
demucs.api.Separator does it: normalise by the mono mix's mean/std, then
apply_model(model, x[None], device='cuda', shifts=0, split=True, overlap=0.25,
segment=None (the model's 7.8 s)), de-normalise.

Two placements are timed, each with torch.cuda.synchronize() before start and stop:
  cli:  the track stays on the host, apply_model copies each chunk to the GPU and
        each chunk's output back (exactly what `demucs -d cuda` does);
  gpu:  the whole track is copied to the GPU first, apply_model runs there, and the
        stems are copied back to the host at the end (both copies inside the timing).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import wave
import warnings
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


def install_wheels(whl_dir, target="/tmp/site"):
    wheels = sorted(str(p) for p in Path(whl_dir).glob("*.whl"))
    if not wheels:
        return
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--no-cache-dir", "--upgrade", "--target", target] + wheels
    log("installing", [Path(w).name for w in wheels])
    subprocess.run(cmd, check=True)
    sys.path.insert(0, target)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"<{e}>"


def read_wav(path, seconds=None):
    import numpy as np
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, "16-bit PCM expected"
        sr, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        if seconds is not None:
            n = min(n, int(seconds * sr))
        data = np.frombuffer(w.readframes(n), dtype="<i2").reshape(-1, ch)
    return (data.astype(np.float32) / 32768.0).T.copy(), sr


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--audio", default=str(REPO / ".gpuref/battle240.wav"))
    p.add_argument("--seconds", type=float, default=None, help="cut the input (for a local test)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--archs", default="htdemucs,htdemucs_6s")
    p.add_argument("--modes", default="cli,gpu")
    p.add_argument("--device", default="cuda")
    p.add_argument("--warmup-seconds", type=float, default=10.0)
    p.add_argument("--budget-s", type=float, default=240.0, help="skip remaining runs past this")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    if not args.no_install:
        install_wheels(REPO / ".whl")
    import numpy as np
    import torch
    sys.path.insert(0, str(REPO / "tools/reference"))
    import demucs
    from demucs.apply import apply_model
    from make_fixtures import build, FOUR, SIX

    # Same values as tools/reference/parity_full.py (not imported: it needs soundfile).
    official = dict(channels=48, bottom_channels=512, t_layers=5, segment=Fraction(39, 5))
    archs = {"htdemucs": (FOUR, official), "htdemucs_6s": (SIX, dict(official, bottom_channels=0))}

    out_dir = Path(os.environ.get("OUT") or (REPO / ".gpuref"))
    json_path = Path(args.json) if args.json else out_dir / "gpuref.json"
    cuda = args.device.startswith("cuda")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flags = {}
        for name, getter in [
                ("torch.backends.cuda.matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
                ("torch.backends.cudnn.allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
                ("torch.get_float32_matmul_precision()", lambda: torch.get_float32_matmul_precision()),
                ("torch.backends.cudnn.benchmark", lambda: torch.backends.cudnn.benchmark),
                ("torch.backends.cudnn.deterministic", lambda: torch.backends.cudnn.deterministic),
                ("torch.backends.cuda.matmul.fp32_precision", lambda: torch.backends.cuda.matmul.fp32_precision),
                ("torch.backends.cudnn.conv.fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision),
                ("torch.backends.cudnn.rnn.fp32_precision", lambda: torch.backends.cudnn.rnn.fp32_precision),
                ("torch.backends.fp32_precision", lambda: torch.backends.fp32_precision)]:
            try:
                flags[name] = getter()
            except Exception as e:  # noqa: BLE001
                flags[name] = f"<unavailable: {type(e).__name__}: {e}>"[:200]
    flag_warnings = sorted({str(w.message)[:200] for w in caught})

    env = {
        "nvidia-smi -L": sh("nvidia-smi -L"),
        "nvidia-smi query": sh("nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,"
                               "clocks.sm,power.limit --format=csv"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch.version.cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "numpy": np.__version__,
        "demucs": getattr(demucs, "__version__", "?"),
        "demucs_file": demucs.__file__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        env.update({"gpu": torch.cuda.get_device_name(0), "sm_count": props.multi_processor_count,
                    "gpu_mem_gib": round(props.total_memory / 2 ** 30, 1),
                    "capability": list(torch.cuda.get_device_capability(0))})
    for k, v in env.items():
        log(f"{k}: {v}")
    for k, v in flags.items():
        log(f"flag {k} = {v}")
    for w in flag_warnings:
        log("warning while reading flags:", w)

    wav_np, sr = read_wav(args.audio, args.seconds)
    assert sr == 44100 and wav_np.shape[0] == 2, (sr, wav_np.shape)
    wav = torch.from_numpy(wav_np)
    log(f"input {args.audio}: {wav.shape[1]} frames = {wav.shape[1] / sr:.3f} s, stereo {sr} Hz")

    result = {"env": env, "tf32_flags_as_found": flags, "flag_warnings": flag_warnings,
              "input": {"path": Path(args.audio).name, "frames": wav.shape[1], "seconds": wav.shape[1] / sr},
              "call": "apply_model(model, ((wav-mean)/std)[None], device=..., shifts=0, split=True, "
                      "overlap=0.25, segment=None); out*std+mean; fp32; weights random (seed 1234)",
              "modes": {"cli": "track on host; apply_model(device='cuda') copies each chunk to the GPU "
                               "and its output back, accumulation on the host (demucs CLI)",
                        "gpu": "track copied to the GPU first, apply_model there, stems copied back; "
                               "both copies timed"},
              "archs": {}}

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def separate(model, x, mode):
        """One timed separation as the CLI does it; returns (seconds, stems on host)."""
        sync()
        start = time.perf_counter()
        if mode == "gpu":
            x = x.to(args.device)
        ref = x.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        with torch.no_grad():
            out = apply_model(model, ((x - mean) / std)[None], device=args.device, shifts=0, split=True,
                              overlap=0.25)
        out = out * std + mean
        out = out.cpu()
        sync()
        return time.perf_counter() - start, out[0]

    def save():
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2, default=str))

    for arch in [a for a in args.archs.split(",") if a]:
        sources, kwargs = archs[arch]
        entry = result["archs"].setdefault(arch, {})
        try:
            t = time.perf_counter()
            model, kw = build(sources, seed=1234, **kwargs)
            entry["params"] = sum(p.numel() for p in model.parameters())
            entry["build_s"] = round(time.perf_counter() - t, 2)
            entry["segment_s"] = float(model.segment)
            seg_len = int(model.samplerate * model.segment)
            stride = int(0.75 * seg_len)
            entry["chunks"] = len(range(0, wav.shape[1], stride))
            model.to(args.device)
            model.eval()
            log(f"{arch}: {entry['params']} parameters, built in {entry['build_s']} s, "
                f"{entry['chunks']} chunks of {seg_len} frames")
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            warm = wav[:, : int(args.warmup_seconds * sr)].contiguous()
            w_s, _ = separate(model, warm, "cli")
            entry["warmup_s"] = round(w_s, 3)
            log(f"{arch}: warm-up on {warm.shape[1] / sr:.1f} s: {w_s:.3f} s")
            outs = {}
            for mode in [m for m in args.modes.split(",") if m]:
                times = []
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                for i in range(args.runs):
                    if time.time() - T0 + (times[-1] if times else 0.0) > args.budget_s:
                        log(f"{arch}/{mode}: budget reached, skipping remaining runs")
                        break
                    s, out = separate(model, wav, mode)
                    times.append(s)
                    log(f"{arch}/{mode}: run {i + 1}: {s:.3f} s "
                        f"({wav.shape[1] / sr / s:.1f}x real time)")
                    outs[mode] = out
                m = {"runs_s": [round(x, 4) for x in times]}
                if times:
                    m["median_s"] = round(statistics.median(times), 4)
                    m["min_s"] = round(min(times), 4)
                if cuda:
                    m["peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
                    m["peak_reserved_mib"] = round(torch.cuda.max_memory_reserved() / 2 ** 20, 1)
                entry[mode] = m
                log(f"{arch}/{mode}: {m}")
                save()
            if outs:
                o = list(outs.values())[-1]
                entry["output"] = {"shape": list(o.shape), "finite": bool(torch.isfinite(o).all()),
                                   "std_per_stem": [round(float(s), 5) for s in o.std(dim=(1, 2))]}
            if "cli" in outs and "gpu" in outs:
                entry["max_abs_diff_cli_vs_gpu"] = float((outs["cli"] - outs["gpu"]).abs().max())
            log(f"{arch}: output {entry.get('output')}, cli vs gpu max |diff| "
                f"{entry.get('max_abs_diff_cli_vs_gpu')}")
            del model, outs
            if cuda:
                torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            entry["error"] = f"{type(e).__name__}: {e}"
        save()

    result["total_s"] = round(time.time() - T0, 1)
    save()
    log("SUMMARY")
    for arch, e in result["archs"].items():
        for mode in ("cli", "gpu"):
            if mode in e and "median_s" in e[mode]:
                log(f"  {arch:<12} {mode}: median {e[mode]['median_s']:.3f} s of {e[mode]['runs_s']}, "
                    f"peak allocated {e[mode].get('peak_allocated_mib')} MiB, "
                    f"reserved {e[mode].get('peak_reserved_mib')} MiB")
        if "error" in e:
            log(f"  {arch}: ERROR {e['error']}")
    log(f"json written to {json_path}")


if __name__ == "__main__":
    main()
