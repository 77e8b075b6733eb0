// Architecture registry: one ArchDef per supported `general.architecture`,
// each defined in its own arch_<name>.cpp from the shared blocks in blocks.h.
// Small differences between decoders are flags here, never copies of the
// forward pass. Adding an architecture is one file plus one line in arch.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace dhi::model {

class ForwardPass;

struct ArchDef {
  std::string_view name;
  RopeStyle rope_style;
  bool qkv_bias;  // attn_q/k/v carry .bias tensors
  bool qk_norm;   // per-head RMS norm of q and k before rope
  // Runs decoder layer `il` on the pass's residual stream.
  void (*build_layer)(ForwardPass& pass, int32_t il);
};

const ArchDef& arch_llama();
const ArchDef& arch_qwen2();
const ArchDef& arch_qwen3();

// nullptr when the architecture is not supported.
const ArchDef* find_arch(std::string_view name);
std::vector<std::string> arch_names();

}  // namespace dhi::model
