// Catalog weight bytes pinned to sums computed here from the shapes and the
// GGUF block sizes (bytes per block written out, not taken from dhi's tables),
// and catalog descriptions equal to the headers of files dhi's writer produces
// with the same shapes and mixes.
#include <gtest/gtest.h>

#include <cstdint>

#include "model/synth.h"
#include "model/synth_presets.h"
#include "planner/model_desc.h"

namespace dhi::planner {
namespace {

// Bytes of n elements of each type: GGUF block sizes (elements, bytes).
uint64_t q2k(uint64_t n) { return n / 256 * 84; }
uint64_t q3k(uint64_t n) { return n / 256 * 110; }
uint64_t q4k(uint64_t n) { return n / 256 * 144; }
uint64_t q5k(uint64_t n) { return n / 256 * 176; }
uint64_t q6k(uint64_t n) { return n / 256 * 210; }
uint64_t q8_0(uint64_t n) { return n / 32 * 34; }
uint64_t f16(uint64_t n) { return n * 2; }
uint64_t f32(uint64_t n) { return n * 4; }

struct Shape {
  uint64_t E, Q, KV, F, V, L, head_dim;
};

// Layers that get more bits in llama.cpp's _M mixes, listed by hand.
bool more_bits_28(uint64_t i) {
  for (uint64_t l : {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27})
    if (i == l) return true;
  return false;
}
bool more_bits_36(uint64_t i) {
  for (uint64_t l : {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35})
    if (i == l) return true;
  return false;
}

uint64_t weights(const char* name, const char* quant) {
  auto d = describe_catalog(name, quant);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
  return d.ok() ? d->weight_bytes() : 0;
}

TEST(Catalog, Qwen15BQ4KM) {
  const Shape s{1536, 1536, 256, 8960, 151936, 28, 128};
  uint64_t want = q4k(s.E * s.V) + q6k(s.E * s.V) + f32(s.E);  // token_embd, output, output_norm
  for (uint64_t i = 0; i < s.L; ++i) {
    const bool more = more_bits_28(i);
    want += f32(2 * s.E) + f32(s.Q + 2 * s.KV);  // norms, q/k/v biases
    want += q4k(s.E * s.Q) + q4k(s.E * s.KV) + (more ? q6k(s.E * s.KV) : q4k(s.E * s.KV)) + q4k(s.Q * s.E);
    want += 2 * q4k(s.E * s.F) + (more ? q6k(s.F * s.E) : q4k(s.F * s.E));
  }
  EXPECT_EQ(weights("r1-distill-qwen-1.5b", "Q4_K_M"), want);
}

TEST(Catalog, Qwen7BQ8_0AndF16) {
  const Shape s{3584, 3584, 512, 18944, 152064, 28, 128};
  const uint64_t per_layer_matrix = s.E * s.Q + 2 * s.E * s.KV + s.Q * s.E + 3 * s.E * s.F;
  const uint64_t vectors = s.L * (2 * s.E + s.Q + 2 * s.KV) + s.E;
  EXPECT_EQ(weights("r1-distill-qwen-7b", "Q8_0"), q8_0(2 * s.E * s.V + s.L * per_layer_matrix) + f32(vectors));
  EXPECT_EQ(weights("r1-distill-qwen-7b", "F16"), f16(2 * s.E * s.V + s.L * per_layer_matrix) + f32(vectors));
}

TEST(Catalog, Llama8BQ6K) {
  // Llama: no biases; rope_freqs.weight (head_dim / 2 floats); Q6_K everywhere.
  const Shape s{4096, 4096, 1024, 14336, 128256, 32, 128};
  const uint64_t per_layer_matrix = s.E * s.Q + 2 * s.E * s.KV + s.Q * s.E + 3 * s.E * s.F;
  EXPECT_EQ(weights("r1-distill-llama-8b", "Q6_K"),
            q6k(2 * s.E * s.V + s.L * per_layer_matrix) + f32(s.L * 2 * s.E + s.E + s.head_dim / 2));
}

TEST(Catalog, Qwen3_8BQ5KM) {
  // Qwen3: q/k norms of head_dim, no biases; 36 layers.
  const Shape s{4096, 4096, 1024, 12288, 151936, 36, 128};
  uint64_t want = q5k(s.E * s.V) + q6k(s.E * s.V) + f32(s.E);
  for (uint64_t i = 0; i < s.L; ++i) {
    const bool more = more_bits_36(i);
    want += f32(2 * s.E + 2 * s.head_dim);
    want += q5k(s.E * s.Q) + q5k(s.E * s.KV) + (more ? q6k(s.E * s.KV) : q5k(s.E * s.KV)) + q5k(s.Q * s.E);
    want += 2 * q5k(s.E * s.F) + (more ? q6k(s.F * s.E) : q5k(s.F * s.E));
  }
  EXPECT_EQ(weights("r1-0528-qwen3-8b", "Q5_K_M"), want);
}

TEST(Catalog, Qwen14BQ2K) {
  // Q2_K: attn_v Q4_K (5 query heads per KV head), ffn_down and attn_output Q3_K.
  const Shape s{5120, 5120, 1024, 13824, 152064, 48, 128};
  uint64_t want = q2k(s.E * s.V) + q6k(s.E * s.V) + f32(s.E);
  for (uint64_t i = 0; i < s.L; ++i) {
    want += f32(2 * s.E + s.Q + 2 * s.KV);
    want += q2k(s.E * s.Q) + q2k(s.E * s.KV) + q4k(s.E * s.KV) + q3k(s.Q * s.E);
    want += 2 * q2k(s.E * s.F) + q3k(s.F * s.E);
  }
  EXPECT_EQ(weights("r1-distill-qwen-14b", "Q2_K"), want);
}

TEST(Catalog, Llama70BQ3KM) {
  // Q3_K_M on an 80-layer model: attn_v Q5_K in every layer (the first two by
  // the mix, the rest raised from Q4_K by the 70B rule), ffn_down Q5_K in the
  // first 80/16 = 5 layers then Q4_K, attn_output Q4_K.
  const Shape s{8192, 8192, 1024, 28672, 128256, 80, 128};
  uint64_t want = q3k(s.E * s.V) + q6k(s.E * s.V) + f32(s.E + s.head_dim / 2);
  for (uint64_t i = 0; i < s.L; ++i) {
    want += f32(2 * s.E);
    want += q3k(s.E * s.Q) + q3k(s.E * s.KV) + q5k(s.E * s.KV) + q4k(s.Q * s.E);
    want += 2 * q3k(s.E * s.F) + (i < 5 ? q5k(s.F * s.E) : q4k(s.F * s.E));
  }
  EXPECT_EQ(weights("r1-distill-llama-70b", "Q3_K_M"), want);
}

TEST(Catalog, Qwen32BSizesDecreaseWithQuant) {
  uint64_t last = UINT64_MAX;
  for (std::string_view q : catalog_quants()) {
    const uint64_t w = weights("r1-distill-qwen-32b", std::string(q).c_str());
    EXPECT_LT(w, last) << q;
    last = w;
  }
  // F16 of 32.76 B parameters.
  EXPECT_NEAR(double(weights("r1-distill-qwen-32b", "F16")) / 2e9, 32.76, 0.01);
}

TEST(Catalog, NameWithQuantSuffixAndErrors) {
  auto a = describe_catalog("r1-distill-qwen-7b:Q8_0", "Q4_K_M");
  auto b = describe_catalog("r1-distill-qwen-7b", "Q8_0");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->weight_bytes(), b->weight_bytes());
  EXPECT_FALSE(describe_catalog("r1-distill-qwen-7b", "Q4_0").ok());  // not a catalog quant
  auto unknown = describe_catalog("gpt-5", "Q4_K_M");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("r1-distill-qwen-1.5b"), std::string::npos);  // lists the catalog
}

