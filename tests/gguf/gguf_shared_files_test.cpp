// Reads every GGUF file in the shared test data (models and vocab-only tokenizer
// files) and checks it against facts stated independently: the shapes and keys in
// shared/models/PROVENANCE.md, the vocab facts in shared/tokenizer/README.md, and
// the published vocabulary sizes of the original models.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "gguf/reader.h"

namespace dhi::gguf {
namespace {

std::string shared(const std::string& rel) { return std::string(DHI_SHARED_DIR) + "/" + rel; }

GgufFile open_ok(const std::string& rel) {
  auto f = GgufFile::open(shared(rel));
  EXPECT_TRUE(f.ok()) << f.error().message;
  return std::move(f).value();
}

size_t array_size(const GgufFile& f, const char* key, ValueType t) {
  auto a = f.get_array(key, t);
  EXPECT_TRUE(a.ok()) << a.error().message;
  return a.ok() ? a.value()->items.size() : 0;
}

const std::string& token(const GgufFile& f, size_t id) {
  return *f.get_array("tokenizer.ggml.tokens", ValueType::STRING).value()->items.at(id).as_string();
}

std::vector<std::string> gguf_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(shared(dir)))
    if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufSharedFiles, EveryFileParsesAndIsSelfConsistent) {
  std::vector<std::string> files = gguf_files("models");
  std::vector<std::string> vocab = gguf_files("tokenizer");
  EXPECT_EQ(files.size(), 3u);
  EXPECT_EQ(vocab.size(), 12u);  // the 12 vocabs of shared/tokenizer/README.md
  files.insert(files.end(), vocab.begin(), vocab.end());
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->version(), 3u);
    EXPECT_TRUE(f->get_string("general.architecture").ok());
    EXPECT_TRUE(f->get_string("tokenizer.ggml.model").ok());
    size_t n_vocab = array_size(*f, "tokenizer.ggml.tokens", ValueType::STRING);
    EXPECT_GT(n_vocab, 0u);
    if (f->find("tokenizer.ggml.scores")) {
      EXPECT_EQ(array_size(*f, "tokenizer.ggml.scores", ValueType::FLOAT32), n_vocab);
    }
    if (f->find("tokenizer.ggml.token_type")) {
      EXPECT_EQ(array_size(*f, "tokenizer.ggml.token_type", ValueType::INT32), n_vocab);
    }
    // Tensors lie inside the file, in the data section, without overlapping.
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const TensorInfo& t : f->tensors()) {
      EXPECT_NE(t.data, nullptr) << t.name;
      ASSERT_LE(f->data_offset() + t.offset + t.n_bytes, f->file_size()) << t.name;
      ranges.emplace_back(t.offset, t.offset + t.n_bytes);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
  }
}

