// `dhi synth` and `dhi bench`: a preset written with one layer has the preset's
// shapes and llama.cpp's Q4_K_M types and runs; random blocks dequantize to the
// intended statistics; the bytes depend on the seed but not on the thread
// count; bench --json reports every key with values that agree with the file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/synth_presets.h"
#include "quant/quant.h"
#include "run_command.h"

namespace dhi::test {
namespace {

std::string r1_vocab() { return shared_dir() + "/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf"; }
std::string spm_vocab() { return shared_dir() + "/tokenizer/ggml-vocab-llama-spm.gguf"; }
std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
}

TEST(SynthPresets, UseMoreBitsMatchesLlamaCppLayersFor28) {
  // First and last eighth (3 and 4 layers of 28) and every third layer between.
  const std::set<int32_t> expected = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27};
  for (int32_t i = 0; i < 28; ++i) EXPECT_EQ(model::use_more_bits(i, 28), expected.count(i) == 1) << i;
}

TEST(SynthPresets, Q4KMTypes) {
  auto mix = model::parse_quant_mix("Q4_K_M");
  ASSERT_TRUE(mix.ok());
  EXPECT_EQ(model::mix_tensor_type(*mix, "output.weight", 28), TensorType::Q6_K);
  EXPECT_EQ(model::mix_tensor_type(*mix, "token_embd.weight", 28), TensorType::Q4_K);
  EXPECT_EQ(model::mix_tensor_type(*mix, "blk.5.attn_v.weight", 28), TensorType::Q6_K);
  EXPECT_EQ(model::mix_tensor_type(*mix, "blk.6.attn_v.weight", 28), TensorType::Q4_K);
  EXPECT_EQ(model::mix_tensor_type(*mix, "blk.27.ffn_down.weight", 28), TensorType::Q6_K);
  EXPECT_EQ(model::mix_tensor_type(*mix, "blk.7.ffn_down.weight", 28), TensorType::Q4_K);
  EXPECT_EQ(model::mix_tensor_type(*mix, "blk.0.attn_q.weight", 28), TensorType::Q4_K);
  auto q8 = model::parse_quant_mix("Q8_0");
  ASSERT_TRUE(q8.ok());
  EXPECT_EQ(model::mix_tensor_type(*q8, "output.weight", 28), TensorType::Q8_0);
  EXPECT_FALSE(model::parse_quant_mix("Q9_9").ok());
  EXPECT_FALSE(model::parse_quant_mix("Q8_K").ok());  // activations only
}

TEST(SynthPresets, Llama3RopeFreqs) {
  // Llama 3.1 (base 500000, head_dim 128): high frequencies unscaled, low ones
  // divided by the factor 8, a smooth ramp between.
  const std::vector<float> f = model::llama3_rope_freqs(128, 500000.0f);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_FLOAT_EQ(f.front(), 1.0f);
  EXPECT_FLOAT_EQ(f.back(), 8.0f);
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
  EXPECT_GT(std::count_if(f.begin(), f.end(), [](float v) { return v > 1.0f && v < 8.0f; }), 0);
}

// A small model in the library's own spec: 256-wide (K-quant blocks), 2 layers.
model::SynthSpec small_spec(const gguf::GgufFile& vocab, TensorType t, uint64_t seed) {
  model::SynthSpec s;
  s.arch = "qwen2";
  s.n_embd = 256;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 512;
  s.weight_type = t;
  s.seed = seed;
  s.vocab_source = &vocab;
  return s;
}

std::string write_small(const gguf::GgufFile& vocab, TensorType t, uint64_t seed, int32_t threads,
                        const std::string& name) {
  const std::string path = temp_path(name);
  model::SynthFileOptions o;
  o.n_threads = threads;
  auto info = model::write_synth_model(small_spec(vocab, t, seed), o, path);
  EXPECT_TRUE(info.ok()) << info.error().message;
  return path;
}

