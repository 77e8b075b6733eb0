// Model loading: binds every tensor the architecture needs to a view into the
// mapped file after checking presence, type and shape, then prefaults the
// mapped pages so the first forward pass does not stall on disk reads, except
// for the matrices it interleaves for the CPU decode kernels: those are read
// once, permuted into owned memory and their file pages released.
#include "model/model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>

#include "core/mapped_file.h"
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

// Load progress over all bound weight bytes, reported every 64 MB (from
// several interleaving threads: the callback runs under a lock).
class Progress {
 public:
  Progress(uint64_t total, const std::function<void(double)>& on_progress) : total_(total), cb_(on_progress) {}
  void add(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    done_ += bytes;
    if (cb_ && (done_ - last_ >= (64ull << 20) || done_ == total_)) {
      last_ = done_;
      cb_(total_ ? double(done_) / double(total_) : 1.0);
    }
  }
  void finish() const {
    if (cb_) cb_(1.0);
  }

 private:
  std::mutex mu_;
  uint64_t total_, done_ = 0, last_ = 0;
  const std::function<void(double)>& cb_;
};

// Reads one byte per page of every bound tensor so the OS maps them in now.
void prefault(const std::vector<const gguf::TensorInfo*>& tensors, Progress& progress) {
  constexpr uint64_t kPage = 4096;
  volatile uint8_t sink = 0;
  for (const gguf::TensorInfo* t : tensors) {
    uint8_t acc = 0;
    for (uint64_t off = 0; off < t->n_bytes; off += kPage) acc ^= t->data[off];
    sink = sink ^ acc;
    progress.add(t->n_bytes);
  }
}

// Rows interleaved per slice: about this many bytes, so the source pages
// are released soon after they are read and the resident size never holds
// both copies of more than one slice.
constexpr uint64_t kInterleaveSliceBytes = 4ull << 20;

// Interleaves one matrix into dst, releasing its file pages slice by slice
// (when `release`: the weights are a file mapping). Each release starts at
// the page the previous slice ended in, so a page that two slices share is
// released once both are done.
void interleave_matrix(const TensorView& v, uint8_t* dst, bool release, Progress& progress) {
  const kernels::cpu::WeightMatrix w{v.data, v.type, v.ne0, v.ne1, v.row_bytes};
  const int64_t slice = std::max<int64_t>(1, int64_t(kInterleaveSliceBytes / (16 * v.row_bytes))) * 16;
  const auto* base = static_cast<const uint8_t*>(v.data);
  // A multiple of the page size where pages are 4 KB; with larger pages
  // release_mapped_pages rounds the start up, so a shared page only stays.
  const uintptr_t page = 4096;
  const uint8_t* released = base;  // released up to here (the first page may be another tensor's too)
  for (int64_t r0 = 0; r0 < v.ne1; r0 += slice) {
    const int64_t r1 = std::min(v.ne1, r0 + slice);
    kernels::cpu::interleave_weights(w, r0, r1, dst);
    const uint8_t* end = base + size_t(r1) * v.row_bytes;
    if (release) release_mapped_pages(released, size_t(end - released));
    // The next release starts at the page `end` lies in.
    released = reinterpret_cast<const uint8_t*>(std::max(reinterpret_cast<uintptr_t>(base),
                                                         reinterpret_cast<uintptr_t>(end) / page * page));
    progress.add(uint64_t(r1 - r0) * v.row_bytes);
  }
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

  // The matrices to interleave (a tied output is the embedding table: once).
  std::vector<TensorView*> to_interleave;
  const auto consider = [&](TensorView& v) {
    if (!opts.interleave || !kernels::cpu::interleaved_layout_pays(v.type)) return;
    for (const TensorView* o : to_interleave)
      if (o->data == v.data) return;
    to_interleave.push_back(&v);
  };
  for (LayerWeights& L : w.layers)
    for (TensorView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) consider(*v);
  consider(m->config_.tied_output ? w.token_embd : w.output);
  // One 64-byte aligned block for all of them, each matrix at a 64-byte
  // offset. Without the memory for it the weights stay in the file's layout.
  uint64_t owned = 0;
  for (const TensorView* v : to_interleave) owned += (v->row_bytes * uint64_t(v->ne1) + 63) / 64 * 64;
  if (owned > 0) {
    m->interleaved_.reset(static_cast<uint8_t*>(::operator new[](size_t(owned), std::align_val_t(64), std::nothrow)));
    if (!m->interleaved_) to_interleave.clear();
    if (m->interleaved_) advise_huge_pages(m->interleaved_.get(), size_t(owned));
  }

  Progress progress(total, opts.on_progress);
  std::vector<const gguf::TensorInfo*> mapped;
  for (const gguf::TensorInfo* t : b.bound()) {
    const bool moved = std::any_of(to_interleave.begin(), to_interleave.end(),
                                   [&](const TensorView* v) { return v->data == t->data; });
    if (!moved) mapped.push_back(t);
  }
  prefault(mapped, progress);

  if (!to_interleave.empty()) {
    m->interleaved_bytes_ = owned;
    std::vector<uint8_t*> dst;
    uint8_t* next = m->interleaved_.get();
    for (const TensorView* v : to_interleave) {
      dst.push_back(next);
      next += (v->row_bytes * uint64_t(v->ne1) + 63) / 64 * 64;
    }
    // Page faults (reading the file, zeroing the new pages) are most of the
    // time, so every core takes matrices from a shared counter.
    std::atomic<size_t> next_matrix{0};
    const auto work = [&] {
      for (size_t i; (i = next_matrix.fetch_add(1)) < to_interleave.size();)
        interleave_matrix(*to_interleave[i], dst[i], file.is_mapped(), progress);
    };
    // At most 8 threads: each holds a slice of both copies resident.
    const unsigned n_helpers = std::min(8u, std::max(1u, std::thread::hardware_concurrency())) - 1;
    std::vector<std::thread> helpers;
    for (unsigned i = 0; i < n_helpers; ++i) {
      try {
        helpers.emplace_back(work);
      } catch (const std::system_error&) {
        break;  // no more threads: the ones running (this one at least) finish the work
      }
    }
    work();
    for (std::thread& t : helpers) t.join();
    for (size_t i = 0; i < to_interleave.size(); ++i) {
      to_interleave[i]->data = dst[i];
      to_interleave[i]->interleaved = true;
    }
    if (m->config_.tied_output) w.output = w.token_embd;
  }
  progress.finish();
  return m;
}

void Model::AlignedFree::operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(64)); }

}  // namespace dhi::model
