// Model descriptions from GGUF headers and from the catalog (see model_desc.h).
#include "planner/model_desc.h"

#include <algorithm>
#include <cstdlib>

#include "model/arch.h"
#include "model/model.h"

namespace dhi::planner {

namespace {

constexpr std::string_view kCatalogQuants[] = {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"};

// Where a tensor's bytes go: layer i (>= 0) or one of the groups outside.
enum class Group { Layer, TokenEmbd, Output, Other };

Group classify(std::string_view name, int32_t n_layer, int32_t& layer) {
  if (name.rfind("blk.", 0) == 0) {
    const int32_t il = std::atoi(std::string(name.substr(4)).c_str());
    if (il >= 0 && il < n_layer) {
      layer = il;
      return Group::Layer;
    }
    return Group::Other;
  }
  if (name == "token_embd.weight") return Group::TokenEmbd;
  if (name == "output.weight" || name == "output_norm.weight") return Group::Output;
  return Group::Other;
}

void add_tensor(ModelDesc& d, std::string_view name, TensorType type, uint64_t n_elements, uint64_t n_bytes) {
  int32_t il = -1;
  switch (classify(name, d.n_layer, il)) {
    case Group::Layer: d.layer_bytes[size_t(il)] += n_bytes; break;
    case Group::TokenEmbd: d.token_embd_bytes += n_bytes; break;
    case Group::Output: d.output_bytes += n_bytes; break;
    case Group::Other: d.other_bytes += n_bytes; break;
  }
  d.bytes_by_type[type] += n_bytes;
  d.n_params += n_elements;
}

// Header sizes of typical files of each tokenizer family, from the vocab-only
// GGUFs llama.cpp ships (shared/tokenizer: deepseek-r1-qwen 5.93 MB, llama-bpe
// 7.82 MB) plus a tensor directory of ~100 bytes per tensor.
struct TokenizerFamily {
  uint64_t header_bytes, n_tokens;
};
TokenizerFamily tokenizer_family(std::string_view arch) {
  if (arch == "llama") return {7'820'000, 128'256};
  return {5'930'000, 151'665};
}

}  // namespace

uint64_t ModelDesc::weight_bytes() const {
  uint64_t total = token_embd_bytes + output_bytes + other_bytes;
  for (uint64_t b : layer_bytes) total += b;
  return total;
}

TensorType ModelDesc::dominant_type() const {
  TensorType best = TensorType::F32;
  uint64_t most = 0;
  for (const auto& [type, bytes] : bytes_by_type) {
    if (type != TensorType::F32 && bytes > most) {
      most = bytes;
      best = type;
    }
  }
  return best;
}

uint64_t ModelDesc::decode_weight_bytes() const {
  uint64_t total = output_bytes + other_bytes + (tied_output ? token_embd_bytes : 0);
  for (uint64_t b : layer_bytes) total += b;
  return total;
}

uint64_t ModelDesc::matmul_params() const {
  const uint64_t E = uint64_t(n_embd), Q = uint64_t(q_dim()), KV = uint64_t(kv_dim()), F = uint64_t(n_ff);
  const uint64_t per_layer = E * Q + 2 * E * KV + Q * E + 3 * E * F;
  return uint64_t(n_layer) * per_layer + E * uint64_t(n_vocab);
}

Expected<ModelDesc> describe_gguf(const gguf::GgufFile& file, std::string name) {
  DHI_ASSIGN_OR_RETURN(model::ModelConfig c, model::parse_config(file));
  ModelDesc d;
  d.name = std::move(name);
  d.arch = c.arch;
  d.n_embd = c.n_embd;
  d.n_layer = c.n_layer;
  d.n_head = c.n_head;
  d.n_head_kv = c.n_head_kv;
  d.head_dim = c.head_dim;
  d.n_ff = c.n_ff;
  d.n_vocab = c.n_vocab;
  d.n_ctx_train = c.n_ctx_train;
  d.tied_output = c.tied_output;
  d.layer_bytes.assign(size_t(c.n_layer), 0);
  for (const gguf::TensorInfo& t : file.tensors()) add_tensor(d, t.name, t.type, t.n_elements, t.n_bytes);
  d.quant = std::string(tensor_type_name(d.dominant_type()));
  d.header_bytes = file.data_offset();
  if (const gguf::Value* toks = file.find("tokenizer.ggml.tokens"); toks && toks->as_array())
    d.n_tokenizer_tokens = toks->as_array()->items.size();
  return d;
}

std::span<const std::string_view> catalog_quants() { return kCatalogQuants; }

Expected<ModelDesc> describe_catalog(const model::SynthPreset& p, std::string_view quant) {
  if (std::find(std::begin(kCatalogQuants), std::end(kCatalogQuants), quant) == std::end(kCatalogQuants)) {
    return make_error("catalog quant '", quant, "' is not one of F16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K");
  }
  DHI_ASSIGN_OR_RETURN(model::QuantMix mix, model::parse_quant_mix(quant));
  const model::ArchDef* arch = model::find_arch(p.arch);
  if (!arch) return make_error("catalog model ", p.name, ": unsupported architecture ", p.arch);
  ModelDesc d;
  d.name = std::string(p.name);
  d.quant = std::string(quant);
  d.arch = std::string(p.arch);
  d.n_embd = p.n_embd;
  d.n_layer = p.n_layer;
  d.n_head = p.n_head;
  d.n_head_kv = p.n_head_kv;
  d.head_dim = p.head_dim;
  d.n_ff = p.n_ff;
  d.n_vocab = p.n_vocab;
  d.n_ctx_train = p.n_ctx_train;
  d.layer_bytes.assign(size_t(p.n_layer), 0);
  const TokenizerFamily tf = tokenizer_family(p.arch);
  d.header_bytes = tf.header_bytes;
  d.n_tokenizer_tokens = tf.n_tokens;

  // The tensor set of model::Model::load for this architecture.
  const uint64_t E = uint64_t(p.n_embd), Q = uint64_t(p.n_head) * uint64_t(p.head_dim),
                 KV = uint64_t(p.n_head_kv) * uint64_t(p.head_dim), F = uint64_t(p.n_ff), V = uint64_t(p.n_vocab);
  const int32_t n_gqa = p.n_head / p.n_head_kv;
  Status bad;
  const auto matrix = [&](const std::string& name, uint64_t ne0, uint64_t ne1) {
    const TensorType t = model::mix_tensor_type(mix, name, p.n_layer, n_gqa);
    const std::optional<uint64_t> rb = row_bytes(t, ne0);
    if (!rb) {
      bad = make_error("catalog model ", p.name, ": tensor ", name, " has ", ne0, " columns, not a multiple of ",
                       tensor_type_name(t), "'s block");
      return;
    }
    add_tensor(d, name, t, ne0 * ne1, *rb * ne1);
  };
  const auto vec = [&](const std::string& name, uint64_t n) { add_tensor(d, name, TensorType::F32, n, 4 * n); };
  matrix("token_embd.weight", E, V);
  for (int32_t l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", E);
    matrix(b + "attn_q.weight", E, Q);
    matrix(b + "attn_k.weight", E, KV);
    matrix(b + "attn_v.weight", E, KV);
    if (arch->qkv_bias) {
      vec(b + "attn_q.bias", Q);
      vec(b + "attn_k.bias", KV);
      vec(b + "attn_v.bias", KV);
    }
    if (arch->qk_norm) {
      vec(b + "attn_q_norm.weight", uint64_t(p.head_dim));
      vec(b + "attn_k_norm.weight", uint64_t(p.head_dim));
    }
    matrix(b + "attn_output.weight", Q, E);
    vec(b + "ffn_norm.weight", E);
    matrix(b + "ffn_gate.weight", E, F);
    matrix(b + "ffn_up.weight", E, F);
    matrix(b + "ffn_down.weight", F, E);
  }
  vec("output_norm.weight", E);
  matrix("output.weight", E, V);
  // Llama 3.1 files carry the rope frequency divisors (head_dim / 2 floats).
  if (p.llama3_rope) vec("rope_freqs.weight", uint64_t(p.head_dim) / 2);
  if (!bad) return bad.error();
  return d;
}

Expected<ModelDesc> describe_catalog(std::string_view name, std::string_view quant) {
  std::string_view model_name = name;
  if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
    model_name = name.substr(0, colon);
    quant = name.substr(colon + 1);
  }
  const model::SynthPreset* p = model::find_synth_preset(model_name);
  if (!p) {
    std::string names;
    for (const model::SynthPreset& s : model::synth_presets()) names += (names.empty() ? "" : ", ") + std::string(s.name);
    return make_error("'", model_name, "' is neither a GGUF file nor a catalog model (", names, ")");
  }
  return describe_catalog(*p, quant);
}

}  // namespace dhi::planner
