// Qwen3 (Qwen3 technical report, 2025): the Llama decoder without biases, with
// a per-head RMS norm on q and k before rope (blk.N.attn_q_norm / attn_k_norm),
// NEOX-style rope and a head size that may differ from n_embd / n_head
// (qwen3.attention.key_length).
#include "model/arch.h"
#include "model/blocks.h"

namespace dhi::model {

const ArchDef& arch_qwen3() {
  static const ArchDef def{"qwen3", RopeStyle::Neox, /*qkv_bias=*/false, /*qk_norm=*/true,
                           &pre_norm_decoder_layer};
  return def;
}

}  // namespace dhi::model
