// Qwen2 (Qwen2 technical report, 2024; also DeepSeek-R1-Distill-Qwen): the
// Llama decoder with biases on the q/k/v projections and rope on the two
// halves of each head (GPT-NeoX style).
#include "model/arch.h"
#include "model/blocks.h"

namespace dhi::model {

const ArchDef& arch_qwen2() {
  static const ArchDef def{"qwen2", RopeStyle::Neox, /*qkv_bias=*/true, /*qk_norm=*/false,
                           &pre_norm_decoder_layer};
  return def;
}

}  // namespace dhi::model
