#!/usr/bin/env python3
"""Benchmark: how soon live stems are ready, and how fast they keep coming.

    cargo build --release --locked
    python3 tools/bench/live_stems.py --model MODEL.safetensors [--input TRACK]
        [--threads 2] [--from-s 0] [--repeat 3]

Starts `target/release/sonantica serve` on a fresh data folder with MODEL as
the default model (the station loads it at start; the script waits for that),
uploads TRACK (default: Wesnoth's "battle.ogg", `apt-get install
wesnoth-1.16-music`), waits for its analysis to finish so that nothing else
runs, then `POST /api/tracks/{id}/separate {"from_s": F}` and polls the job
every 50 ms. It prints, per run and as medians:
  - first 5 s: seconds from the POST until the ready span that starts at the
    requested position covers 5 s (target on 2 cores: under 10 s);
  - sustained: how many seconds of audio become ready per second of wall time
    from then until that span reaches the end (target: at least 1.2x real
    time, so that playback never catches up);
  - the whole job's time.
Needs only the Python standard library. Each run uses a fresh station.
"""
import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "live-stems-benchmark-token-0123456789"


def cpu_line():
    model, flags = platform.processor() or "?", []
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.*)", text).group(1)
        flags = re.search(r"flags\s*:\s*(.*)", text).group(1).split()
    except (OSError, AttributeError):
        pass
    simd = [f for f in flags if f.startswith("avx512") or f in ("avx2", "fma")]
    return f"{model}, {os.cpu_count()} cores, {' '.join(simd) or 'no AVX2/AVX-512'}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Station:
    def __init__(self, model, threads, data):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(data) / "serve.log", "w+")
        self.proc = subprocess.Popen(
            [str(REPO / "target/release/sonantica"), "serve", "--data-dir", str(data),
             "--listen", f"127.0.0.1:{self.port}", "--model", str(model),
             "--threads", str(threads), "--token", TOKEN],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            self.log.seek(0)
            text = self.log.read()
            if "default model" in text:
                if "could not be loaded" in text or "failed" in text:
                    sys.exit(f"the station could not load the model:\n{text}")
                return
            if self.proc.poll() is not None:
                sys.exit(f"the station stopped:\n{text}")
            time.sleep(0.1)
        sys.exit("the station did not load its model within 120 s")

    def call(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.base + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read() or b"null")

    def upload(self, path):
        boundary = "live-stems-bench"
        data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{Path(path).name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + Path(path).read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        return self.call("POST", "/api/tracks", data,
                         {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def one_run(args):
    with tempfile.TemporaryDirectory() as data:
        st = Station(args.model, args.threads, data)
        try:
            track = st.upload(args.input)
            tid, duration = track["id"], track["duration_s"]
            while st.call("GET", f"/api/tracks/{tid}")["analysis_status"] == "pending":
                time.sleep(0.2)
            body = json.dumps({"from_s": args.from_s}).encode()
            t0 = time.monotonic()
            job = st.call("POST", f"/api/tracks/{tid}/separate", body,
                          {"Content-Type": "application/json"})
            first5 = None
            samples = []  # (t, seconds ready from the start position)
            while True:
                j = st.call("GET", f"/api/jobs/{job['id']}")
                t = time.monotonic() - t0
                if j["status"] in ("done", "failed", "cancelled"):
                    if j["status"] != "done":
                        sys.exit(f"the job ended {j['status']}: {j.get('error')}")
                    break
                spans = [s for s in j.get("ready", []) if s[0] <= args.from_s + 0.5]
                if spans:
                    covered = spans[0][1] - spans[0][0]
                    # Once the span reaches the end of the track, the job is making
                    # the part before the start: that is not this span's growth.
                    if spans[0][1] < duration - 0.01:
                        samples.append((t, covered))
                    if first5 is None and covered >= min(5.0, duration - spans[0][0]):
                        first5 = t
                time.sleep(0.05)
            total = time.monotonic() - t0
            after = [(t, c) for t, c in samples if first5 is not None and t >= first5]
            if len(after) >= 2 and after[-1][0] > after[0][0]:
                rate = (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0])
            else:
                rate = float("nan")
            return first5, rate, total, duration
        finally:
            st.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--input", default="/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--from-s", type=float, default=0.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    if not (REPO / "target/release/sonantica").exists():
        sys.exit("build first: cargo build --release --locked")
    print(f"machine: {cpu_line()}")
    print(f"model: {args.model}; input: {args.input}; threads {args.threads}; from {args.from_s} s")
    runs = []
    for i in range(args.repeat):
        first5, rate, total, duration = one_run(args)
        runs.append((first5, rate, total))
        if first5 is None:
            sys.exit(f"run {i + 1}: the first 5 s never became ready before the job ended "
                     f"({total:.1f} s)")
        print(f"run {i + 1}: first 5 s ready after {first5:.2f} s; sustained {rate:.2f}x real time; "
              f"whole {duration:.1f} s track in {total:.1f} s")
    med = [statistics.median(r[k] for r in runs) for k in range(3)]
    print(f"median of {len(runs)}: first 5 s {med[0]:.2f} s (target < 10), sustained "
          f"{med[1]:.2f}x real time (target >= 1.2), whole job {med[2]:.1f} s")


if __name__ == "__main__":
    main()
