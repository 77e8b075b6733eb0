#!/usr/bin/env bash
# The README's CPU performance table: synthesizes the shape-faithful models
# (once, into $DHI_BENCH_DIR), runs `dhi bench` on each model and prints one
# Markdown row per model from the JSON (medians over the repetitions). Each
# repetition is its own `dhi bench -r 1` (load, prompt, generation) between two
# read-bandwidth probes (the one before it and the one `dhi bench` makes after
# it), and its bandwidth fraction is against their mean; the row shows the
# median fraction and the range of the probes. A shared host's bandwidth can
# move by 2x within minutes, so one probe for the whole table would misstate
# the rows far from it.
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

echo "| model | file | prompt tok/s (min–max) | gen tok/s (min–max) | TTFT | peak RSS | weights read per token | read GB/s (min–max) | bandwidth fraction (min–max) |"
echo "|---|---|---|---|---|---|---|---|---|"
for key in "${keys[@]}"; do
  file="$dir/r1-$key.gguf"
  before=$("$dhi" bench --bandwidth -t "$threads" --json | jq '.median_gbs')
  runs=""
  for _ in $(seq "$reps"); do
    json=$("$dhi" bench -m "$file" -p "$prompt" -n "$gen" -t "$threads" -r 1 --json)
    runs+=$(jq -c --argjson before "$before" '{prompt_tps, gen_tps, ttft_ms, peak_rss_bytes, file_bytes: .model.file_bytes,
      wpt: .weight_bytes_per_token, before: $before, after: .bandwidth_gbs,
      fraction: (.weight_bytes_per_token * .gen_tps / ((.bandwidth_gbs + $before) / 2 * 1e9))}' <<<"$json")
    before=$(jq '.bandwidth_gbs' <<<"$json")
  done
  jq -rs --arg key "$key" '
    def r(x; n): (x * pow(10; n) | round) / pow(10; n);
    def median: sort | .[(length - 1) / 2 | floor];
    def col(f; n): (map(f) | median) as $m | "\(r($m; n)) (\(r(map(f) | min; n))–\(r(map(f) | max; n)))";
    "| \($key) | \(r(.[0].file_bytes / 1e9; 2)) GB | \(col(.prompt_tps; 1)) | \(col(.gen_tps; 2))"
    + " | \(r(map(.ttft_ms) | median / 1000; 2)) s | \(r(map(.peak_rss_bytes) | max / 1073741824; 2)) GiB"
    + " | \(r(.[0].wpt / 1e9; 2)) GB | \(r(map(.before, .after) | min; 1))–\(r(map(.before, .after) | max; 1))"
    + " | \(r(map(.fraction) | median * 100; 0))% (\(r(map(.fraction) | min * 100; 0))–\(r(map(.fraction) | max * 100; 0))) |"' <<<"$runs"
done
