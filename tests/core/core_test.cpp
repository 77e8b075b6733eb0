// Tests for core/: half/bfloat conversions, checked arithmetic, the thread pool,
// tensor type geometry and the file mapping.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <thread>
#include <vector>

#include "core/checked.h"
#include "core/expected.h"
#include "core/fp16.h"
#include "core/mapped_file.h"
#include "core/tensor_type.h"
#include "core/thread_pool.h"

namespace dhi {
namespace {

TEST(Fp16, RoundTripsEveryHalf) {
  // Every finite half converts to a float and back to itself.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t v = uint16_t(h);
    if ((v & 0x7c00) == 0x7c00 && (v & 0x3ff)) continue;  // NaN payloads
    EXPECT_EQ(f32_to_fp16(fp16_to_f32(v)), v) << h;
  }
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(fp16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);           // rounds to infinity
  EXPECT_EQ(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);          // tie to even (zero)
  EXPECT_EQ(f32_to_fp16(std::ldexp(3.0f, -26)), 0x0001);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000u)), 0x3f82);  // tie, odd rounds up
}

TEST(Checked, DetectsOverflow) {
  EXPECT_FALSE(checked_mul(uint64_t(1) << 33, uint64_t(1) << 33));
  EXPECT_EQ(*checked_mul(6, 7), 42u);
  EXPECT_FALSE(checked_add(UINT64_MAX, 1));
  EXPECT_EQ(*checked_align_up(33, 32), 64u);
  EXPECT_FALSE(checked_align_up(UINT64_MAX - 1, 32));
}

TEST(TensorType, Geometry) {
  EXPECT_EQ(*row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_EQ(*row_bytes(TensorType::Q8_0, 64), 68u);
  EXPECT_FALSE(row_bytes(TensorType::Q8_0, 33));
  EXPECT_FALSE(tensor_type_info(4));  // Q4_2, removed from the format
  EXPECT_EQ(tensor_type_from_name("Q6_K"), TensorType::Q6_K);
}

TEST(ThreadPool, CoversRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 7, 1000, 4097}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    for (int rep = 0; rep < 20; ++rep)
      pool.parallel_for(n, 13, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
      });
    for (auto& h : hits) EXPECT_EQ(h.load(), 20);
  }
}

// Back-to-back regions (workers still spinning), regions after a pause long
// enough for them to fall asleep, and a region's writes seen by the caller
// and the next region: the hand-offs between spinning and sleeping lose
// neither a start nor a finish.
TEST(ThreadPool, RegionsAfterSpinAndAfterSleepSeeEachOthersWrites) {
  for (int threads : {2, 4}) {
    ThreadPool pool(threads);
    std::vector<int64_t> data(512, 0);
    for (int rep = 0; rep < 300; ++rep) {
      if (rep % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      pool.parallel_for(int64_t(data.size()), 1 + rep % 7, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) data[size_t(i)] += i + rep;
      });
      // Plain (non-atomic) reads: the region's end must order the workers' writes.
      int64_t sum = 0;
      for (int64_t v : data) sum += v;
      const int64_t n = int64_t(data.size());
      int64_t want = 0;
      for (int r = 0; r <= rep; ++r) want += n * (n - 1) / 2 + n * r;
      ASSERT_EQ(sum, want) << "threads " << threads << " rep " << rep;
    }
  }
}

TEST(ThreadPool, DestroyedRightAfterARegion) {
  for (int rep = 0; rep < 50; ++rep) {
    ThreadPool pool(3);
    std::atomic<int> calls{0};
    pool.parallel_for(8, 1, [&](int64_t b, int64_t e) { calls += int(e - b); });
    EXPECT_EQ(calls.load(), 8);
  }
}

TEST(MappedFile, MissingFileIsAnError) {
  auto f = MappedFile::open("/nonexistent/dhi-test-file");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("/nonexistent/dhi-test-file"), std::string::npos);
}

TEST(MappedFile, MapsContents) {
  std::string path = ::testing::TempDir() + "/dhi_mapped_file_test.bin";
  { std::ofstream(path, std::ios::binary) << "hello"; }
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), 5), "hello");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dhi
