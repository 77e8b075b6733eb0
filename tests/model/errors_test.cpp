// Bad inputs give errors, not crashes: missing or misshapen tensors, wrong or
// unknown architectures, unsupported types, and out-of-range decode inputs.
#include <cstring>
#include <functional>

#include "model/reference.h"
#include "test_util.h"

namespace dhi::model::test {
namespace {

// Copies a parsed model into a new writer, letting `edit` drop a tensor
// (return false) or change its type/dims/bytes, and `meta` change metadata.
struct Rewritten {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::GgufFile> file;
};

using TensorEdit = std::function<bool(std::string& name, TensorType& type, std::vector<uint64_t>& dims,
                                      std::vector<uint8_t>& data)>;

Rewritten rewrite(const gguf::GgufFile& src, const TensorEdit& edit,
                  const std::function<void(gguf::GgufWriter&)>& meta = {}) {
  gguf::GgufWriter w;
  for (const auto& [k, v] : src.metadata()) {
    if (k != "general.alignment") w.set(k, v);
  }
  if (meta) meta(w);
  for (const auto& t : src.tensors()) {
    std::string name = t.name;
    TensorType type = t.type;
    std::vector<uint64_t> dims = t.dims;
    std::vector<uint8_t> data(t.data, t.data + t.n_bytes);
    if (!edit(name, type, dims, data)) continue;
    Status st = w.add_tensor(name, type, dims, std::move(data));
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  }
  Rewritten r;
  r.bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(r.bytes);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (f.ok()) r.file = std::make_unique<gguf::GgufFile>(std::move(f).value());
  return r;
}

SynthFile base_model(const char* arch = "llama") {
  SynthSpec s;
  s.arch = arch;
  s.n_embd = 32;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 64;
  s.n_vocab = 40;
  return make_synth(s);
}

// The reference must refuse structural problems too; it may accept type
// choices the fast path does not (it dequantizes anything).
std::string load_error(const gguf::GgufFile& f, bool reference_must_fail = true) {
  auto m = Model::load(f);
  if (m.ok()) return "";
  auto r = ReferenceModel::load(f);
  if (reference_must_fail) {
    EXPECT_FALSE(r.ok()) << "the reference accepted what the model refused";
  }
  return m.error().message;
}

TEST(ModelErrors, MissingTensorIsNamed) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  auto r = rewrite(*sf.file, [](std::string& n, auto&, auto&, auto&) { return n != "blk.1.ffn_up.weight"; });
  ASSERT_TRUE(r.file);
  const std::string e = load_error(*r.file);
  EXPECT_NE(e.find("missing tensor blk.1.ffn_up.weight"), std::string::npos) << e;
}

TEST(ModelErrors, WrongShapeNamesExpectedAndActual) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  // attn_k claims 4 KV heads' worth of rows (32) instead of 2 (16).
  auto r = rewrite(*sf.file, [](std::string& n, TensorType&, std::vector<uint64_t>& dims, std::vector<uint8_t>& d) {
    if (n == "blk.0.attn_k.weight") {
      dims = {32, 32};
      d.resize(32 * 32 * 4);
    }
    return true;
  });
  ASSERT_TRUE(r.file);
  const std::string e = load_error(*r.file);
  EXPECT_NE(e.find("blk.0.attn_k.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("expected shape [32, 16], got [32, 32]"), std::string::npos) << e;
}

TEST(ModelErrors, TransposedMatrixIsRefused) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  // Same element count, rows of n_ff instead of n_embd.
  auto r = rewrite(*sf.file, [](std::string& n, TensorType&, std::vector<uint64_t>& dims, auto&) {
    if (n == "blk.0.ffn_gate.weight") dims = {64, 32};
    return true;
  });
  ASSERT_TRUE(r.file);
  const std::string e = load_error(*r.file);
  EXPECT_NE(e.find("blk.0.ffn_gate.weight: expected shape [32, 64], got [64, 32]"), std::string::npos) << e;
}

TEST(ModelErrors, UnknownArchitectureListsSupported) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  auto r = rewrite(*sf.file, [](auto&, auto&, auto&, auto&) { return true; },
                   [](gguf::GgufWriter& w) { w.set_string("general.architecture", "gpt2"); });
  ASSERT_TRUE(r.file);
  const std::string e = load_error(*r.file);
  EXPECT_NE(e.find("unsupported architecture 'gpt2'"), std::string::npos) << e;
  EXPECT_NE(e.find("llama, qwen2, qwen3"), std::string::npos) << e;
}

