// Model loading: binds every tensor the architecture needs to a view into the
// mapped file after checking presence, type and shape, then prefaults the
// mapped pages so the first forward pass does not stall on disk reads.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cpu/ops.h"
#include "model/arch.h"

namespace dhi::model {

namespace {

std::string shape_str(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

enum class Kind { Vector, Matrix };  // Vector: f32 norm/bias; Matrix: any weight type

class Binder {
 public:
  explicit Binder(const gguf::GgufFile& f) : f_(f) {}

  Expected<TensorView> bind(const std::string& name, Kind kind, int64_t ne0, int64_t ne1 = 1) {
    const gguf::TensorInfo* t = f_.find_tensor(name);
    const std::vector<uint64_t> want =
        kind == Kind::Vector ? std::vector<uint64_t>{uint64_t(ne0)} : std::vector<uint64_t>{uint64_t(ne0), uint64_t(ne1)};
    if (!t) return make_error("missing tensor ", name, " (expected shape ", shape_str(want), ")");
    // Trailing dimensions of 1 are allowed (some writers keep them).
    std::vector<uint64_t> got = t->dims;
    while (got.size() > want.size() && got.back() == 1) got.pop_back();
    if (got != want) {
      return make_error("tensor ", name, ": expected shape ", shape_str(want), ", got ", shape_str(t->dims));
    }
    if (kind == Kind::Vector && t->type != TensorType::F32) {
      return make_error("tensor ", name, ": expected type F32, got ", tensor_type_name(t->type));
    }
    if (kind == Kind::Matrix && !kernels::cpu::weight_type_supported(t->type)) {
      return make_error("tensor ", name, ": unsupported type ", tensor_type_name(t->type));
    }
    const std::optional<uint64_t> rb = row_bytes(t->type, uint64_t(ne0));
    if (!rb) {
      return make_error("tensor ", name, ": row length ", ne0, " is not a multiple of the ",
                        tensor_type_name(t->type), " block size");
    }
    if (*rb * uint64_t(ne1) != t->n_bytes || !t->data) {
      return make_error("tensor ", name, ": expected ", *rb * uint64_t(ne1), " bytes, got ", t->n_bytes);
    }
    if (kind == Kind::Vector && reinterpret_cast<uintptr_t>(t->data) % alignof(float) != 0) {
      return make_error("tensor ", name, ": data is not 4-byte aligned");
    }
    if (std::find(bound_.begin(), bound_.end(), t) == bound_.end()) bound_.push_back(t);
    TensorView v;
    v.data = t->data;
    v.type = t->type;
    v.ne0 = ne0;
    v.ne1 = ne1;
    v.row_bytes = *rb;
    return v;
  }

  const std::vector<const gguf::TensorInfo*>& bound() const { return bound_; }

 private:
  const gguf::GgufFile& f_;
  std::vector<const gguf::TensorInfo*> bound_;
};

// Reads one byte per page of every bound tensor so the OS maps them in now.
void prefault(const std::vector<const gguf::TensorInfo*>& tensors, uint64_t total,
              const std::function<void(double)>& on_progress) {
  constexpr uint64_t kPage = 4096;
  constexpr uint64_t kReportEvery = 64ull << 20;
  uint64_t done = 0, last_report = 0;
  volatile uint8_t sink = 0;
  for (const gguf::TensorInfo* t : tensors) {
    uint8_t acc = 0;
    for (uint64_t off = 0; off < t->n_bytes; off += kPage) acc ^= t->data[off];
    sink = sink ^ acc;
    done += t->n_bytes;
    if (on_progress && (done - last_report >= kReportEvery || done == total)) {
      last_report = done;
      on_progress(total ? double(done) / double(total) : 1.0);
    }
  }
  if (on_progress) on_progress(1.0);
}

}  // namespace

std::vector<std::string> Model::supported_architectures() { return arch_names(); }

Expected<std::unique_ptr<Model>> Model::load(const gguf::GgufFile& file, const LoadOptions& opts) {
  DHI_ASSIGN_OR_RETURN(ModelConfig c, parse_config(file));
  std::unique_ptr<Model> m(new Model());
  Binder b(file);
  ModelWeights& w = m->weights_;
  DHI_ASSIGN_OR_RETURN(w.token_embd, b.bind("token_embd.weight", Kind::Matrix, c.n_embd, c.n_vocab));
  w.layers.resize(size_t(c.n_layer));
  for (int32_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& L = w.layers[size_t(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    DHI_ASSIGN_OR_RETURN(L.attn_norm, b.bind(p + "attn_norm.weight", Kind::Vector, c.n_embd));
    DHI_ASSIGN_OR_RETURN(L.wq, b.bind(p + "attn_q.weight", Kind::Matrix, c.n_embd, c.q_dim()));
    DHI_ASSIGN_OR_RETURN(L.wk, b.bind(p + "attn_k.weight", Kind::Matrix, c.n_embd, c.kv_dim()));
    DHI_ASSIGN_OR_RETURN(L.wv, b.bind(p + "attn_v.weight", Kind::Matrix, c.n_embd, c.kv_dim()));
    if (c.qkv_bias) {
      DHI_ASSIGN_OR_RETURN(L.bq, b.bind(p + "attn_q.bias", Kind::Vector, c.q_dim()));
      DHI_ASSIGN_OR_RETURN(L.bk, b.bind(p + "attn_k.bias", Kind::Vector, c.kv_dim()));
      DHI_ASSIGN_OR_RETURN(L.bv, b.bind(p + "attn_v.bias", Kind::Vector, c.kv_dim()));
    }
    if (c.qk_norm) {
      DHI_ASSIGN_OR_RETURN(L.q_norm, b.bind(p + "attn_q_norm.weight", Kind::Vector, c.head_dim));
      DHI_ASSIGN_OR_RETURN(L.k_norm, b.bind(p + "attn_k_norm.weight", Kind::Vector, c.head_dim));
    }
    DHI_ASSIGN_OR_RETURN(L.wo, b.bind(p + "attn_output.weight", Kind::Matrix, c.q_dim(), c.n_embd));
    DHI_ASSIGN_OR_RETURN(L.ffn_norm, b.bind(p + "ffn_norm.weight", Kind::Vector, c.n_embd));
    DHI_ASSIGN_OR_RETURN(L.ffn_gate, b.bind(p + "ffn_gate.weight", Kind::Matrix, c.n_embd, c.n_ff));
    DHI_ASSIGN_OR_RETURN(L.ffn_up, b.bind(p + "ffn_up.weight", Kind::Matrix, c.n_embd, c.n_ff));
    DHI_ASSIGN_OR_RETURN(L.ffn_down, b.bind(p + "ffn_down.weight", Kind::Matrix, c.n_ff, c.n_embd));
  }
  DHI_ASSIGN_OR_RETURN(w.output_norm, b.bind("output_norm.weight", Kind::Vector, c.n_embd));
  if (c.tied_output) {
    w.output = w.token_embd;
  } else {
    DHI_ASSIGN_OR_RETURN(w.output, b.bind("output.weight", Kind::Matrix, c.n_embd, c.n_vocab));
  }
  if (c.has_rope_freqs) {
    DHI_TRY(b.bind("rope_freqs.weight", Kind::Vector, c.n_rot / 2));
  }
  w.rope_freq_factors = rope_freq_factors(file, c);
  for (float ff : w.rope_freq_factors) {
    if (!(ff > 0.0f) || !std::isfinite(ff)) return make_error("tensor rope_freqs.weight: factors must be positive");
  }

  uint64_t total = 0;
  for (const gguf::TensorInfo* t : b.bound()) total += t->n_bytes;
  m->weight_bytes_ = total;
  m->config_ = std::move(c);
  prefault(b.bound(), total, opts.on_progress);
  return m;
}

}  // namespace dhi::model