TEST(GgufSharedFiles, Stories260K) {
  GgufFile f = open_ok("models/stories260K.gguf");
  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_uint("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f.get_uint("llama.block_count").value(), 5u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count").value(), 8u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count_kv").value(), 4u);
  EXPECT_EQ(f.get_uint("llama.feed_forward_length").value(), 172u);
  EXPECT_EQ(f.get_uint("llama.context_length").value(), 2048u);
  EXPECT_FLOAT_EQ(float(f.get_float("llama.attention.layer_norm_rms_epsilon").value()), 1e-5f);
  EXPECT_EQ(f.find("llama.rope.freq_base"), nullptr);
  EXPECT_EQ(f.find("tokenizer.ggml.add_bos_token"), nullptr);
  EXPECT_EQ(f.get_bool_or("tokenizer.ggml.add_bos_token", true).value(), true);

  // SentencePiece vocab of 512 with scores and byte tokens; unk 0, bos 1, eos 2.
  EXPECT_EQ(f.get_string("tokenizer.ggml.model").value(), "llama");
  EXPECT_EQ(array_size(f, "tokenizer.ggml.tokens", ValueType::STRING), 512u);
  EXPECT_EQ(array_size(f, "tokenizer.ggml.scores", ValueType::FLOAT32), 512u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.unknown_token_id").value(), 0u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.eos_token_id").value(), 2u);
  EXPECT_EQ(token(f, 0), "<unk>");
  EXPECT_EQ(token(f, 1), "<s>");
  EXPECT_EQ(token(f, 2), "</s>");
  // SentencePiece byte-fallback pieces follow the three specials: <0x00>..<0xFF>.
  EXPECT_EQ(token(f, 3), "<0x00>");
  EXPECT_EQ(token(f, 258), "<0xFF>");
  const Array* types = f.get_array("tokenizer.ggml.token_type", ValueType::INT32).value();
  EXPECT_EQ(types->items[3].as_int(), 6);  // GGUF token type BYTE

  // 5 layers x 9 tensors (attn norm, q, k, v, output; ffn norm, gate, up, down)
  // + token_embd, output_norm and the separate output.weight; all F32.
  ASSERT_EQ(f.tensors().size(), 48u);
  uint64_t n_params = 0;
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ(t.type, TensorType::F32) << t.name;
    n_params += t.n_elements;
  }
  // embd 64x512, output 64x512, output_norm 64; per layer q 64x64, k and v 64x32
  // (4 KV heads x head_dim 8), o 64x64, two norms 64, gate/up 64x172, down 172x64.
  const uint64_t per_layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 2 * 64 + 3 * 64 * 172;
  EXPECT_EQ(n_params, 2 * 64 * 512 + 64 + 5 * per_layer);
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dims, (std::vector<uint64_t>{64, 512}));
  ASSERT_NE(f.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("blk.4.attn_k.weight")->dims, (std::vector<uint64_t>{64, 32}));
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->dims, (std::vector<uint64_t>{172, 64}));
  EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->n_bytes, 64u * 172 * 4);
}

TEST(GgufSharedFiles, Stories260KQwen2) {
  GgufFile f = open_ok("models/stories260K-qwen2.gguf");
  EXPECT_EQ(f.get_string("general.architecture").value(), "qwen2");
  EXPECT_EQ(f.get_bool_or("tokenizer.ggml.add_bos_token", false).value(), true);
  EXPECT_EQ(array_size(f, "tokenizer.ggml.tokens", ValueType::STRING), 512u);
  // The 48 llama tensors plus q/k/v biases in each of the 5 layers.
  EXPECT_EQ(f.tensors().size(), 48u + 15u);
  const TensorInfo* bq = f.find_tensor("blk.0.attn_q.bias");
  const TensorInfo* bk = f.find_tensor("blk.0.attn_k.bias");
  ASSERT_NE(bq, nullptr);
  ASSERT_NE(bk, nullptr);
  EXPECT_EQ(bq->dims, (std::vector<uint64_t>{64}));
  EXPECT_EQ(bk->dims, (std::vector<uint64_t>{32}));
  // The biases are zero.
  const float* b = reinterpret_cast<const float*>(bq->data);
  for (uint64_t i = 0; i < bq->n_elements; ++i) EXPECT_EQ(b[i], 0.0f);
}

TEST(GgufSharedFiles, LlamaTinyRandom) {
  GgufFile f = open_ok("models/llama-2-tiny-random.gguf");
  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_uint("llama.embedding_length").value(), 8u);
  EXPECT_EQ(f.get_uint("llama.block_count").value(), 1u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count").value(), 2u);
  EXPECT_EQ(f.get_uint("llama.feed_forward_length").value(), 32u);
  EXPECT_EQ(array_size(f, "tokenizer.ggml.tokens", ValueType::STRING), 32000u);
  ASSERT_EQ(f.tensors().size(), 12u);
  size_t n_f16 = 0, n_f32 = 0;
  for (const TensorInfo& t : f.tensors()) {
    n_f16 += t.type == TensorType::F16;
    n_f32 += t.type == TensorType::F32;
  }
  EXPECT_EQ(n_f16, 9u);
  EXPECT_EQ(n_f32, 3u);
  const TensorInfo* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dims, (std::vector<uint64_t>{8, 32000}));
  EXPECT_EQ(embd->n_bytes, 8u * 32000 * 2);
}