TEST(ModelErrors, WrongArchitectureForTensors) {
  // A llama file relabelled as qwen2: the qwen2 keys are missing.
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  auto r = rewrite(*sf.file, [](auto&, auto&, auto&, auto&) { return true; },
                   [](gguf::GgufWriter& w) { w.set_string("general.architecture", "qwen2"); });
  ASSERT_TRUE(r.file);
  std::string e = load_error(*r.file);
  EXPECT_NE(e.find("qwen2.embedding_length"), std::string::npos) << e;
  // A qwen3 file whose q/k norms were dropped.
  SynthFile q3 = base_model("qwen3");
  ASSERT_TRUE(q3.file);
  auto r2 = rewrite(*q3.file, [](std::string& n, auto&, auto&, auto&) { return n.find("attn_q_norm") == std::string::npos; });
  ASSERT_TRUE(r2.file);
  e = load_error(*r2.file);
  EXPECT_NE(e.find("missing tensor blk.0.attn_q_norm.weight"), std::string::npos) << e;
}

TEST(ModelErrors, UnsupportedTypesAreNamed) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  // A norm stored as F16.
  auto r = rewrite(*sf.file, [](std::string& n, TensorType& t, auto&, std::vector<uint8_t>& d) {
    if (n == "output_norm.weight") {
      t = TensorType::F16;
      d.resize(d.size() / 2);
    }
    return true;
  });
  ASSERT_TRUE(r.file);
  std::string e = load_error(*r.file, false);
  EXPECT_NE(e.find("output_norm.weight: expected type F32, got F16"), std::string::npos) << e;
  // A weight in Q8_1 (an activation-only format).
  auto r2 = rewrite(*sf.file, [](std::string& n, TensorType& t, auto&, std::vector<uint8_t>& d) {
    if (n == "blk.0.ffn_gate.weight") {
      t = TensorType::Q8_1;
      d.resize(64 * *row_bytes(TensorType::Q8_1, 32));
    }
    return true;
  });
  ASSERT_TRUE(r2.file);
  e = load_error(*r2.file, false);
  EXPECT_NE(e.find("blk.0.ffn_gate.weight: unsupported type Q8_1"), std::string::npos) << e;
}

TEST(ModelErrors, BadMetadataValues) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  auto r = rewrite(*sf.file, [](auto&, auto&, auto&, auto&) { return true; },
                   [](gguf::GgufWriter& w) { w.set_u32("llama.attention.head_count_kv", 3); });
  ASSERT_TRUE(r.file);
  std::string e = load_error(*r.file);
  EXPECT_NE(e.find("head_count_kv"), std::string::npos) << e;
  auto r2 = rewrite(*sf.file, [](auto&, auto&, auto&, auto&) { return true; },
                    [](gguf::GgufWriter& w) { w.set_u32("llama.block_count", 0); });
  ASSERT_TRUE(r2.file);
  e = load_error(*r2.file);
  EXPECT_NE(e.find("llama.block_count"), std::string::npos) << e;
  auto r3 = rewrite(*sf.file, [](auto&, auto&, auto&, auto&) { return true; },
                    [](gguf::GgufWriter& w) { w.set_string("llama.rope.scaling.type", "yarn"); });
  ASSERT_TRUE(r3.file);
  e = load_error(*r3.file);
  EXPECT_NE(e.find("yarn"), std::string::npos) << e;
}

