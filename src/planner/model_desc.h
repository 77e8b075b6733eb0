// What the planner knows about a model before loading it: its shape and the
// exact bytes of its weights, per decoder layer and for the tensors outside the
// layers. Two sources give the same description: a GGUF file (its header only;
// tensor data is never read, so a file of any size is described in
// milliseconds) and the built-in catalog (model/synth_presets.h's shapes of the
// DeepSeek-R1 distills with llama.cpp's per-tensor types of a quant mix).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "gguf/reader.h"
#include "model/synth_presets.h"

namespace dhi::planner {

struct ModelDesc {
  std::string name;   // catalog name or file path
  std::string quant;  // the mix name (catalog) or the dominant type (file)
  std::string arch;
  int32_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
  uint32_t n_ctx_train = 0;
  bool tied_output = false;

  std::vector<uint64_t> layer_bytes;  // every tensor named blk.<i>.*
  uint64_t token_embd_bytes = 0;
  uint64_t output_bytes = 0;  // output.weight (0 when tied) and output_norm.weight
  uint64_t other_bytes = 0;   // anything else (rope_freqs.weight)
  std::map<TensorType, uint64_t> bytes_by_type;
  uint64_t n_params = 0;
  // Bytes before the tensor data in a GGUF file (metadata, tokenizer, tensor
  // directory); for a catalog entry, the size of a typical file's header.
  uint64_t header_bytes = 0;
  // Tokens in the tokenizer (what the tokenizer's tables scale with).
  uint64_t n_tokenizer_tokens = 0;

  uint64_t weight_bytes() const;
  // The matrix type that holds most of the layers' bytes: what decides which
  // kernels run (and so which calibration applies).
  TensorType dominant_type() const;
  // Weight bytes one decode step streams: every layer, the output head (the
  // whole embedding table when tied), not the embedding table (one row per token).
  uint64_t decode_weight_bytes() const;
  // Multiply-adds per token in the weight matrices (layers and output head).
  uint64_t matmul_params() const;
  int32_t q_dim() const { return n_head * head_dim; }
  int32_t kv_dim() const { return n_head_kv * head_dim; }
};

// From a parsed GGUF header (dhi-supported architectures: the shapes come from
// model::parse_config).
Expected<ModelDesc> describe_gguf(const gguf::GgufFile& file, std::string name);

// The quant mixes the catalog offers, in decreasing size.
std::span<const std::string_view> catalog_quants();
// A catalog model (`preset` from model::synth_presets()) in `quant` (one of
// catalog_quants()).
Expected<ModelDesc> describe_catalog(const model::SynthPreset& preset, std::string_view quant);
// By name: "r1-distill-qwen-7b" with quant, or "r1-distill-qwen-7b:Q4_K_M".
Expected<ModelDesc> describe_catalog(std::string_view name, std::string_view quant);

}  // namespace dhi::planner
