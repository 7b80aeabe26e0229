#!/usr/bin/env bash
# Benchmark: `sonantica analyze` against `ffmpeg -af ebur128=peak=true -f null -`
# on the same 44.1 kHz stereo FLAC, run side by side with hyperfine.
#
#   tools/bench/analyze_vs_ffmpeg.sh [INPUT]
#
# INPUT defaults to Wesnoth's "battle.ogg" (apt-get install wesnoth-1.16-music),
# converted to 16-bit FLAC; without it, 5 minutes of synthetic programme are made.
# Prints both timings and the speed ratio (ffmpeg time / sonantica time).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
command -v ffmpeg >/dev/null || { echo "needs ffmpeg (apt-get install ffmpeg)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=${1:-/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg}
flac="$work/input.flac"
if [ -f "$src" ]; then
  ffmpeg -v error -y -i "$src" -ar 44100 -ac 2 -c:a flac -sample_fmt s16 "$flac"
else
  ffmpeg -v error -y -f lavfi -i "anoisesrc=color=pink:sample_rate=44100:duration=300:amplitude=0.4" \
    -f lavfi -i "sine=frequency=220:sample_rate=44100:duration=300" \
    -filter_complex "[0]tremolo=f=0.2:d=0.6[n];[n][1]amerge=inputs=2[a]" -map "[a]" -c:a flac -sample_fmt s16 "$flac"
fi
cargo build --release --locked -q
bin=target/release/sonantica
duration=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$flac")
echo "input: $src → FLAC, ${duration} s, $(nproc) cores"

hyperfine --warmup 2 --runs 15 --export-json "$work/h.json" \
  -n sonantica "$bin analyze --json $flac" \
  -n ffmpeg "ffmpeg -nostats -hide_banner -i $flac -af ebur128=peak=true -f null -"
python3 - "$work/h.json" "$duration" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
dur = float(sys.argv[2])
s, f = r["sonantica"]["median"], r["ffmpeg"]["median"]
print(f"sonantica analyze: median {s:.3f} s ({dur/s:.0f}x real time)")
print(f"ffmpeg ebur128:    median {f:.3f} s ({dur/f:.0f}x real time)")
print(f"speed ratio (ffmpeg / sonantica): {f/s:.2f}x")
PY
