// Shared set-up of the kernel benchmarks: the JSON context every report carries
// (CPU model, ISA path, thread count, git revision) and random weight matrices.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor_type.h"

namespace dhi::bench {

// Adds cpu_model, isa, git_revision to Google Benchmark's context. Returns false
// (after printing why) when DHI_FORCE_ISA names an ISA this CPU cannot run.
bool add_context();

// n_rows x n_cols weights of type t, quantized from N(0, 1/n_cols) floats.
std::vector<uint8_t> random_matrix(TensorType t, int64_t n_rows, int64_t n_cols, uint64_t seed);

}  // namespace dhi::bench
