// Presets, quantization mixes and the streaming random-model writer (see
// synth_presets.h).
#include "model/synth_presets.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>

#include "core/fp16.h"
#include "core/thread_pool.h"
#include "gguf/writer.h"
#include "model/arch.h"
#include "quant/quant.h"

namespace dhi::model {

namespace {

// Shapes from the config.json of each repository (hidden_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
// vocab_size, max_position_embeddings, rms_norm_eps, rope_theta, rope_scaling).
// All four have untied output matrices; the Qwen2 ones have q/k/v biases
// (architecture qwen2), Qwen3 q/k norms (qwen3). R1-0528-Qwen3-8B's YaRN
// scaling is not modelled (dhi reads none/linear/llama3): same shapes and cost.
constexpr SynthPreset kPresets[] = {
    {"r1-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "qwen2", 1536, 28, 12, 2, 128, 8960,
     151936, 131072, 1e-6f, 10000.0f, false},
    {"r1-distill-qwen-7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "qwen2", 3584, 28, 28, 4, 128, 18944, 152064,
     131072, 1e-6f, 10000.0f, false},
    {"r1-distill-llama-8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "llama", 4096, 32, 32, 8, 128, 14336,
     128256, 131072, 1e-5f, 500000.0f, true},
    {"r1-0528-qwen3-8b", "deepseek-ai/DeepSeek-R1-0528-Qwen3-8B", "qwen3", 4096, 36, 32, 8, 128, 12288, 151936,
     131072, 1e-6f, 1000000.0f, false},
    {"r1-distill-qwen-14b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "qwen2", 5120, 48, 40, 8, 128, 13824,
     152064, 131072, 1e-5f, 1000000.0f, false},
    {"r1-distill-qwen-32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "qwen2", 5120, 64, 40, 8, 128, 27648,
     152064, 131072, 1e-5f, 1000000.0f, false},
    {"r1-distill-llama-70b", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "llama", 8192, 80, 64, 8, 128, 28672,
     128256, 131072, 1e-5f, 500000.0f, true},
};

// --- Random numbers -----------------------------------------------------------

// SplitMix64: tiny state, good enough statistics for weights, ~1 ns per 64 bits.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float symmetric() { return float(int64_t(next() >> 40) - (int64_t(1) << 23)) * (1.0f / float(1 << 23)); }
  void fill(uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t v = next();
      std::memcpy(p + i, &v, 8);
    }
    if (i < n) {
      const uint64_t v = next();
      std::memcpy(p + i, &v, n - i);
    }
  }

 private:
  uint64_t s_;
};

uint64_t stream_seed(uint64_t seed, uint64_t tensor, uint64_t chunk) {
  Rng r(seed ^ (tensor * 0xD1B54A32D192ED03ull) ^ (chunk * 0x8CB92BA72F3D8DD7ull));
  r.next();
  return r.next();
}

// --- What each tensor holds -----------------------------------------------------

struct Plan {
  std::string name;
  TensorType type;
  uint64_t ne0, ne1;  // ne1 = 1 for vectors
  float mean, sd;     // value distribution (uniform with this mean and standard deviation)
  std::vector<float> values;  // explicit contents instead (rope_freqs)
  uint64_t n_bytes() const { return *row_bytes(type, ne0) * ne1; }
};

// Uniform draws with standard deviation sd: half-width sd * sqrt(3).
constexpr float kSqrt3 = 1.7320508f;