TEST(SynthWriter, RandomBlocksHaveTheIntendedStatistics) {
  auto vocab = gguf::GgufFile::open(spm_vocab());
  ASSERT_TRUE(vocab.ok()) << vocab.error().message;
  for (TensorType t : {TensorType::F16, TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K,
                       TensorType::Q5_K}) {
    SCOPED_TRACE(std::string(tensor_type_name(t)));
    const std::string path = write_small(*vocab, t, 7, 2, "stats.gguf");
    auto f = gguf::GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    // ffn_up: 256 inputs, so standard deviation 1/16 around 0.
    const gguf::TensorInfo* up = f->find_tensor("blk.1.ffn_up.weight");
    ASSERT_NE(up, nullptr);
    EXPECT_EQ(up->type, t);
    auto w = dequantize(t, {up->data, size_t(up->n_bytes)}, int64_t(up->n_elements));
    ASSERT_TRUE(w.ok());
    double sum = 0, sq = 0;
    for (float v : *w) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sq += double(v) * v;
    }
    const double n = double(w->size()), mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.01);
    EXPECT_NEAR(sd, 1.0 / 16, 0.1 / 16);
    // Norm weights stay F32 around 1.
    const gguf::TensorInfo* norm = f->find_tensor("blk.0.attn_norm.weight");
    ASSERT_NE(norm, nullptr);
    EXPECT_EQ(norm->type, TensorType::F32);
    const float* nv = reinterpret_cast<const float*>(norm->data);
    for (uint64_t i = 0; i < norm->n_elements; ++i) EXPECT_NEAR(nv[i], 1.0f, 0.2f);
    std::remove(path.c_str());
  }
}

TEST(SynthWriter, BytesDependOnSeedNotThreads) {
  auto vocab = gguf::GgufFile::open(spm_vocab());
  ASSERT_TRUE(vocab.ok());
  const std::string a = write_small(*vocab, TensorType::Q4_K, 3, 1, "a.gguf");
  const std::string b = write_small(*vocab, TensorType::Q4_K, 3, 2, "b.gguf");
  const std::string c = write_small(*vocab, TensorType::Q4_K, 4, 2, "c.gguf");
  const std::string ba = read_text(a), bb = read_text(b), bc = read_text(c);
  EXPECT_GT(ba.size(), 1000000u);
  EXPECT_EQ(ba, bb);
  EXPECT_EQ(ba.size(), bc.size());
  EXPECT_NE(ba, bc);
  for (const std::string& p : {a, b, c}) std::remove(p.c_str());
}

TEST(GgufStreamWriter, SameBytesAsTheInMemoryWriter) {
  // Three tensors, sizes not multiples of the alignment, written in odd chunks
  // that span tensor boundaries.
  std::vector<gguf::TensorDecl> decls = {{"a", TensorType::F32, {5}},
                                         {"b", TensorType::Q8_0, {32, 3}},
                                         {"c", TensorType::F16, {7, 2}}};
  std::vector<std::vector<uint8_t>> data;
  gguf::GgufWriter mem(64);
  gguf::GgufWriter meta(64);
  for (gguf::GgufWriter* w : {&mem, &meta}) {
    w->set_string("general.architecture", "llama");
    w->set_u32("x.count", 7);
  }
  std::vector<uint8_t> all;
  uint8_t next = 1;
  for (const auto& d : decls) {
    const auto geometry = gguf::tensor_geometry(uint32_t(d.type), d.dims);
    ASSERT_TRUE(geometry.ok());
    std::vector<uint8_t> bytes(size_t(geometry->n_bytes));
    for (uint8_t& b : bytes) b = next++;
    all.insert(all.end(), bytes.begin(), bytes.end());
    ASSERT_TRUE(mem.add_tensor(d.name, d.type, d.dims, bytes).ok());
  }
  const std::string path = temp_path("stream.gguf");
  auto w = gguf::GgufStreamWriter::create(path, meta, decls);
  ASSERT_TRUE(w.ok()) << w.error().message;
  for (size_t i = 0; i < all.size(); i += 13) ASSERT_TRUE(w->write(all.data() + i, std::min<size_t>(13, all.size() - i)).ok());
  EXPECT_FALSE(w->write(all.data(), 1).ok());  // beyond the declared tensors
  auto size = w->finish();
  ASSERT_TRUE(size.ok()) << size.error().message;
  const std::vector<uint8_t> expected = mem.to_bytes();
  EXPECT_EQ(*size, expected.size());
  const std::string got = read_text(path);
  EXPECT_EQ(got, std::string(expected.begin(), expected.end()));
  std::remove(path.c_str());
}

