// Machine memory read bandwidth: the ceiling that token generation runs
// against, since a decode step streams every weight matrix from memory once.
// `dhi bench --bandwidth` reports it, and `dhi bench -m` divides the model's
// achieved weight traffic by it (bandwidth_fraction).
#pragma once

#include <cstdint>
#include <vector>

#include "core/expected.h"

namespace dhi::engine {

struct BandwidthParams {
  uint64_t buffer_bytes = uint64_t(1) << 30;  // large enough to defeat every cache level
  int32_t passes = 7;                          // full reads of the buffer; the median counts
  int32_t n_threads = 0;                       // 0: all cores
};

struct BandwidthResult {
  double median_gbs = 0;        // 1e9 bytes per second, median over passes
  double min_gbs = 0, max_gbs = 0;
  std::vector<double> pass_gbs;  // every pass, in order
  int32_t n_threads = 0;
  uint64_t buffer_bytes = 0;
};

// Fills a buffer (so every page is resident), then times `passes` multi-threaded
// streaming reads of it: each thread sums its own contiguous slice with several
// independent accumulators so loads, not the add chain, set the pace.
Expected<BandwidthResult> measure_read_bandwidth(const BandwidthParams& params);

// The same measurement in a forked child process: its buffer never enters
// this process's address space or its peak RSS (getrusage RUSAGE_SELF), so a
// model benchmark can probe the bandwidth between its repetitions and still
// report the model's own peak. Call it while no other thread of this process
// holds a lock the measurement needs (between repetitions, with the model's
// thread pool gone).
Expected<BandwidthResult> measure_read_bandwidth_in_child(const BandwidthParams& params);

}  // namespace dhi::engine