// Writes n_rows rows of plan p (starting at row0) into dst, from the stream rng.
// Quantized types: random quants with the scales that give standard deviation sd
// around mean 0 (per-block scales jittered +-25% so blocks differ).
void fill_rows(const Plan& p, uint64_t row0, uint64_t n_rows, Rng& rng, uint8_t* dst) {
  const uint64_t n = p.ne0 * n_rows;
  const float half = p.sd * kSqrt3;
  const auto jitter = [&] { return 1.0f + 0.25f * rng.symmetric(); };
  if (!p.values.empty()) {
    std::memcpy(dst, p.values.data() + row0 * p.ne0, n * sizeof(float));
    return;
  }
  switch (p.type) {
    case TensorType::F32: {
      float* y = reinterpret_cast<float*>(dst);
      for (uint64_t i = 0; i < n; ++i) y[i] = p.mean + half * rng.symmetric();
      return;
    }
    case TensorType::F16:
    case TensorType::BF16: {
      const bool f16 = p.type == TensorType::F16;
      for (uint64_t i = 0; i < n; ++i) {
        const float v = p.mean + half * rng.symmetric();
        const uint16_t h = f16 ? f32_to_fp16(v) : f32_to_bf16(v);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    }
    case TensorType::Q8_0: {
      // qs uniform in [-127, 127]: standard deviation 73.3 quanta.
      const float d0 = p.sd / 73.3f;
      for (uint64_t b = 0; b < n / QK_LEGACY; ++b) {
        BlockQ8_0 blk;
        blk.d = f32_to_fp16(d0 * jitter());
        rng.fill(reinterpret_cast<uint8_t*>(blk.qs), sizeof blk.qs);
        for (int8_t& q : blk.qs) q = q == -128 ? int8_t(-127) : q;
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    }
    case TensorType::Q4_0: {
      // x = d (q - 8), q uniform in 0..15: standard deviation 4.61 d.
      const float d0 = p.sd / 4.61f;
      for (uint64_t b = 0; b < n / QK_LEGACY; ++b) {
        BlockQ4_0 blk;
        blk.d = f32_to_fp16(d0 * jitter());
        rng.fill(blk.qs, sizeof blk.qs);
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    }
    case TensorType::Q4_K: {
      // Every sub-block scale 8 and min 15 (both < 16, so the 12 packed bytes
      // need no high bits): x = 8 d q - 15 dmin with dmin = 4 d is 8 d (q - 7.5),
      // zero mean, standard deviation 8 d * 4.61.
      const float d0 = p.sd / (8.0f * 4.61f);
      for (uint64_t b = 0; b < n / QK_K; ++b) {
        BlockQ4_K blk;
        const float d = d0 * jitter();
        blk.d = f32_to_fp16(d);
        blk.dmin = f32_to_fp16(4.0f * d);
        for (int j = 0; j < 4; ++j) {
          blk.scales[j] = 8;
          blk.scales[j + 4] = 15;
          blk.scales[j + 8] = uint8_t(8 | (15 << 4));
        }
        rng.fill(blk.qs, sizeof blk.qs);
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    }
    case TensorType::Q6_K: {
      // x = d * 16 * (q - 32), q uniform in 0..63: standard deviation 16 d * 18.47.
      const float d0 = p.sd / (16.0f * 18.47f);
      for (uint64_t b = 0; b < n / QK_K; ++b) {
        BlockQ6_K blk;
        rng.fill(blk.ql, sizeof blk.ql);
        rng.fill(blk.qh, sizeof blk.qh);
        for (int8_t& s : blk.scales) s = 16;
        blk.d = f32_to_fp16(d0 * jitter());
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
      return;
    }
    default: {
      // Other types: quantize uniform floats with the reference quantizer.
      std::vector<float> row(static_cast<size_t>(p.ne0));
      const uint64_t rb = *row_bytes(p.type, p.ne0);
      for (uint64_t r = 0; r < n_rows; ++r) {
        for (float& v : row) v = p.mean + half * rng.symmetric();
        quantize_row(p.type, row.data(), dst + r * rb, int64_t(p.ne0));
      }
      return;
    }
  }
}

// The tensors of synth.h's set for `s`, with their distributions.
Expected<std::vector<Plan>> plan_tensors(const SynthSpec& s, const SynthFileOptions& o, int32_t n_vocab,
                                         int32_t head_dim) {
  const ArchDef* arch = find_arch(s.arch);
  if (!arch) return make_error("synth: unsupported architecture '", s.arch, "'");
  const uint64_t E = uint64_t(s.n_embd), Q = uint64_t(s.n_head) * uint64_t(head_dim),
                 KV = uint64_t(s.n_head_kv) * uint64_t(head_dim), F = uint64_t(s.n_ff), V = uint64_t(n_vocab);
  std::vector<Plan> plans;
  const auto type_of = [&](const std::string& name) { return s.type_for ? s.type_for(name) : s.weight_type; };
  const auto matrix = [&](std::string name, uint64_t ne0, uint64_t ne1, float sd) {
    const TensorType t = type_of(name);
    plans.push_back({std::move(name), t, ne0, ne1, 0.0f, sd, {}});
  };
  const auto vec = [&](std::string name, uint64_t n, float mean, float sd) {
    plans.push_back({std::move(name), TensorType::F32, n, 1, mean, sd, {}});
  };
  const auto inv_sqrt = [](uint64_t fan_in) { return 1.0f / std::sqrt(float(fan_in)); };
  matrix("token_embd.weight", E, V, 0.3f);
  for (int32_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", E, 1.0f, 0.1f);
    matrix(b + "attn_q.weight", E, Q, inv_sqrt(E));
    matrix(b + "attn_k.weight", E, KV, inv_sqrt(E));
    matrix(b + "attn_v.weight", E, KV, inv_sqrt(E));
    if (arch->qkv_bias) {
      vec(b + "attn_q.bias", Q, 0.0f, 0.5f);
      vec(b + "attn_k.bias", KV, 0.0f, 0.5f);
      vec(b + "attn_v.bias", KV, 0.0f, 0.5f);
    }
    if (arch->qk_norm) {
      vec(b + "attn_q_norm.weight", uint64_t(head_dim), 1.0f, 0.2f);
      vec(b + "attn_k_norm.weight", uint64_t(head_dim), 1.0f, 0.2f);
    }
    matrix(b + "attn_output.weight", Q, E, inv_sqrt(Q));
    vec(b + "ffn_norm.weight", E, 1.0f, 0.1f);
    matrix(b + "ffn_gate.weight", E, F, inv_sqrt(E));
    matrix(b + "ffn_up.weight", E, F, inv_sqrt(E));
    matrix(b + "ffn_down.weight", F, E, inv_sqrt(F));
  }
  vec("output_norm.weight", E, 1.0f, 0.1f);
  // Logits spread over a few units, as in synth.cpp.
  if (!s.tied_output) matrix("output.weight", E, V, 3.0f * inv_sqrt(E));
  if (!o.rope_freqs.empty()) {
    plans.push_back({"rope_freqs.weight", TensorType::F32, o.rope_freqs.size(), 1, 0.0f, 0.0f, o.rope_freqs});
  } else if (s.rope_freqs) {
    // synth.cpp's ramp of divisors from 1 to 8.
    const int32_t half = head_dim / 2;
    std::vector<float> ff(static_cast<size_t>(half));
    for (int32_t i = 0; i < half; ++i) ff[size_t(i)] = 1.0f + 7.0f * float(i) / float(std::max(1, half - 1));
    plans.push_back({"rope_freqs.weight", TensorType::F32, uint64_t(half), 1, 0.0f, 0.0f, std::move(ff)});
  }
  for (const Plan& p : plans) {
    if (!row_bytes(p.type, p.ne0))
      return make_error("synth: tensor ", p.name, ": ", p.ne0, " columns are not a multiple of ",
                        tensor_type_name(p.type), "'s block of ", type_info(p.type).block_size);
  }
  return plans;
}

// Tokenizer keys of the vocab source, padded to n_vocab_min with unused tokens.
Expected<int32_t> copy_vocab(gguf::GgufWriter& w, const gguf::GgufFile& src, int32_t n_vocab_min) {
  const gguf::Value* toks = src.find("tokenizer.ggml.tokens");
  if (!toks || !toks->as_array()) return make_error("synth: vocab source has no tokenizer.ggml.tokens array");
  const size_t n = toks->as_array()->items.size();
  if (n < 3 || n > size_t(1) << 24) return make_error("synth: vocab source has ", n, " tokens");
  for (const auto& [key, value] : src.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
  }
  if (n_vocab_min <= 0 || size_t(n_vocab_min) <= n) return int32_t(n);
  // Padding as the real files do: unused entries the model never produces.
  // (Values share their arrays, so each padded array is built anew.)
  const auto padded = [&](const gguf::Array& a, const auto& make_item) {
    std::vector<gguf::Value> items = a.items;
    for (size_t i = n; i < size_t(n_vocab_min); ++i) items.push_back(make_item(i));
    return gguf::Value::make_array(a.elem_type, std::move(items));
  };
  w.set("tokenizer.ggml.tokens", padded(*toks->as_array(), [](size_t i) {
          std::string t = "[PAD";
          t.append(std::to_string(i)).append("]");
          return gguf::Value::make_string(std::move(t));
        }));
  const gguf::Value* types = src.find("tokenizer.ggml.token_type");
  if (types && types->as_array() && types->as_array()->items.size() == n) {
    w.set("tokenizer.ggml.token_type", padded(*types->as_array(), [](size_t) {
            return gguf::Value::make_int(gguf::ValueType::INT32, 5);  // unused
          }));
  }
  const gguf::Value* scores = src.find("tokenizer.ggml.scores");
  if (scores && scores->as_array() && scores->as_array()->items.size() == n) {
    w.set("tokenizer.ggml.scores", padded(*scores->as_array(), [](size_t) {
            return gguf::Value::make_float(gguf::ValueType::FLOAT32, 0.0);
          }));
  }
  return n_vocab_min;
}

}  // namespace

std::span<const SynthPreset> synth_presets() { return kPresets; }

const SynthPreset* find_synth_preset(std::string_view name) {
  for (const SynthPreset& p : kPresets)
    if (p.name == name) return &p;
  return nullptr;
}

Expected<QuantMix> parse_quant_mix(std::string_view name) {
  struct Named {
    std::string_view name;
    TensorType base;
    MixRule rule;
  };
  static constexpr Named kMixes[] = {
      {"Q2_K", TensorType::Q2_K, MixRule::Q2_K},       {"Q3_K_M", TensorType::Q3_K, MixRule::Q3_K_M},
      {"Q4_K_M", TensorType::Q4_K, MixRule::Q4_K_M},   {"Q5_K_M", TensorType::Q5_K, MixRule::Q5_K_M},
      {"Q6_K", TensorType::Q6_K, MixRule::Q6_K},
  };
  for (const Named& m : kMixes)
    if (m.name == name) return QuantMix{std::string(name), m.base, m.rule};
  const std::optional<TensorType> t = tensor_type_from_name(name);
  if (!t || *t == TensorType::Q8_1 || *t == TensorType::Q8_K || !quant_traits(*t)) {
    return make_error("unknown quantization '", name,
                      "' (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K, Q2_K, Q3_K_M, "
                      "Q4_K_M, Q5_K_M, Q6_K)");
  }
  return QuantMix{std::string(name), *t, MixRule::Plain};
}

bool use_more_bits(int32_t i_layer, int32_t n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

TensorType mix_tensor_type(const QuantMix& mix, std::string_view name, int32_t n_layer, int32_t n_gqa) {
  if (mix.rule == MixRule::Plain) return mix.base;
  if (name == "output.weight") return TensorType::Q6_K;
  if (name.rfind("blk.", 0) != 0) return mix.base;
  const int32_t layer = std::atoi(std::string(name.substr(4)).c_str());
  const auto is = [&](std::string_view part) { return name.find(part) != std::string_view::npos; };
  // llama.cpp treats an 80-layer Llama/Qwen2 as its 70B class.
  const bool is_70b = n_layer == 80;
  if (is(".attn_v.")) {
    TensorType t = mix.base;
    switch (mix.rule) {
      case MixRule::Q2_K: t = n_gqa >= 4 ? TensorType::Q4_K : TensorType::Q3_K; break;
      case MixRule::Q3_K_M: t = layer < 2 ? TensorType::Q5_K : TensorType::Q4_K; break;
      case MixRule::Q4_K_M:
      case MixRule::Q5_K_M:
        if (use_more_bits(layer, n_layer)) t = TensorType::Q6_K;
        break;
      default: break;
    }
    if (is_70b && (t == TensorType::Q3_K || t == TensorType::Q4_K)) t = TensorType::Q5_K;
    return t;
  }
  if (is(".ffn_down.")) {
    switch (mix.rule) {
      case MixRule::Q2_K: return TensorType::Q3_K;
      case MixRule::Q3_K_M: return layer < n_layer / 16 ? TensorType::Q5_K : TensorType::Q4_K;
      case MixRule::Q4_K_M:
      case MixRule::Q5_K_M: return use_more_bits(layer, n_layer) ? TensorType::Q6_K : mix.base;
      default: return mix.base;
    }
  }
  if (is(".attn_output.")) {
    if (mix.rule == MixRule::Q2_K) return TensorType::Q3_K;
    if (mix.rule == MixRule::Q3_K_M) return TensorType::Q4_K;
  }
  return mix.base;
}

std::vector<float> llama3_rope_freqs(int32_t n_rot, float rope_base, float factor, float low_freq, float high_freq,
                                     uint32_t orig_ctx) {
  std::vector<float> out;
  const double low_wavelen = double(orig_ctx) / low_freq, high_wavelen = double(orig_ctx) / high_freq;
  for (int32_t i = 0; i < n_rot / 2; ++i) {
    const double freq = std::pow(double(rope_base), -2.0 * i / n_rot);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double divisor = 1.0;
    if (wavelen > low_wavelen) {
      divisor = factor;
    } else if (wavelen >= high_wavelen) {
      // Smooth interpolation between the scaled and unscaled frequency.
      const double smooth = (double(orig_ctx) / wavelen - low_freq) / (high_freq - low_freq);
      divisor = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out.push_back(float(divisor));
  }
  return out;
}

Expected<SynthSpec> preset_spec(const SynthPreset& p, const QuantMix& mix, const gguf::GgufFile& vocab,
                                int32_t n_layer_override, uint64_t seed) {
  if (n_layer_override < 0 || n_layer_override > 4096)
    return make_error("synth: layers must be in [1, 4096], got ", n_layer_override);
  SynthSpec s;
  s.arch = std::string(p.arch);
  s.n_embd = p.n_embd;
  s.n_layer = n_layer_override > 0 ? n_layer_override : p.n_layer;
  s.n_head = p.n_head;
  s.n_head_kv = p.n_head_kv;
  s.head_dim = p.head_dim;
  s.n_ff = p.n_ff;
  s.n_ctx_train = p.n_ctx_train;
  s.rms_eps = p.rms_eps;
  s.rope_base = p.rope_base;
  s.rope_freqs = p.llama3_rope;
  s.weight_type = mix.base;
  // The mix's rule counts the layers of this file, as llama.cpp counts the
  // attn_v/ffn_down tensors it quantizes.
  s.type_for = [mix, n_layer = s.n_layer, n_gqa = p.n_head / p.n_head_kv](const std::string& name) {
    return mix_tensor_type(mix, name, n_layer, n_gqa);
  };
  s.seed = seed;
  s.vocab_source = &vocab;
  return s;
}

SynthFileOptions preset_file_options(const SynthPreset& p, const SynthSpec& s) {
  SynthFileOptions o;
  o.n_vocab_min = p.n_vocab;
  if (p.llama3_rope) o.rope_freqs = llama3_rope_freqs(s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head, s.rope_base);
  return o;
}

Expected<SynthFileInfo> write_synth_model(const SynthSpec& s, const SynthFileOptions& o, const std::string& path) {
  gguf::GgufWriter meta;
  meta.set_string("general.architecture", s.arch);
  meta.set_string("general.name", "dhi synthetic " + s.arch);
  int32_t n_vocab = s.n_vocab;
  if (s.vocab_source) {
    DHI_ASSIGN_OR_RETURN(n_vocab, copy_vocab(meta, *s.vocab_source, o.n_vocab_min));
  } else {
    return make_error("synth: a vocab source is required");
  }
  const int32_t head_dim = s.head_dim > 0 ? s.head_dim : (s.n_head > 0 ? s.n_embd / s.n_head : 0);
  if (s.n_embd < 1 || s.n_layer < 1 || s.n_head < 1 || s.n_head_kv < 1 || s.n_ff < 1 || head_dim < 2 ||
      head_dim % 2 != 0 || s.n_head % s.n_head_kv != 0) {
    return make_error("synth: invalid dimensions (n_embd ", s.n_embd, ", n_head ", s.n_head, ", n_head_kv ",
                      s.n_head_kv, ", head_dim ", head_dim, ")");
  }
  const std::string p = s.arch + ".";
  meta.set_u32(p + "context_length", s.n_ctx_train);
  meta.set_u32(p + "embedding_length", uint32_t(s.n_embd));
  meta.set_u32(p + "block_count", uint32_t(s.n_layer));
  meta.set_u32(p + "feed_forward_length", uint32_t(s.n_ff));
  meta.set_u32(p + "attention.head_count", uint32_t(s.n_head));
  meta.set_u32(p + "attention.head_count_kv", uint32_t(s.n_head_kv));
  meta.set_u32(p + "attention.key_length", uint32_t(head_dim));
  meta.set_u32(p + "attention.value_length", uint32_t(head_dim));
  meta.set_u32(p + "rope.dimension_count", uint32_t(head_dim));
  meta.set_f32(p + "attention.layer_norm_rms_epsilon", s.rms_eps);
  meta.set_f32(p + "rope.freq_base", s.rope_base);
  if (s.rope_scale_linear > 0.0f) {
    meta.set_string(p + "rope.scaling.type", "linear");
    meta.set_f32(p + "rope.scaling.factor", s.rope_scale_linear);
  }

  DHI_ASSIGN_OR_RETURN(std::vector<Plan> plans, plan_tensors(s, o, n_vocab, head_dim));
  std::vector<gguf::TensorDecl> decls;
  SynthFileInfo info;
  info.n_vocab = n_vocab;
  for (const Plan& pl : plans) {
    decls.push_back({pl.name, pl.type, pl.ne1 > 1 ? std::vector<uint64_t>{pl.ne0, pl.ne1} : std::vector<uint64_t>{pl.ne0}});
    info.n_params += pl.ne0 * pl.ne1;
  }
  info.n_tensors = plans.size();
  DHI_ASSIGN_OR_RETURN(gguf::GgufStreamWriter out, gguf::GgufStreamWriter::create(path, meta, decls));

  // Chunks of whole rows, about 1M weights each; a batch of chunks is drawn in
  // parallel, then written while nothing else runs (the page cache absorbs it).
  constexpr uint64_t kChunkWeights = uint64_t(1) << 20;
  constexpr uint64_t kBatchBytes = uint64_t(64) << 20;
  ThreadPool pool(o.n_threads);
  std::vector<uint8_t> buf;
  for (size_t ti = 0; ti < plans.size(); ++ti) {
    const Plan& pl = plans[ti];
    const uint64_t rb = *row_bytes(pl.type, pl.ne0);
    const uint64_t rows_per_chunk = std::max<uint64_t>(1, kChunkWeights / pl.ne0);
    const uint64_t n_chunks = (pl.ne1 + rows_per_chunk - 1) / rows_per_chunk;
    const uint64_t chunks_per_batch = std::max<uint64_t>(1, kBatchBytes / (rows_per_chunk * rb));
    for (uint64_t c0 = 0; c0 < n_chunks; c0 += chunks_per_batch) {
      const uint64_t c1 = std::min(n_chunks, c0 + chunks_per_batch);
      const uint64_t row_begin = c0 * rows_per_chunk, row_end = std::min(pl.ne1, c1 * rows_per_chunk);
      buf.resize(size_t((row_end - row_begin) * rb));
      pool.parallel_for(int64_t(c1 - c0), 1, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) {
          const uint64_t chunk = c0 + uint64_t(k);
          const uint64_t r0 = chunk * rows_per_chunk, r1 = std::min(pl.ne1, r0 + rows_per_chunk);
          Rng rng(stream_seed(s.seed, ti, chunk));
          fill_rows(pl, r0, r1 - r0, rng, buf.data() + (r0 - row_begin) * rb);
        }
      });
      DHI_TRY(out.write(buf.data(), buf.size()));
    }
  }
  DHI_ASSIGN_OR_RETURN(info.file_bytes, out.finish());
  return info;
}

}  // namespace dhi::model
