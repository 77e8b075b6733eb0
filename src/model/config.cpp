// Hyperparameters from GGUF metadata (`<arch>.*` keys, as written by the
// common GGUF converters) and the rope frequency factors of Llama 3.1.
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>

#include "model/arch.h"
#include "model/model.h"

namespace dhi::model {

namespace {

// Upper bounds that keep every later size computation far from overflow; real
// models are orders of magnitude below them.
constexpr uint64_t kMaxDim = 1u << 20;
constexpr uint64_t kMaxLayers = 4096;

Expected<int32_t> get_dim(const gguf::GgufFile& f, const std::string& key, std::optional<uint64_t> def,
                          uint64_t max = kMaxDim) {
  uint64_t v = 0;
  if (def) {
    DHI_ASSIGN_OR_RETURN(v, f.get_uint_or(key, *def));
  } else {
    DHI_ASSIGN_OR_RETURN(v, f.get_uint(key));
  }
  if (v == 0 || v > max) return make_error("metadata ", key, ": expected a value in [1, ", max, "], got ", v);
  return int32_t(v);
}

Expected<float> get_positive_float(const gguf::GgufFile& f, const std::string& key, double def) {
  DHI_ASSIGN_OR_RETURN(double v, f.get_float_or(key, def));
  if (!(v > 0.0) || !std::isfinite(v)) return make_error("metadata ", key, ": expected a positive number, got ", v);
  return float(v);
}

}  // namespace

Expected<ModelConfig> parse_config(const gguf::GgufFile& f) {
  ModelConfig c;
  DHI_ASSIGN_OR_RETURN(c.arch, f.get_string("general.architecture"));
  const ArchDef* arch = find_arch(c.arch);
  if (!arch) {
    std::string list;
    for (const auto& n : arch_names()) list += (list.empty() ? "" : ", ") + n;
    return make_error("unsupported architecture '", c.arch, "' (supported: ", list, ")");
  }
  c.rope_style = arch->rope_style;
  c.qkv_bias = arch->qkv_bias;
  c.qk_norm = arch->qk_norm;
  const std::string p = c.arch + ".";

  DHI_ASSIGN_OR_RETURN(c.n_embd, get_dim(f, p + "embedding_length", std::nullopt));
  DHI_ASSIGN_OR_RETURN(c.n_layer, get_dim(f, p + "block_count", std::nullopt, kMaxLayers));
  DHI_ASSIGN_OR_RETURN(c.n_ff, get_dim(f, p + "feed_forward_length", std::nullopt));
  DHI_ASSIGN_OR_RETURN(c.n_head, get_dim(f, p + "attention.head_count", std::nullopt));
  DHI_ASSIGN_OR_RETURN(c.n_head_kv, get_dim(f, p + "attention.head_count_kv", uint64_t(c.n_head)));
  if (c.n_head % c.n_head_kv != 0) {
    return make_error("metadata ", p, "attention.head_count (", c.n_head, ") is not a multiple of ", p,
                      "attention.head_count_kv (", c.n_head_kv, ")");
  }
  const uint64_t default_head_dim = uint64_t(c.n_embd / c.n_head);
  if (default_head_dim == 0 && !f.find(p + "attention.key_length")) {
    return make_error("metadata ", p, "embedding_length (", c.n_embd, ") is smaller than the head count (",
                      c.n_head, ")");
  }
  DHI_ASSIGN_OR_RETURN(c.head_dim, get_dim(f, p + "attention.key_length", default_head_dim, 1u << 14));
  DHI_ASSIGN_OR_RETURN(int32_t value_dim, get_dim(f, p + "attention.value_length", uint64_t(c.head_dim), 1u << 14));
  if (value_dim != c.head_dim) {
    return make_error("metadata ", p, "attention.value_length (", value_dim, ") differs from key_length (",
                      c.head_dim, "); not supported");
  }
  if (uint64_t(c.n_head) * uint64_t(c.head_dim) > kMaxDim) {
    return make_error("metadata: head_count * key_length = ", uint64_t(c.n_head) * uint64_t(c.head_dim),
                      " is too large");
  }
  DHI_ASSIGN_OR_RETURN(c.n_rot, get_dim(f, p + "rope.dimension_count", uint64_t(c.head_dim), 1u << 14));
  if (c.n_rot > c.head_dim || c.n_rot % 2 != 0) {
    return make_error("metadata ", p, "rope.dimension_count: expected an even value <= ", c.head_dim, ", got ",
                      c.n_rot);
  }
  DHI_ASSIGN_OR_RETURN(uint64_t n_ctx, f.get_uint_or(p + "context_length", 2048));
  if (n_ctx == 0 || n_ctx > (1u << 24)) return make_error("metadata ", p, "context_length: got ", n_ctx);
  c.n_ctx_train = uint32_t(n_ctx);

  DHI_ASSIGN_OR_RETURN(c.rms_eps, get_positive_float(f, p + "attention.layer_norm_rms_epsilon", 1e-5));
  DHI_ASSIGN_OR_RETURN(c.rope_base, get_positive_float(f, p + "rope.freq_base", 10000.0));

  // Rope scaling: `rope.scaling.type` (none/linear/llama3) with
  // `rope.scaling.factor`, or the older `rope.scale_linear`.
  DHI_ASSIGN_OR_RETURN(std::string scaling, f.get_string_or(p + "rope.scaling.type", ""));
  DHI_ASSIGN_OR_RETURN(float factor, get_positive_float(f, p + "rope.scaling.factor", 1.0));
  DHI_ASSIGN_OR_RETURN(float scale_linear, get_positive_float(f, p + "rope.scale_linear", 1.0));
  c.has_rope_freqs = f.find_tensor("rope_freqs.weight") != nullptr;
  if (scaling == "llama3") {
    c.rope_scaling = RopeScaling::Llama3;
    c.rope_llama3_factor = factor;
    DHI_ASSIGN_OR_RETURN(c.rope_llama3_low_freq, get_positive_float(f, p + "rope.scaling.low_freq_factor", 1.0));
    DHI_ASSIGN_OR_RETURN(c.rope_llama3_high_freq, get_positive_float(f, p + "rope.scaling.high_freq_factor", 4.0));
    DHI_ASSIGN_OR_RETURN(uint64_t orig, f.get_uint_or(p + "rope.scaling.original_context_length", 8192));
    if (orig == 0 || orig > (1u << 24)) return make_error("metadata ", p, "rope.scaling.original_context_length: got ", orig);
    c.rope_llama3_orig_ctx = uint32_t(orig);
    if (c.rope_llama3_high_freq <= c.rope_llama3_low_freq) {
      return make_error("metadata ", p, "rope.scaling: high_freq_factor must exceed low_freq_factor");
    }
  } else if (scaling == "linear" || (scaling.empty() && (factor != 1.0f || scale_linear != 1.0f))) {
    c.rope_scaling = RopeScaling::Linear;
    c.rope_scale = factor != 1.0f ? factor : scale_linear;
  } else if (scaling.empty() || scaling == "none") {
    c.rope_scaling = RopeScaling::None;
  } else {
    return make_error("metadata ", p, "rope.scaling.type: unsupported value '", scaling,
                      "' (supported: none, linear, llama3)");
  }

  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) return make_error("missing tensor token_embd.weight");
  if (embd->dims.size() < 2 || embd->dims[1] == 0 || embd->dims[1] > (1u << 24)) {
    return make_error("tensor token_embd.weight: expected shape [", c.n_embd, ", n_vocab]");
  }
  c.n_vocab = int32_t(embd->dims[1]);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

std::vector<float> rope_freq_factors(const gguf::GgufFile& f, const ModelConfig& c) {
  const int32_t half = c.n_rot / 2;
  if (const gguf::TensorInfo* t = f.find_tensor("rope_freqs.weight")) {
    // Shape and type are validated by the loader before this is called.
    std::vector<float> out(static_cast<size_t>(half));
    std::memcpy(out.data(), t->data, size_t(half) * sizeof(float));
    return out;
  }
  if (c.rope_scaling != RopeScaling::Llama3) return {};
  // Llama 3.1: wavelengths shorter than orig_ctx/high_freq keep their
  // frequency, longer than orig_ctx/low_freq are divided by `factor`, and the
  // band between is interpolated linearly in orig_ctx/wavelength.
  std::vector<float> out(static_cast<size_t>(half));
  const double low_wavelen = double(c.rope_llama3_orig_ctx) / c.rope_llama3_low_freq;
  const double high_wavelen = double(c.rope_llama3_orig_ctx) / c.rope_llama3_high_freq;
  for (int32_t i = 0; i < half; ++i) {
    const double freq = std::pow(double(c.rope_base), -2.0 * i / double(c.n_rot));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double divisor = 1.0;
    if (wavelen > low_wavelen) {
      divisor = c.rope_llama3_factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (double(c.rope_llama3_orig_ctx) / wavelen - c.rope_llama3_low_freq) /
                            (c.rope_llama3_high_freq - c.rope_llama3_low_freq);
      const double new_freq = (1.0 - smooth) * freq / c.rope_llama3_factor + smooth * freq;
      divisor = freq / new_freq;
    }
    out[size_t(i)] = float(divisor);
  }
  return out;
}

}  // namespace dhi::model
