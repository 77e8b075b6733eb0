#!/usr/bin/env bash
# Capacity planner vs. measurement on this machine: for each model and context,
# the peak RSS `dhi plan` predicts for `dhi run` next to the maximum resident
# set size /usr/bin/time -v measures, and the decode speed it predicts next to
# `dhi bench`. Prints a Markdown table (the one in README.md, "Capacity
# planning") and exits non-zero when a row is outside +-10% (RSS) or, for
# models of at least 100 MB, +-25% (decode). The tiny shared models decode in
# well under a millisecond, all fixed costs (thread hand-offs, small ops) that
# swing by tens of percent between runs on a loaded machine; their decode
# error is printed but not checked. Each decode prediction is made at the read
# bandwidth `dhi bench` probed around its own repetitions (this host's moves
# within minutes), and every calibration run keeps the bandwidth of its own
# repetitions; the calibrated fractions are what is checked.
#
# Calibration goes into a fresh file (nothing of the user's is read): the
# per-layer fixed cost from stories260K; then, per weight type, the decode and
# prefill fractions from a half-depth (14-layer) 1.5B-shape model synthesized
# for the purpose (the Q4_K_M one benched at two prompt lengths for the
# attention cost), each followed at once by the check of the 28-layer model, so
# the models checked are not the ones calibrated on. The constants in use are
# printed to stderr (planner/calibration.cpp's defaults come from them).
#
# Usage: scripts/plan_check.sh [build dir]   (default build/release)
# Models: ../shared/models/*.gguf and 1.5B-shape Q4_K_M, Q8_0 and F16 models
# synthesized into a temporary folder (one at a time: up to 3.5 GB of disk).
# Takes ~10 minutes on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
shared=${DHI_SHARED_DIR:-$root/../shared}
vocab=$shared/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf
work=$(mktemp -d /tmp/dhi-plan-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A copy, so rebuilding while this runs changes nothing.
cp "$build/src/cli/dhi" "$work/dhi"
dhi=$work/dhi
export DHI_CALIBRATION=$work/calibration.json

json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

prompt="Once upon a time there was a little robot who wanted to learn how memory works. \
It asked the kernel how many pages it could have, and the kernel said: count them first."

# Of a `dhi bench --json` file: the median generation speed and bandwidth of
# the runs whose probes agreed (all runs when none did), and a note on them.
bench_summary() {
  python3 - "$1" <<'EOF'
import json, statistics, sys
j = json.load(open(sys.argv[1]))
runs = [r for r in j["runs"] if r["bandwidth_steady"]] or j["runs"]
tps = statistics.median(r["gen_tps"] for r in runs)
probes = ", ".join(f"{p['median_gbs']:.1f}" for p in j["bandwidth"]["probes"])
print(tps, j["bandwidth_gbs"], f"probes {probes} GB/s, {j['steady_runs']} of {len(j['runs'])} runs steady")
EOF
}

# One table row per context for model $1, against the calibration as it is now.
check() {
  local m=$1
  train=$("$dhi" plan "$m" --ctx 1 --json | json "j['n_ctx_train']")
  for want in 512 4096; do
    ctx=$want
    if [ "$train" -gt 0 ] && [ "$train" -lt "$ctx" ]; then ctx=$train; fi
    # Peak RSS of a real run; the plan for the micro-batch that run used.
    /usr/bin/time -v "$dhi" run -m "$m" --raw -p "$prompt" -n 16 --ctx $ctx --temp 0 --json \
      >"$work/run.json" 2>"$work/time.txt"
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\)/\1/p' "$work/time.txt")
    rss=$((rss * 1024))
    n_prompt=$(json "len(j['prompt_tokens'])" <"$work/run.json")
    pred_rss=$("$dhi" plan "$m" --ctx $ctx --batch $n_prompt --json | json "j['memory_bytes']['total']")
    # Decode around the plan's average position (half the context), F16 cache
    # as dhi bench uses.
    n_gen=64
    n_bench_prompt=$((ctx / 2 - n_gen / 2))
    if [ "$(stat -c %s "$m")" -gt 100000000 ]; then n_gen=32; n_bench_prompt=$((ctx / 2 - n_gen / 2)); fi
    # The host's read bandwidth moves by tens of percent within minutes (other
    # tenants), so the prediction is made at the bandwidth of the bench's own
    # minutes: dhi bench probes it before and after every repetition (a custom
    # device: this machine's RAM at that bandwidth, the calibrated fractions
    # as they are).
    "$dhi" bench -m "$m" -p $n_bench_prompt -n $n_gen -r 3 -t $threads --json >"$work/bench.json"
    read -r bench_tps bw note < <(bench_summary "$work/bench.json")
    pred_tps=$("$dhi" plan "$m" --ctx $ctx --kv-type f16 --ram $ram_gb --bandwidth $bw -t $threads --json |
      json "j['predicted_decode_tps']")
    bw_note="${bw_note}$(basename "$m") ctx $ctx: predicted at $(printf %.1f "$bw") GB/s; $note"$'\n'
    python3 - "$m" "$ctx" "$(stat -c %s "$m")" "$pred_rss" "$rss" "$pred_tps" "$bench_tps" <<'EOF' || fail=1
import os, sys
m, ctx = sys.argv[1], sys.argv[2]
size, pr, r, pt, bt = map(float, sys.argv[3:])
er, et = (pr - r) / r, (pt - bt) / bt
checked = size >= 100e6
print(f"| {os.path.basename(m)} | {ctx} | {pr / 2**20:.1f} MiB | {r / 2**20:.1f} MiB | {er * 100:+.1f}% "
      f"| {pt:.1f} tok/s | {bt:.1f} tok/s | {et * 100:+.1f}%{'' if checked else ' (not checked)'} |")
sys.exit(0 if abs(er) <= 0.10 and (not checked or abs(et) <= 0.25) else 1)
EOF
  done
}