TEST(DecodeErrors, BadBatchesAreRefusedAndLeaveCacheAlone) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  auto m = Model::load(*sf.file);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto c = Context::create(**m, {.n_ctx = 8, .n_seq = 2, .n_threads = 2});
  ASSERT_TRUE(c.ok());
  Context& ctx = **c;
  const auto refused = [&](const Batch& b, const char* what) {
    Status st = ctx.decode(b);
    EXPECT_FALSE(st.ok()) << what;
    if (!st.ok()) {
      EXPECT_NE(st.error().message.find(what), std::string::npos) << st.error().message;
    }
  };
  refused(Batch{}, "empty batch");
  Batch b;
  b.add(40, 0, 0, true);
  refused(b, "token id 40");
  b.clear();
  b.add(-1, 0, 0, true);
  refused(b, "token id -1");
  b.clear();
  b.add(1, 0, 2, true);
  refused(b, "seq id 2");
  b.clear();
  b.add(1, 1, 0, true);
  refused(b, "not contiguous");
  b.clear();
  b.add(1, 8, 0, true);
  refused(b, "outside the context");
  b.clear();
  b.add(1, 0, 0, true);
  b.add(2, 0, 0, true);  // the same position twice
  refused(b, "not contiguous");
  b.clear();
  b.add(1, 0, 0, true);
  b.positions.push_back(1);
  refused(b, "differ in length");
  EXPECT_EQ(ctx.kv_size(0), 0);
  EXPECT_EQ(ctx.kv_size(1), 0);

  // Filling the context exactly works; one more position is refused.
  b.clear();
  for (int i = 0; i < 8; ++i) b.add(3, i, 1, i == 7);
  ASSERT_TRUE(ctx.decode(b).ok());
  b.clear();
  b.add(3, 8, 1, true);
  refused(b, "outside the context");
  EXPECT_EQ(ctx.kv_size(1), 8);
  EXPECT_TRUE(ctx.logits(5).empty());  // out of range index: empty, no crash
  ctx.kv_truncate(7, 0);               // bad seq: ignored
  EXPECT_EQ(ctx.kv_size(-1), 0);
}

TEST(DecodeErrors, BadContextParams) {
  SynthFile sf = base_model();
  ASSERT_TRUE(sf.file);
  auto m = Model::load(*sf.file);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(Context::create(**m, {.n_ctx = 8, .n_seq = 0}).ok());
  EXPECT_FALSE(Context::create(**m, {.n_ctx = 8, .n_seq = 1, .n_threads = -2}).ok());
  EXPECT_FALSE(Context::create(**m, {.n_ctx = 1u << 30, .n_seq = 1}).ok());
}

TEST(SynthErrors, BadSpecs) {
  SynthSpec s;
  s.arch = "mamba";
  EXPECT_FALSE(synth_model(s).ok());
  s.arch = "llama";
  s.n_head_kv = 3;
  EXPECT_FALSE(synth_model(s).ok());
  s.n_head_kv = 2;
  s.weight_type = TensorType::Q4_K;  // n_embd 64 is not a multiple of 256
  auto r = synth_model(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("token_embd.weight"), std::string::npos) << r.error().message;
}

TEST(SynthVocab, CopiesTokenizerFromSource) {
  auto src = gguf::GgufFile::open(shared_model("stories260K.gguf"));
  ASSERT_TRUE(src.ok());
  SynthSpec s;
  s.vocab_source = &*src;
  SynthFile sf = make_synth(s);
  ASSERT_TRUE(sf.file);
  auto m = Model::load(*sf.file);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)->config().n_vocab, 512);
  auto model_name = sf.file->get_string("tokenizer.ggml.model");
  ASSERT_TRUE(model_name.ok());
  EXPECT_EQ(*model_name, *src->get_string("tokenizer.ggml.model"));
}

}  // namespace
}  // namespace dhi::model::test
