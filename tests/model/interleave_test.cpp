// Loading with the row-interleaved layout (Model::load's default where the
// ISA's decode kernels read it, kernels/cpu/dot/interleave.h) changes nothing
// the model computes: every logit of a 20-token prefill (the outer-product
// path on rows read back from their groups) and of greedy decode steps is
// bit-for-bit the one the file's layout gives, for Q4_K, Q6_K, Q8_0 and F16
// weights, with a tied output (the embedding table interleaved, its rows read
// back by the lookup) and without, and a vocabulary that leaves a tail of rows
// outside the 16-row groups. The model is a file on disk, so the loader
// releases the mapped pages it copied; the file's bytes read through that
// mapping afterwards are still the file's.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/ops.h"
#include "model/test_util.h"

namespace dhi::model::test {
namespace {

class InterleavedLoad : public ::testing::TestWithParam<std::tuple<TensorType, bool>> {};

TEST_P(InterleavedLoad, LogitsIdenticalToFileLayout) {
  const auto [type, tied] = GetParam();
  if (!kernels::cpu::interleaved_layout_pays(type)) GTEST_SKIP() << "no interleaved kernel on this ISA";
  SynthSpec spec;
  spec.arch = "qwen2";
  spec.n_vocab = 100;  // 6 groups of 16 rows and a tail of 4
  spec.n_embd = 256;
  spec.n_layer = 2;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.head_dim = 64;
  spec.n_ff = 512;
  spec.weight_type = type;
  spec.tied_output = tied;
  spec.seed = 99;
  auto w = synth_model(spec);
  ASSERT_TRUE(w.ok()) << w.error().message;
  const std::string path = ::testing::TempDir() + "/dhi_interleave_" + std::string(tensor_type_name(type)) +
                           (tied ? "_tied_" : "_") + std::to_string(getpid()) + ".gguf";
  ASSERT_TRUE(w->write_file(path).ok());
  auto rows_file = gguf::GgufFile::open(path);
  auto il_file = gguf::GgufFile::open(path);
  std::remove(path.c_str());  // the mappings stay valid
  ASSERT_TRUE(rows_file.ok() && il_file.ok());

  LoadOptions file_layout;
  file_layout.interleave = false;
  auto rows_model = Model::load(*rows_file, file_layout);
  auto il_model = Model::load(*il_file);
  ASSERT_TRUE(rows_model.ok()) << rows_model.error().message;
  ASSERT_TRUE(il_model.ok()) << il_model.error().message;
  EXPECT_EQ((*rows_model)->interleaved_bytes(), 0u);
  EXPECT_GE((*il_model)->interleaved_bytes(), (*il_model)->weights().layers[0].ffn_up.row_bytes * 512);
  EXPECT_TRUE((*il_model)->weights().output.interleaved);
  EXPECT_EQ((*il_model)->weights().token_embd.interleaved, tied);

  const std::vector<int32_t> prompt = {1, 17, 42, 5, 77, 63, 2, 99, 98, 30, 31, 8, 60, 61, 4, 3, 12, 13, 97, 50};
  std::vector<std::vector<float>> want, got;
  for (auto [model, logits] : {std::pair{rows_model->get(), &want}, std::pair{il_model->get(), &got}}) {
    auto ctx = Context::create(*model, {.n_ctx = 64, .n_seq = 1, .n_threads = 2});
    ASSERT_TRUE(ctx.ok()) << ctx.error().message;
    greedy(**ctx, prompt, 8, 0, logits);
  }
  ASSERT_EQ(want.size(), got.size());
  for (size_t s = 0; s < want.size(); ++s)
    for (size_t i = 0; i < want[s].size(); ++i)
      ASSERT_EQ(f32_to_bits(got[s][i]), f32_to_bits(want[s][i])) << "step " << s << " logit " << i;

  // The released pages read back as the file.
  for (const gguf::TensorInfo& t : il_file->tensors())
    ASSERT_EQ(std::memcmp(t.data, rows_file->find_tensor(t.name)->data, t.n_bytes), 0) << t.name;
}

INSTANTIATE_TEST_SUITE_P(Types, InterleavedLoad,
                         ::testing::Combine(::testing::Values(TensorType::Q4_K, TensorType::Q6_K, TensorType::Q8_0,
                                                              TensorType::F16),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(tensor_type_name(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_tied" : "_untied");
                         });

}  // namespace
}  // namespace dhi::model::test
