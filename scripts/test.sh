#!/usr/bin/env bash
# The whole test suite in one command: installs dependencies, then builds and runs
# every test twice, in Release and under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/install-deps.sh"
jobs="$(nproc)"

# Warnings are errors in the Release build; GCC 12's -O2 sanitizer builds report
# false "maybe uninitialized" warnings inside libstdc++ (std::regex, std::function).
for preset in release asan; do
  echo "== $preset build" >&2
  werror=ON
  [ "$preset" = asan ] && werror=OFF
  cmake --preset "$preset" -DDHI_BUILD_TESTS=ON -DDHI_WERROR=$werror >/dev/null
  cmake --build "build/$preset" -j "$jobs"
done

status=0
failed=()
for preset in release asan; do
  echo "== $preset tests" >&2
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "build/$preset" -j "$jobs" --output-on-failure; then
    status=1
    failed+=("$preset")
  fi
done
# A failure in the first build scrolls far up by the end: name it again last,
# and run it once more alone with its output (the status stays failed: a test
# that passes on the rerun is flaky, which is a bug too).
for preset in "${failed[@]}"; do
  echo "== $preset: failed tests (number:name)"
  cat "build/$preset/Testing/Temporary/LastTestsFailed.log" 2>/dev/null || echo "(ctest left no list)"
  echo "== $preset: the failed tests rerun once, alone"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "build/$preset" --rerun-failed --output-on-failure --timeout 300 || true
done
exit $status
