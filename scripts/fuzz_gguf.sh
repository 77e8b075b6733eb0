#!/usr/bin/env bash
# Fuzzes the GGUF reader: configures the "fuzz" preset (clang, libFuzzer, ASan+UBSan),
# builds gguf_reader_fuzz and its seed writer, generates a seed corpus (writer-made
# files plus the shared test models) and runs the fuzzer on one core.
# Usage: scripts/fuzz_gguf.sh [SECONDS=600] [MAX_LEN=65536]
# MAX_LEN caps input size: the shared models (1-8 MB) are then seen truncated, and
# the fuzzer stays fast on the small writer-made seeds that cover the structure.
set -euo pipefail
seconds=${1:-600}
max_len=${2:-65536}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2 --target gguf_reader_fuzz gguf_fuzz_seeds

work=build/fuzz/gguf_fuzz
seeds=$work/seeds
corpus=$work/corpus
mkdir -p "$seeds" "$corpus" "$work/artifacts"
build/fuzz/src/gguf/gguf_fuzz_seeds "$seeds"
shared=$root/../shared
for f in "$shared"/models/*.gguf "$shared"/tokenizer/ggml-vocab-llama-spm.gguf; do
  [ -f "$f" ] && cp -f "$f" "$seeds/"
done

# New inputs go to corpus/; seeds are read only. Crashes land in artifacts/.
build/fuzz/src/gguf/gguf_reader_fuzz "$corpus" "$seeds" \
  -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -timeout=20 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1