TEST(GgufStreamWriter, Errors) {
  const std::string path = temp_path("stream_err.gguf");
  gguf::GgufWriter meta;
  std::vector<gguf::TensorDecl> decls = {{"a", TensorType::F32, {4}}};
  auto w = gguf::GgufStreamWriter::create(path, meta, decls);
  ASSERT_TRUE(w.ok());
  const float x[2] = {1, 2};
  ASSERT_TRUE(w->write(x, sizeof x).ok());
  auto done = w->finish();  // 8 of 16 bytes
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.error().message.find("8 of 16"), std::string::npos) << done.error().message;

  decls.push_back({"a", TensorType::F32, {4}});
  EXPECT_FALSE(gguf::GgufStreamWriter::create(path, meta, decls).ok());  // duplicate
  EXPECT_FALSE(gguf::GgufStreamWriter::create(path, meta, {{"q", TensorType::Q8_0, {31}}}).ok());  // bad shape
  gguf::GgufWriter with_tensor;
  ASSERT_TRUE(with_tensor.add_tensor("t", TensorType::F32, {1}, std::vector<uint8_t>(4)).ok());
  EXPECT_FALSE(gguf::GgufStreamWriter::create(path, with_tensor, {}).ok());
  EXPECT_FALSE(gguf::GgufStreamWriter::create("/nonexistent/dir/x.gguf", meta, {}).ok());
  std::remove(path.c_str());
}

TEST(CliSynth, OneLayerPresetHasPresetShapesAndQ4KMTypesAndRuns) {
  const std::string path = temp_path("r1-1.5b-1layer.gguf");
  CommandResult r = run_dhi("synth r1-distill-qwen-1.5b -q Q4_K_M --layers 1 --vocab " + shell_quote(r1_vocab()) +
                            " -o " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto f = gguf::GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(*f->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(*f->get_uint("qwen2.embedding_length"), 1536u);
  EXPECT_EQ(*f->get_uint("qwen2.block_count"), 1u);
  EXPECT_EQ(*f->get_uint("qwen2.feed_forward_length"), 8960u);
  EXPECT_EQ(*f->get_uint("qwen2.attention.head_count"), 12u);
  EXPECT_EQ(*f->get_uint("qwen2.attention.head_count_kv"), 2u);
  EXPECT_EQ(*f->get_uint("qwen2.context_length"), 131072u);
  EXPECT_FLOAT_EQ(float(*f->get_float("qwen2.rope.freq_base")), 10000.0f);
  EXPECT_NE(f->find("tokenizer.chat_template"), nullptr);

  // name -> (dims, type). With one layer, layer 0 is in the last eighth: Q6_K
  // for attn_v and ffn_down.
  const std::map<std::string, std::pair<std::vector<uint64_t>, TensorType>> expected = {
      {"token_embd.weight", {{1536, 151936}, TensorType::Q4_K}},
      {"blk.0.attn_norm.weight", {{1536}, TensorType::F32}},
      {"blk.0.attn_q.weight", {{1536, 1536}, TensorType::Q4_K}},
      {"blk.0.attn_k.weight", {{1536, 256}, TensorType::Q4_K}},
      {"blk.0.attn_v.weight", {{1536, 256}, TensorType::Q6_K}},
      {"blk.0.attn_q.bias", {{1536}, TensorType::F32}},
      {"blk.0.attn_k.bias", {{256}, TensorType::F32}},
      {"blk.0.attn_v.bias", {{256}, TensorType::F32}},
      {"blk.0.attn_output.weight", {{1536, 1536}, TensorType::Q4_K}},
      {"blk.0.ffn_norm.weight", {{1536}, TensorType::F32}},
      {"blk.0.ffn_gate.weight", {{1536, 8960}, TensorType::Q4_K}},
      {"blk.0.ffn_up.weight", {{1536, 8960}, TensorType::Q4_K}},
      {"blk.0.ffn_down.weight", {{8960, 1536}, TensorType::Q6_K}},
      {"output_norm.weight", {{1536}, TensorType::F32}},
      {"output.weight", {{1536, 151936}, TensorType::Q6_K}},
  };
  EXPECT_EQ(f->tensors().size(), expected.size());
  for (const auto& [name, want] : expected) {
    const gguf::TensorInfo* t = f->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dims, want.first) << name;
    EXPECT_EQ(t->type, want.second) << name;
  }

  r = run_dhi("run -m " + shell_quote(path) + " --raw -p 'Hello' -n 3 --temp 0 -t 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"].size(), 3u);
  for (const auto& id : j["tokens"]) EXPECT_LT(id.get<int64_t>(), 151936);
  std::remove(path.c_str());
}

