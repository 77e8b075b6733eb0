// Llama (Touvron et al. 2023, "Llama 2"; Meta's Llama 3/3.1 model cards; also
// DeepSeek-R1-Distill-Llama): pre-norm decoder, RMS norm, rope on adjacent
// pairs ("NORM" style), grouped-query attention, SwiGLU FFN. Llama 3.1's
// frequency smoothing comes in as rope frequency factors (config.cpp).
#include "model/arch.h"
#include "model/blocks.h"

namespace dhi::model {

const ArchDef& arch_llama() {
  static const ArchDef def{"llama", RopeStyle::Norm, /*qkv_bias=*/false, /*qk_norm=*/false,
                           &pre_norm_decoder_layer};
  return def;
}

}  // namespace dhi::model