// Vocabulary sizes as published for each original model (its tokenizer's size,
// or the padded vocab_size of its config where the converter wrote that).
TEST(GgufSharedFiles, TokenizerVocabSizes) {
  struct Case {
    const char* file;
    const char* model;
    size_t n_vocab;
  };
  const Case cases[] = {
      {"ggml-vocab-llama-spm.gguf", "llama", 32000},         // Llama 2
      {"ggml-vocab-phi-3.gguf", "llama", 32064},             // Phi-3 mini
      {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},              // GPT-2
      {"ggml-vocab-llama-bpe.gguf", "gpt2", 128256},         // Llama 3
      {"ggml-vocab-deepseek-coder.gguf", "gpt2", 32256},     // DeepSeek Coder
      {"ggml-vocab-deepseek-llm.gguf", "gpt2", 102400},      // DeepSeek LLM
      {"ggml-vocab-falcon.gguf", "gpt2", 65024},             // Falcon
      {"ggml-vocab-mpt.gguf", "gpt2", 50432},                // MPT-7B
      {"ggml-vocab-starcoder.gguf", "gpt2", 49152},          // StarCoder 2
      {"ggml-vocab-qwen2.gguf", "gpt2", 151643 + 26},        // Qwen3: regular + added
      {"ggml-vocab-deepseek-r1-qwen.gguf", "gpt2", 151936},  // padded to [PAD151935]
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    GgufFile f = open_ok(std::string("tokenizer/") + c.file);
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.get_string("tokenizer.ggml.model").value(), c.model);
    EXPECT_EQ(array_size(f, "tokenizer.ggml.tokens", ValueType::STRING), c.n_vocab);
  }
}

TEST(GgufSharedFiles, TokenizerFactsFromTheReadme) {
  GgufFile qwen = open_ok("tokenizer/ggml-vocab-qwen2.gguf");
  EXPECT_EQ(qwen.get_string("tokenizer.ggml.pre").value(), "qwen2");
  EXPECT_EQ(array_size(qwen, "tokenizer.ggml.merges", ValueType::STRING), 151387u);

  GgufFile r1 = open_ok("tokenizer/ggml-vocab-deepseek-r1-qwen.gguf");
  EXPECT_EQ(r1.get_string("tokenizer.ggml.pre").value(), "deepseek-r1-qwen");
  EXPECT_EQ(r1.get_uint("tokenizer.ggml.bos_token_id").value(), 151646u);
  EXPECT_EQ(r1.get_uint("tokenizer.ggml.eos_token_id").value(), 151643u);
  EXPECT_EQ(r1.get_uint("tokenizer.ggml.padding_token_id").value(), 151643u);
  EXPECT_EQ(r1.get_bool_or("tokenizer.ggml.add_bos_token", false).value(), true);
  EXPECT_EQ(token(r1, 151643),
            "<\xef\xbd\x9c"
            "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
  EXPECT_EQ(token(r1, 151648), "<think>");
  EXPECT_EQ(token(r1, 151649), "</think>");
  EXPECT_EQ(token(r1, 151935), "[PAD151935]");
  EXPECT_FALSE(r1.get_string("tokenizer.chat_template").value().empty());

  GgufFile l3 = open_ok("tokenizer/ggml-vocab-llama-bpe.gguf");
  EXPECT_EQ(l3.get_uint("tokenizer.ggml.bos_token_id").value(), 128000u);
  EXPECT_EQ(l3.get_bool_or("tokenizer.ggml.add_bos_token", false).value(), true);

  GgufFile gpt2 = open_ok("tokenizer/ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(token(gpt2, 50256), "<|endoftext|>");
  EXPECT_EQ(array_size(gpt2, "tokenizer.ggml.merges", ValueType::STRING), 50000u);
}

}  // namespace
}  // namespace dhi::gguf