TEST(SynthWriter, PadsVocabWithUnusedTokens) {
  // As the 7B preset pads the 151936-token R1 vocab to its 152064 rows; here a
  // SentencePiece vocab (which also has scores) from 32000 to 32100.
  auto vocab = gguf::GgufFile::open(spm_vocab());
  ASSERT_TRUE(vocab.ok());
  const std::string path = temp_path("padded.gguf");
  model::SynthFileOptions o;
  o.n_vocab_min = 32100;
  auto info = model::write_synth_model(small_spec(*vocab, TensorType::Q8_0, 1), o, path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->n_vocab, 32100);
  auto f = gguf::GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto tokens = f->get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  auto types = f->get_array("tokenizer.ggml.token_type", gguf::ValueType::INT32);
  auto scores = f->get_array("tokenizer.ggml.scores", gguf::ValueType::FLOAT32);
  ASSERT_TRUE(tokens.ok() && types.ok() && scores.ok());
  EXPECT_EQ((*tokens)->items.size(), 32100u);
  EXPECT_EQ((*types)->items.size(), 32100u);
  EXPECT_EQ((*scores)->items.size(), 32100u);
  EXPECT_EQ(*(*tokens)->items.back().as_string(), "[PAD32099]");
  EXPECT_EQ(*(*types)->items.back().as_int(), 5);  // unused
  // The source's own tokens are untouched.
  auto src_tokens = vocab->get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING);
  EXPECT_EQ((*src_tokens)->items.size(), 32000u);
  EXPECT_EQ(*(*tokens)->items[31999].as_string(), *(*src_tokens)->items[31999].as_string());
  EXPECT_EQ(f->find_tensor("token_embd.weight")->dims, (std::vector<uint64_t>{256, 32100}));
  EXPECT_EQ(f->find_tensor("output.weight")->dims, (std::vector<uint64_t>{256, 32100}));
  CommandResult r = run_dhi("info " + shell_quote(path));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::remove(path.c_str());
}

TEST(CliSynth, ErrorsNameTheProblem) {
  CommandResult r = run_dhi("synth no-such-model --vocab " + shell_quote(r1_vocab()) + " -o /dev/null");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("r1-distill-qwen-1.5b"), std::string::npos) << r.err;  // lists the presets
  r = run_dhi("synth r1-distill-qwen-1.5b -q Q3_X --vocab " + shell_quote(r1_vocab()) + " -o /dev/null");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Q3_X"), std::string::npos) << r.err;
  r = run_dhi("synth r1-distill-qwen-1.5b --vocab /nonexistent.gguf -o /dev/null");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos) << r.err;
  r = run_dhi("synth r1-distill-qwen-1.5b --layers 1 --vocab " + shell_quote(r1_vocab()) + " -o /nonexistent/x.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot create"), std::string::npos) << r.err;
}

