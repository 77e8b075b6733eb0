// Context: batch validation, micro-batching and logits bookkeeping around the
// forward pass.
#include "model/context.h"

#include <algorithm>

#include "kernels/cpu/ops.h"
#include "model/backend.h"
#include "model/blocks.h"
#include "model/kv_cache.h"

namespace dhi::model {

void Batch::add(int32_t token, int32_t pos, int32_t seq, bool logits) {
  tokens.push_back(token);
  positions.push_back(pos);
  seq_ids.push_back(seq);
  want_logits.push_back(logits ? 1 : 0);
}

void Batch::clear() {
  tokens.clear();
  positions.clear();
  seq_ids.clear();
  want_logits.clear();
}

Context::Context(const Model& model) : model_(model) {}
Context::~Context() = default;

Expected<std::unique_ptr<Context>> Context::create(const Model& model, const ContextParams& params) {
  const ModelConfig& c = model.config();
  uint32_t n_ctx = params.n_ctx;
  if (n_ctx == 0) n_ctx = std::min(c.n_ctx_train, kDefaultMaxCtx);
  if (n_ctx > (1u << 24)) return make_error("context size ", n_ctx, " is too large (max ", 1u << 24, ")");
  if (params.n_seq < 1 || params.n_seq > 4096) {
    return make_error("number of sequences must be in [1, 4096], got ", params.n_seq);
  }
  if (params.kv_type != TensorType::F32 && params.kv_type != TensorType::F16) {
    return make_error("KV cache type must be F32 or F16, got ", tensor_type_name(params.kv_type));
  }
  if (params.n_threads < 0) return make_error("number of threads must be >= 0, got ", params.n_threads);
  std::unique_ptr<Context> ctx(new Context(model));
  // A bad DHI_FORCE_ISA is the user's error to see, not a silent fallback.
  DHI_TRY(kernels::cpu::check_cpu_isa());
  ctx->backend_ = make_cpu_backend(params.n_threads);
  ctx->kv_ = std::make_unique<KvCache>(c.n_layer, params.n_seq, n_ctx, c.n_head_kv, c.head_dim, params.kv_type);
  ctx->pass_ = std::make_unique<ForwardPass>(model.config(), model.weights(), *ctx->backend_, *ctx->kv_);
  return ctx;
}

Status Context::decode(const Batch& batch) {
  const ModelConfig& c = model_.config();
  const size_t n = batch.tokens.size();
  if (n == 0) return make_error("decode: empty batch");
  if (batch.positions.size() != n || batch.seq_ids.size() != n || batch.want_logits.size() != n) {
    return make_error("decode: batch fields differ in length (tokens ", n, ", positions ", batch.positions.size(),
                      ", seq_ids ", batch.seq_ids.size(), ", want_logits ", batch.want_logits.size(), ")");
  }
  std::vector<int32_t> next(size_t(kv_->n_seq()));
  for (int32_t s = 0; s < kv_->n_seq(); ++s) next[size_t(s)] = kv_->size(s);
  for (size_t i = 0; i < n; ++i) {
    const int32_t tok = batch.tokens[i], pos = batch.positions[i], seq = batch.seq_ids[i];
    if (tok < 0 || tok >= c.n_vocab) {
      return make_error("decode: token id ", tok, " at batch index ", i, " is out of range [0, ", c.n_vocab, ")");
    }
    if (seq < 0 || seq >= kv_->n_seq()) {
      return make_error("decode: seq id ", seq, " at batch index ", i, " is out of range [0, ", kv_->n_seq(), ")");
    }
    if (pos < 0 || uint32_t(pos) >= kv_->n_ctx()) {
      return make_error("decode: position ", pos, " at batch index ", i, " is outside the context [0, ",
                        kv_->n_ctx(), ")");
    }
    if (pos != next[size_t(seq)]) {
      return make_error("decode: position ", pos, " at batch index ", i, " of seq ", seq,
                        " is not contiguous with its cache (expected ", next[size_t(seq)], ")");
    }
    ++next[size_t(seq)];
  }

  logit_index_.assign(n, -1);
  int32_t n_wanted = 0;
  for (size_t i = 0; i < n; ++i) {
    if (batch.want_logits[i]) logit_index_[i] = n_wanted++;
  }
  logits_.resize(size_t(n_wanted) * size_t(c.n_vocab));

  // Micro-batches keep activation memory bounded; order is preserved, so each
  // token still finds its sequence's earlier positions in the cache.
  std::vector<int32_t> rows;
  for (size_t b0 = 0; b0 < n; b0 += size_t(kMaxUbatch)) {
    const size_t b1 = std::min(n, b0 + size_t(kMaxUbatch));
    rows.clear();
    int32_t first_out = -1;
    for (size_t i = b0; i < b1; ++i) {
      if (logit_index_[i] >= 0) {
        if (first_out < 0) first_out = logit_index_[i];
        rows.push_back(int32_t(i - b0));
      }
    }
    const std::span<const int32_t> toks(batch.tokens.data() + b0, b1 - b0);
    const std::span<const int32_t> pos(batch.positions.data() + b0, b1 - b0);
    const std::span<const int32_t> seqs(batch.seq_ids.data() + b0, b1 - b0);
    float* out = first_out >= 0 ? logits_.data() + size_t(first_out) * size_t(c.n_vocab) : nullptr;
    pass_->run(toks, pos, seqs, rows, out);
  }
  for (int32_t s = 0; s < kv_->n_seq(); ++s) kv_->set_size(s, next[size_t(s)]);
  return {};
}

std::span<const float> Context::logits(size_t batch_index) const {
  if (batch_index >= logit_index_.size() || logit_index_[batch_index] < 0) return {};
  const size_t nv = size_t(model_.config().n_vocab);
  return {logits_.data() + size_t(logit_index_[batch_index]) * nv, nv};
}

void Context::kv_truncate(int32_t seq, int32_t n_keep) {
  if (seq < 0 || seq >= kv_->n_seq()) return;
  n_keep = std::max(n_keep, 0);
  if (n_keep < kv_->size(seq)) kv_->set_size(seq, n_keep);
}

int32_t Context::kv_size(int32_t seq) const {
  if (seq < 0 || seq >= kv_->n_seq()) return 0;
  return kv_->size(seq);
}

uint32_t Context::n_ctx() const { return kv_->n_ctx(); }
int32_t Context::n_seq() const { return kv_->n_seq(); }

}  // namespace dhi::model
