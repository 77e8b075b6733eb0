#!/usr/bin/env bash
# The README's CPU performance table: synthesizes the shape-faithful models
# (once, into $DHI_BENCH_DIR), runs `dhi bench` on each model and prints one
# Markdown row per model from the JSON (medians over the repetitions).
# `dhi bench` probes the read bandwidth before the first repetition and after
# each, and each repetition's fraction is against the mean of its two probes;
# the row shows the median fraction over the steady repetitions (probes within
# 15% of each other), how many were steady, and the range of the probes. A
# shared host's bandwidth can move by 2x within minutes, so one probe for the
# whole table would misstate the rows far from it.
#
#   scripts/bench_cpu.sh [-p 512] [-n 128] [-r 3] [-t 2] [MODEL_KEY...]
#   MODEL_KEY: 1.5b-f16 1.5b-q8_0 1.5b-q4_k_m 7b-q4_k_m (default: all four)
# Needs jq (Debian package jq). Models are written to $DHI_BENCH_DIR
# (default /tmp/dhi-bench); never commit them.
set -euo pipefail

prompt=512 gen=128 reps=3 threads=2
while getopts "p:n:r:t:" opt; do
  case "$opt" in
    p) prompt=$OPTARG ;; n) gen=$OPTARG ;; r) reps=$OPTARG ;; t) threads=$OPTARG ;;
    *) echo "usage: $0 [-p N] [-n N] [-r N] [-t N] [MODEL_KEY...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
keys=("$@")
[ ${#keys[@]} -eq 0 ] && keys=(1.5b-f16 1.5b-q8_0 1.5b-q4_k_m 7b-q4_k_m)

root=$(cd "$(dirname "$0")/.." && pwd)
dhi="$root/build/release/src/cli/dhi"
vocab="$root/../shared/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf"
dir=${DHI_BENCH_DIR:-/tmp/dhi-bench}
command -v jq >/dev/null || { echo "bench_cpu.sh: needs jq (apt-get install jq)" >&2; exit 1; }
[ -x "$dhi" ] || { echo "bench_cpu.sh: build first (scripts/dhi builds $dhi)" >&2; exit 1; }
mkdir -p "$dir"

preset_of() { case "$1" in 1.5b-*) echo r1-distill-qwen-1.5b ;; 7b-*) echo r1-distill-qwen-7b ;; esac; }
quant_of() { echo "${1#*-}" | tr '[:lower:]' '[:upper:]'; }

for key in "${keys[@]}"; do
  preset=$(preset_of "$key")
  [ -n "$preset" ] || { echo "bench_cpu.sh: unknown model key '$key'" >&2; exit 2; }
  file="$dir/r1-$key.gguf"
  [ -f "$file" ] || "$dhi" synth "$preset" -q "$(quant_of "$key")" --vocab "$vocab" -o "$file" >&2
done

echo "| model | file | prompt tok/s (min–max) | gen tok/s (min–max) | TTFT | peak RSS | weights read per token | read GB/s (min–max) | bandwidth fraction (min–max) | steady runs |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for key in "${keys[@]}"; do
  "$dhi" bench -m "$dir/r1-$key.gguf" -p "$prompt" -n "$gen" -t "$threads" -r "$reps" --json |
    jq -r --arg key "$key" '
      def r(x; n): (x * pow(10; n) | round) / pow(10; n);
      def col(s; n): "\(r(s.median; n)) (\(r(s.min; n))–\(r(s.max; n)))";
      def pct(x): "\(r(x * 100; 0))";
      [.bandwidth.probes[].median_gbs] as $probes
      | "| \($key) | \(r(.model.file_bytes / 1e9; 2)) GB | \(col(.spread.prompt_tps; 1)) | \(col(.spread.gen_tps; 2))"
      + " | \(r(.ttft_ms / 1000; 2)) s | \(r(.peak_rss_bytes / 1073741824; 2)) GiB"
      + " | \(r(.weight_bytes_per_token / 1e9; 2)) GB | \(r($probes | min; 1))–\(r($probes | max; 1))"
      + " | \(pct(.bandwidth_fraction))% (\(pct(.spread.bandwidth_fraction.min))–\(pct(.spread.bandwidth_fraction.max)))"
      + " | \(.steady_runs) of \(.reps) |"'
done