TEST(CliBench, JsonHasEveryKeyWithSaneValues) {
  const std::string model = shared_dir() + "/models/stories260K.gguf";
  CommandResult r = run_dhi("bench -m " + shell_quote(model) + " --json -p 16 -n 8 -r 2 -t 2 --bandwidth-mib 16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"prompt_tps", "gen_tps", "ttft_ms", "load_ms", "bandwidth_fraction", "bandwidth_gbs"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0.0) << key;
    if (std::string(key) != "bandwidth_gbs") {
      const nlohmann::json& s = j["spread"][key];
      EXPECT_LE(s["min"].get<double>(), s["median"].get<double>()) << key;
      EXPECT_LE(s["median"].get<double>(), s["max"].get<double>()) << key;
      EXPECT_DOUBLE_EQ(s["median"].get<double>(), j[key].get<double>()) << key;
    }
  }
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["reps"], 2);
  EXPECT_EQ(j["n_prompt"], 16);
  EXPECT_EQ(j["n_gen"], 8);
  EXPECT_EQ(j["runs"].size(), 2u);
  EXPECT_TRUE(j["isa"] == "generic" || j["isa"] == "avx2" || j["isa"] == "avx512") << j["isa"];
  EXPECT_EQ(j["bandwidth_source"], "measured");
  EXPECT_FALSE(j["git_revision"].get<std::string>().empty());
  // Time to first token covers the whole prompt.
  for (const auto& run : j["runs"]) EXPECT_GE(run["ttft_ms"].get<double>(), run["prompt_ms"].get<double>());

  // Weights read per token: every tensor but the (untied) embedding table.
  auto f = gguf::GgufFile::open(model);
  ASSERT_TRUE(f.ok());
  uint64_t expected = 0, file_bytes = f->file_size();
  for (const gguf::TensorInfo& t : f->tensors())
    if (t.name != "token_embd.weight") expected += t.n_bytes;
  EXPECT_EQ(j["weight_bytes_per_token"].get<uint64_t>(), expected);
  EXPECT_EQ(j["model"]["file_bytes"].get<uint64_t>(), file_bytes);
  EXPECT_EQ(j["model"]["arch"], "llama");
  EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), file_bytes);
  // Probes before the first run and after each: a run's "after" is the next
  // run's "before". Each run's fraction is the product the README defines, at
  // the mean of its two probes; the reported one is the median over the steady
  // runs (all of them when none is).
  const nlohmann::json& probes = j["bandwidth"]["probes"];
  ASSERT_EQ(probes.size(), 3u);
  std::vector<double> steady, all;
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& run = j["runs"][i];
    const double before = run["bandwidth_before_gbs"], after = run["bandwidth_after_gbs"];
    EXPECT_EQ(before, probes[i]["median_gbs"].get<double>());
    EXPECT_EQ(after, probes[i + 1]["median_gbs"].get<double>());
    const double f = double(expected) * run["gen_tps"].get<double>() / ((before + after) / 2 * 1e9);
    EXPECT_NEAR(run["bandwidth_fraction"].get<double>(), f, 1e-9);
    EXPECT_EQ(run["bandwidth_steady"].get<bool>(), std::abs(after - before) <= 0.15 * (before + after) / 2);
    all.push_back(f);
    if (run["bandwidth_steady"].get<bool>()) steady.push_back(f);
  }
  EXPECT_EQ(j["steady_runs"].get<size_t>(), steady.size());
  const std::vector<double>& counted = steady.empty() ? all : steady;
  double median = counted[0];
  if (counted.size() == 2) median = (counted[0] + counted[1]) / 2;
  EXPECT_NEAR(j["bandwidth_fraction"].get<double>(), median, 1e-9);
}

TEST(CliBench, GivenBandwidthAndBandwidthOnly) {
  const std::string model = shared_dir() + "/models/stories260K.gguf";
  CommandResult r = run_dhi("bench -m " + shell_quote(model) + " --json -p 4 -n 2 -r 1 --bandwidth-gbs 50");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bandwidth_gbs"], 50.0);
  EXPECT_EQ(j["bandwidth_source"], "given");
  EXPECT_FALSE(j.contains("bandwidth"));  // nothing probed
  EXPECT_EQ(j["runs"][0]["bandwidth_before_gbs"], 50.0);
  EXPECT_EQ(j["steady_runs"], 1);

  r = run_dhi("bench --bandwidth --json -t 2 --bandwidth-mib 16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["pass_gbs"].size(), 7u);
  EXPECT_GT(j["median_gbs"].get<double>(), 0.0);
  EXPECT_LE(j["min_gbs"].get<double>(), j["median_gbs"].get<double>());
  EXPECT_LE(j["median_gbs"].get<double>(), j["max_gbs"].get<double>());
  EXPECT_EQ(j["buffer_bytes"], 16u << 20);
  EXPECT_EQ(j["threads"], 2);
}

TEST(CliBench, Errors) {
  CommandResult r = run_dhi("bench");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-m"), std::string::npos) << r.err;
  r = run_dhi("bench -m /nonexistent.gguf -r 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos) << r.err;
  r = run_dhi("bench -m x.gguf -p 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.signaled);
}

}  // namespace
}  // namespace dhi::test
