// Handmade super-blocks of the K-quants and Q8_K. Scale bytes are literal
// arrays packed by hand, with the scale/min values they encode written next to
// them; the expected element values restate the GGML format definition per
// element index i (which byte, which bits, which sub-block) rather than by the
// dequantizer's loops, and a few are worked out fully by hand in comments.
// Super-scales are powers of two so every expected value is exact in float.
#include <gtest/gtest.h>

#include <cstring>

#include "quant_test_util.h"

namespace dhi {
namespace {

using test::dequant;
using test::put_u16;

// Q4_K/Q5_K scale packing, by hand. Sub-blocks j = 0..7 get
//   scale sc = {1, 2, 3, 63, 17, 33, 48, 5}, min m = {0, 7, 62, 9, 20, 36, 1, 63}.
// Bytes 0..3 hold sc0..sc3 in bits 0-5 and the top 2 bits of sc4..sc7 in 6-7;
// bytes 4..7 the same for the mins; bytes 8..11 the low 4 bits of sc4..sc7
// (low nibble) and of m4..m7 (high nibble):
//   b0 = 1 | (17>>4)<<6 = 0x41   b4 = 0 | (20>>4)<<6 = 0x40   b8  = 1 | 4<<4  = 0x41
//   b1 = 2 | (33>>4)<<6 = 0x82   b5 = 7 | (36>>4)<<6 = 0x87   b9  = 1 | 4<<4  = 0x41
//   b2 = 3 | (48>>4)<<6 = 0xc3   b6 = 62 | (1>>4)<<6 = 0x3e   b10 = 0 | 1<<4  = 0x10
//   b3 = 63 | (5>>4)<<6 = 0x3f   b7 = 9 | (63>>4)<<6 = 0xc9   b11 = 5 | 15<<4 = 0xf5
constexpr uint8_t kK4Scales[12] = {0x41, 0x82, 0xc3, 0x3f, 0x40, 0x87, 0x3e, 0xc9, 0x41, 0x41, 0x10, 0xf5};
constexpr int kK4Sc[8] = {1, 2, 3, 63, 17, 33, 48, 5};
constexpr int kK4Min[8] = {0, 7, 62, 9, 20, 36, 1, 63};

TEST(HandmadeQ2_K, FourBitScalesAndMinsTwoBitQuants) {
  std::vector<uint8_t> b(84);
  // scales[k] = scale (low nibble) | min (high nibble), for the 16 groups of 16.
  const uint8_t scales[16] = {0x01, 0x72, 0xe3, 0x54, 0xc5, 0x36, 0xa7, 0x18,
                              0x89, 0xfa, 0x6b, 0xdc, 0x4d, 0xbe, 0x2f, 0x91};
  const int sc[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1};
  const int mn[16] = {0, 7, 14, 5, 12, 3, 10, 1, 8, 15, 6, 13, 4, 11, 2, 9};
  std::memcpy(b.data(), scales, 16);
  for (int k = 0; k < 64; ++k) b[16 + k] = uint8_t(k * 37 + 11);
  put_u16(b, 80, test::kHalfHalf);     // d = 0.5
  put_u16(b, 82, test::kHalfQuarter);  // dmin = 0.25
  const auto y = dequant(TensorType::Q2_K, b, 256);

  // x = d * sc * q - dmin * m.
  EXPECT_EQ(y[0], 1.5f);     // qs[0] = 11 = 0b00001011, bits 0-1 = 3; group 0: 0.5*1*3 - 0
  EXPECT_EQ(y[16], 1.25f);   // qs[16] = 91 = 0b01011011, bits 0-1 = 3; group 1: 0.5*2*3 - 0.25*7
  EXPECT_EQ(y[32], -0.5f);   // qs[0] bits 2-3 = 2; group 2: 0.5*3*2 - 0.25*14
  EXPECT_EQ(y[200], 5.5f);   // qs[32+8] = 211 = 0b11010011, bits 4-5 = 1; group 12: 0.5*13*1 - 0.25*4
  EXPECT_EQ(y[255], -2.25f); // qs[32+31] = 38 = 0b00100110, bits 6-7 = 0; group 15: 0 - 0.25*9
  for (int i = 0; i < 256; ++i) {
    // Element i: byte (i/128)*32 + i%32 of qs, bit pair (i%128)/32, group i/16.
    const int q = (b[16 + (i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
    EXPECT_EQ(y[i], 0.5f * float(sc[i / 16]) * float(q) - 0.25f * float(mn[i / 16])) << i;
  }
}

TEST(HandmadeQ3_K, SixBitScalesWithBiasAndHighBitMask) {
  std::vector<uint8_t> b(110);
  // 16 biased 6-bit scales u = s + 32, packed by hand:
  //   u = {0, 63, 32, 33, 31, 1, 48, 16, 40, 24, 2, 62, 35, 29, 50, 14}
  // low 4 bits: u0..u7 in the low nibbles of bytes 0..7, u8..u15 in the high
  // nibbles; high 2 bits of u_k in byte 8 + k%4, bits 2*(k/4):
  //   b0 = 0 | 8<<4 = 0x80,  b1 = 15 | 8<<4 = 0x8f, b2 = 0 | 2<<4 = 0x20, b3 = 1 | 14<<4 = 0xe1
  //   b4 = 15 | 3<<4 = 0x3f, b5 = 1 | 13<<4 = 0xd1, b6 = 0 | 2<<4 = 0x20, b7 = 0 | 14<<4 = 0xe0
  //   b8  = 0 | 1<<2 | 2<<4 | 2<<6 = 0xa4  (u0, u4, u8, u12 high bits 0, 1, 2, 2)
  //   b9  = 3 | 0<<2 | 1<<4 | 1<<6 = 0x53  (u1, u5, u9, u13: 3, 0, 1, 1)
  //   b10 = 2 | 3<<2 | 0<<4 | 3<<6 = 0xce  (u2, u6, u10, u14: 2, 3, 0, 3)
  //   b11 = 2 | 1<<2 | 3<<4 | 0<<6 = 0x36  (u3, u7, u11, u15: 2, 1, 3, 0)
  const uint8_t scales[12] = {0x80, 0x8f, 0x20, 0xe1, 0x3f, 0xd1, 0x20, 0xe0, 0xa4, 0x53, 0xce, 0x36};
  const int s[16] = {-32, 31, 0, 1, -1, -31, 16, -16, 8, -8, -30, 30, 3, -3, 18, -18};
  for (int k = 0; k < 32; ++k) b[k] = uint8_t(0x5a ^ (k * 13));  // hmask
  for (int k = 0; k < 64; ++k) b[32 + k] = uint8_t(k * 29 + 7);  // qs
  std::memcpy(b.data() + 96, scales, 12);
  put_u16(b, 108, test::kHalfQuarter);  // d = 0.25
  const auto y = dequant(TensorType::Q3_K, b, 256);

  // x = d * s * (low2 - (high bit set ? 0 : 4)).
  EXPECT_EQ(y[0], 8.0f);     // qs[0] = 7: low 3; hmask[0] = 0x5a bit 0 clear: q = -1; 0.25*-32*-1
  EXPECT_EQ(y[20], -7.75f);  // qs[20] = 75: low 3; hmask[20] = 0x5e bit 0 clear: q = -1; 0.25*31*-1
  EXPECT_EQ(y[100], 4.0f);   // qs[4] = 123 bits 6-7 = 1; hmask[4] = 0x6e bit 3 set: q = 1; 0.25*16*1
  EXPECT_EQ(y[224], -9.0f);  // qs[32] = 167 bits 6-7 = 2; hmask[0] bit 7 clear: q = -2; 0.25*18*-2
  for (int i = 0; i < 256; ++i) {
    const int low = (b[32 + (i / 128) * 32 + i % 32] >> (2 * ((i % 128) / 32))) & 3;
    const bool high = (b[i % 32] >> (i / 32)) & 1;  // bit i/32 of hmask[i%32]
    const int q = low - (high ? 0 : 4);
    EXPECT_EQ(y[i], 0.25f * float(s[i / 16]) * float(q)) << i;
  }
}

TEST(HandmadeQ4_K, SixBitScalePackingAndNibbleOrder) {
  std::vector<uint8_t> b(144);
  put_u16(b, 0, test::kHalfHalf);     // d = 0.5
  put_u16(b, 2, test::kHalfQuarter);  // dmin = 0.25
  std::memcpy(b.data() + 4, kK4Scales, 12);
  for (int k = 0; k < 128; ++k) b[16 + k] = uint8_t(k * 53 + 19);
  const auto y = dequant(TensorType::Q4_K, b, 256);

  // x = d * sc_j * q - dmin * m_j, j = i/32.
  EXPECT_EQ(y[0], 1.5f);       // qs[0] = 0x13 low 3; j0: 0.5*1*3 - 0
  EXPECT_EQ(y[32], -0.75f);    // qs[0] high 1; j1: 0.5*2*1 - 0.25*7
  EXPECT_EQ(y[100], 249.75f);  // qs[36] = 0x87 high 8; j3: 0.5*63*8 - 0.25*9
  EXPECT_EQ(y[130], 105.5f);   // qs[66] = 0xbd low 13; j4: 0.5*17*13 - 0.25*20
  EXPECT_EQ(y[170], 90.0f);    // qs[74] = 0x65 high 6; j5: 0.5*33*6 - 0.25*36
  EXPECT_EQ(y[200], 263.75f);  // qs[104] = 0x9b low 11; j6: 0.5*48*11 - 0.25*1
  EXPECT_EQ(y[255], -3.25f);   // qs[127] = 0x5e high 5; j7: 0.5*5*5 - 0.25*63
  for (int i = 0; i < 256; ++i) {
    // 32 bytes per 64 elements: low nibbles first, then high nibbles.
    const int q = (b[16 + (i / 64) * 32 + i % 32] >> (4 * ((i % 64) / 32))) & 15;
    const int j = i / 32;
    EXPECT_EQ(y[i], 0.5f * float(kK4Sc[j]) * float(q) - 0.25f * float(kK4Min[j])) << i;
  }
}

TEST(HandmadeQ5_K, FifthBitPlaneOnTopOfQ4_KLayout) {
  std::vector<uint8_t> b(176);
  put_u16(b, 0, test::kHalfQuarter);  // d = 0.25
  put_u16(b, 2, test::kHalfHalf);     // dmin = 0.5
  std::memcpy(b.data() + 4, kK4Scales, 12);
  for (int k = 0; k < 32; ++k) b[16 + k] = uint8_t(k * 71 + 5);    // qh
  for (int k = 0; k < 128; ++k) b[48 + k] = uint8_t(k * 53 + 19);  // qs
  const auto y = dequant(TensorType::Q5_K, b, 256);

  EXPECT_EQ(y[0], 4.75f);     // low 3, qh[0] = 5 bit 0 set: q = 19; 0.25*1*19
  EXPECT_EQ(y[32], -3.0f);    // low 1, qh[0] bit 1 clear: q = 1; 0.25*2*1 - 0.5*7
  EXPECT_EQ(y[130], 113.25f); // low 13, qh[2] = 0x93 bit 4 set: q = 29; 0.25*17*29 - 0.5*20
  EXPECT_EQ(y[200], 131.5f);  // low 11, qh[8] = 0x3d bit 6 clear: q = 11; 0.25*48*11 - 0.5*1
  EXPECT_EQ(y[255], -5.25f);  // low 5, qh[31] = 0x9e bit 7 set: q = 21; 0.25*5*21 - 0.5*63
  for (int i = 0; i < 256; ++i) {
    const int low = (b[48 + (i / 64) * 32 + i % 32] >> (4 * ((i % 64) / 32))) & 15;
    const int high = (b[16 + i % 32] >> (i / 32)) & 1;  // bit i/32 of qh[i%32]
    const int q = low | high << 4;
    const int j = i / 32;
    EXPECT_EQ(y[i], 0.25f * float(kK4Sc[j]) * float(q) - 0.5f * float(kK4Min[j])) << i;
  }
}

TEST(HandmadeQ6_K, LowAndHighPlanesSignedScalesMinus32) {
  std::vector<uint8_t> b(210);
  for (int k = 0; k < 128; ++k) b[k] = uint8_t(k * 7 + 3);        // ql
  for (int k = 0; k < 64; ++k) b[128 + k] = uint8_t(k * 45 + 9);  // qh
  const int8_t scales[16] = {-128, 127, 1, -1, 64, -64, 2, -3, 5, 100, -100, 0, 7, -7, 33, -33};
  std::memcpy(b.data() + 192, scales, 16);
  put_u16(b, 208, test::kHalfSixteenth);  // d = 0.0625
  const auto y = dequant(TensorType::Q6_K, b, 256);

  // x = d * scales[i/16] * (q - 32), q = low nibble | high 2 bits << 4.
  EXPECT_EQ(y[0], 104.0f);     // ql[0] = 3 low 3, qh[0] = 9 bits 0-1 = 1: q = 19; 0.0625*-128*-13
  EXPECT_EQ(y[32], 0.1875f);   // ql[32] = 0xe3 low 3, qh[0] bits 2-3 = 2: q = 35; 0.0625*1*3
  EXPECT_EQ(y[127], 0.9375f);  // ql[63] = 0xbc high 11, qh[31] = 0x7c bits 6-7 = 1: q = 27; 0.0625*-3*-5
  EXPECT_EQ(y[200], -0.4375f); // ql[72] = 0xfb high 15, qh[40] = 0x11 bits 4-5 = 1: q = 31; 0.0625*7*-1
  EXPECT_EQ(y[255], 51.5625f); // ql[127] = 0x7c high 7, qh[63] = 0x1c bits 6-7 = 0: q = 7; 0.0625*-33*-25
  for (int i = 0; i < 256; ++i) {
    // Per 128 elements: 64 ql bytes and 32 qh bytes. Quarter k = (i%128)/32
    // takes ql[(k&1)*32 + l] nibble k>>1 and qh[l] bits 2k..2k+1.
    const int k = (i % 128) / 32, l = i % 32;
    const int low = (b[(i / 128) * 64 + (k & 1) * 32 + l] >> (4 * (k >> 1))) & 15;
    const int high = (b[128 + (i / 128) * 32 + l] >> (2 * k)) & 3;
    const int q = (low | high << 4) - 32;
    EXPECT_EQ(y[i], 0.0625f * float(scales[i / 16]) * float(q)) << i;
  }
}

TEST(HandmadeQ8_K, FloatScaleTimesSignedBytes) {
  std::vector<uint8_t> b(292);
  const uint8_t d_bytes[4] = {0x00, 0x00, 0x40, 0x3f};  // float 0.75 = 0x3f400000, little-endian
  std::memcpy(b.data(), d_bytes, 4);
  for (int j = 0; j < 256; ++j) b[4 + j] = uint8_t(int8_t(j - 128));
  for (int k = 0; k < 16; ++k) put_u16(b, 260 + 2 * k, 0xbeef);  // bsums: only dot products read them
  const auto y = dequant(TensorType::Q8_K, b, 256);
  EXPECT_EQ(y[0], -96.0f);   // 0.75 * -128
  EXPECT_EQ(y[255], 95.25f); // 0.75 * 127
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], 0.75f * float(j - 128)) << j;
}

TEST(HandmadeKQuants, SecondSuperBlockIsIndependent) {
  // Two Q4_K blocks: the second has d = 2, dmin = 0, all scales 1, all nibbles 0xf;
  // the first is all zero. Element 256 + i must be 2 * 1 * 15 = 30.
  std::vector<uint8_t> b(2 * 144, 0);
  put_u16(b, 144, test::kHalfTwo);
  const uint8_t ones[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};  // sc_j = 1, m_j = 0 for all j
  std::memcpy(b.data() + 144 + 4, ones, 12);
  for (int k = 0; k < 128; ++k) b[144 + 16 + k] = 0xff;
  const auto y = dequant(TensorType::Q4_K, b, 512);
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(y[i], 0.0f) << i;
    EXPECT_EQ(y[256 + i], 30.0f) << i;
  }
}

}  // namespace
}  // namespace dhi