fail=0
threads=$(nproc)
ram_gb=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
bw_note=""
echo "| model | ctx | predicted RSS | measured RSS | error | predicted decode | bench decode | error |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
echo "calibrating the per-layer cost on stories260K" >&2
"$dhi" bench -m "$shared/models/stories260K.gguf" -p 64 -n 256 -r 3 --calibrate --json >/dev/null
for m in "$shared"/models/*.gguf; do check "$m"; done

# Per weight type: calibrate on a 14-layer model, then check the 28-layer one
# straight after, so the machine's drift between the two stays small. Both are
# written now: the same bytes decode up to 15% slower from a file whose
# page-cache pages were evicted and read back (README, "Prediction against
# measurement"), so an old file would measure the page cache.
for q in Q4_K_M Q8_0 F16; do
  echo "calibrating $q on a 14-layer 1.5B-shape model" >&2
  cal=$work/cal-$q.gguf
  "$dhi" synth r1-distill-qwen-1.5b -q $q --layers 14 --vocab "$vocab" -o "$cal" 2>/dev/null
  "$dhi" bench -m "$cal" -p 64 -n 32 -r 5 --calibrate --json >/dev/null
  if [ $q = Q4_K_M ]; then
    # Attention at a cache (14 layers x 2048 positions) beyond the L3 cache.
    "$dhi" bench -m "$cal" -p 2048 -n 32 -r 5 --calibrate --json >/dev/null
  fi
  rm -f "$cal"
  f=$work/r1-1.5b-${q,,}.gguf
  "$dhi" synth r1-distill-qwen-1.5b -q $q --vocab "$vocab" -o "$f" 2>/dev/null
  check "$f"
  "$dhi" plan "$f" --ctx 512 --json | json "'$q constants: ' + str(j['cpu_speed'])" >&2
  rm -f "$f"
done
"$dhi" plan "$shared/models/stories260K.gguf" --ctx 512 --json | json "'source: ' + j['speed_source']" >&2
printf '%s' "$bw_note" >&2
exit $fail