// A small preset with the catalog's machinery, and the same model written by
// dhi's GGUF writer: the header of the file must describe the same bytes.
class CatalogMatchesFile : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(CatalogMatchesFile, SameBytes) {
  const auto [arch, quant] = GetParam();
  const bool llama = std::string_view(arch) == "llama";
  const model::SynthPreset preset{"tiny", "test", arch, 256, 6, 4, 2, 64, 512, 96, 2048, 1e-5f, 10000.0f, llama};
  auto cat = describe_catalog(preset, quant);
  ASSERT_TRUE(cat.ok()) << cat.error().message;

  auto mix = model::parse_quant_mix(quant);
  ASSERT_TRUE(mix.ok());
  model::SynthSpec spec;
  spec.arch = arch;
  spec.n_vocab = preset.n_vocab;
  spec.n_embd = preset.n_embd;
  spec.n_layer = preset.n_layer;
  spec.n_head = preset.n_head;
  spec.n_head_kv = preset.n_head_kv;
  spec.head_dim = preset.head_dim;
  spec.n_ff = preset.n_ff;
  spec.rope_freqs = llama;
  spec.type_for = [m = *mix](const std::string& name) { return model::mix_tensor_type(m, name, 6, 2); };
  auto w = model::synth_model(spec);
  ASSERT_TRUE(w.ok()) << w.error().message;
  const std::vector<uint8_t> bytes = w->to_bytes();
  auto file = gguf::GgufFile::parse(bytes);
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto got = describe_gguf(*file, "tiny.gguf");
  ASSERT_TRUE(got.ok()) << got.error().message;

  EXPECT_EQ(got->layer_bytes, cat->layer_bytes);
  EXPECT_EQ(got->token_embd_bytes, cat->token_embd_bytes);
  EXPECT_EQ(got->output_bytes, cat->output_bytes);
  EXPECT_EQ(got->other_bytes, cat->other_bytes);
  EXPECT_EQ(got->weight_bytes(), cat->weight_bytes());
  EXPECT_EQ(got->n_params, cat->n_params);
  EXPECT_EQ(got->bytes_by_type, cat->bytes_by_type);
  uint64_t sum = 0;
  for (const gguf::TensorInfo& t : file->tensors()) sum += t.n_bytes;
  EXPECT_EQ(got->weight_bytes(), sum);
  EXPECT_EQ(got->header_bytes, file->data_offset());
}

INSTANTIATE_TEST_SUITE_P(ArchesAndMixes, CatalogMatchesFile,
                         ::testing::Combine(::testing::Values("llama", "qwen2", "qwen3"),
                                            ::testing::Values("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M",
                                                              "Q2_K")));

}  // namespace
}  // namespace dhi::planner
