// Each built-in detector against strings it must find and strings it must
// leave alone; redaction offsets around multi-byte UTF-8; custom pattern errors.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "policy/detectors.h"

namespace dhi::policy {
namespace {

Detectors only(const std::string& name) {
  auto d = Detectors::create({name}, {});
  EXPECT_TRUE(d.ok()) << d.error().message;
  return std::move(d).value();
}

// The findings' text.
std::vector<std::string> found(const Detectors& d, const std::string& text) {
  std::vector<std::string> out;
  for (const Finding& f : d.scan(text)) out.push_back(text.substr(f.offset, f.length));
  return out;
}

void expect_exact(const Detectors& d, const std::string& value) {
  const std::string text = "before " + value + " after";
  EXPECT_EQ(found(d, text), std::vector<std::string>{value}) << "in: " << text;
}

void expect_none(const Detectors& d, const std::string& text) {
  EXPECT_EQ(found(d, text), std::vector<std::string>{}) << "in: " << text;
}

TEST(Detectors, Email) {
  const Detectors d = only("email");
  for (const char* s : {"alice@example.com", "first.last+tag@sub.example.co.uk", "x_y%z@mail-host.org",
                        "jörg@exämple.de"})
    expect_exact(d, s);
  for (const char* s : {"@handle on a social site", "user@localhost", "a@b", "example.com", "no at sign here",
                        "price@ 5", "trailing@dot."})
    expect_none(d, s);
}

TEST(Detectors, PhoneInternationalAndNational) {
  const Detectors d = only("phone");
  for (const char* s : {"+1 415 555 0132", "+44 20 7946 0958", "+4915112345678", "+33 6 12 34 56 78",
                        "+1 (415) 555-0132", "+49 (30) 1234-5678", "(415) 555-0132", "415-555-0132",
                        "415.555.0132", "415 555 0132", "020 7946 0958", "030/1234567", "06 12 34 56 78",
                        "(030) 12345678", "0151-12345678", "0049 30 1234567", "0044 20 7946 0958",
                        "0033 6 12 34 56 78"})
    expect_exact(d, s);
}

TEST(Detectors, PhoneLeavesDatesVersionsAmountsAndDigitRunsAlone) {
  const Detectors d = only("phone");
  for (const char* s : {"on 2024-01-15 at 10:30:00", "15.01.2024", "01/02/2024", "01-02-2024", "version 1.2.3",
                        "v10.200.3000", "costs $1,234.56", "order 12345678901234", "id 03012345678",
                        "card 4111111111111111", "host 192.168.100.200", "ISBN 978-3-16-148410-0",
                        "pi is 3.14159265358979", "1,000,000 people", "+5 points", "415-555.0132",
                        "20240115123045", "call +1 555", "+123456789012345678", "id 00491512345678",
                        "0049 30 12", "0000 1234 5678", "v1.0049 301 234567"})
    expect_none(d, s);
}

TEST(Detectors, CardNeedsLuhn) {
  const Detectors d = only("card");
  for (const char* s : {"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117",
                        "3530 1113 3330 0000", "4111111111111111"})
    expect_exact(d, s);
  for (const char* s : {"4111 1111 1111 1112", "5555-5555-5555-4445", "378282246310006", "0000 0000 0000 0000",
                        "1234", "41111111111111111111111", "3.14159265358979323"})
    expect_none(d, s);
  // The card is found next to other numbers when the separated run is longer.
  EXPECT_EQ(found(d, "4111 1111 1111 1111 2024"), std::vector<std::string>{"4111 1111 1111 1111"});
  EXPECT_TRUE(luhn_valid("79927398713"));
  EXPECT_FALSE(luhn_valid("79927398710"));
  EXPECT_FALSE(luhn_valid("7992739871x"));
  EXPECT_FALSE(luhn_valid(""));
}

TEST(Detectors, IbanOfSeveralCountries) {
  const Detectors d = only("iban");
  const std::vector<std::string> good = {
      "DE89 3704 0044 0532 0130 00",  "GB29 NWBK 6016 1331 9268 19",      "FR14 2004 1010 0505 0001 3M02 606",
      "NL91 ABNA 0417 1643 00",       "BE68 5390 0754 7034",              "CH93 0076 2011 6238 5295 7",
      "ES91 2100 0418 4502 0005 1332", "IT60 X054 2811 1010 0000 0123 456", "NO93 8601 1117 947",
      "PL61 1090 1014 0000 0712 1981 2874"};
  for (const std::string& s : good) {
    expect_exact(d, s);
    std::string compact;
    for (char c : s)
      if (c != ' ') compact += c;
    expect_exact(d, compact);
    EXPECT_TRUE(iban_valid(compact)) << compact;
  }
  // Wrong check digits, a wrong length for the country, one changed character.
  for (const char* s : {"DE88 3704 0044 0532 0130 00", "GB28 NWBK 6016 1331 9268 19", "DE89 3704 0044 0532 0130 0",
                        "NL91 ABNA 0417 1643 01", "DE89370400440532013001", "XX00"})
    expect_none(d, s);
  // An upper-case word after the IBAN is not part of it.
  EXPECT_EQ(found(d, "pay DE89 3704 0044 0532 0130 00 ASAP"), std::vector<std::string>{"DE89 3704 0044 0532 0130 00"});
  expect_none(d, "DE89370400440532013000ASAP");
  // All lower case, as people type it: found for a country with a registered
  // length (so a following lower-case word is not part of it), never for an
  // unknown one, and mixed case is not an IBAN.
  expect_exact(d, "de89 3704 0044 0532 0130 00");
  expect_exact(d, "gb29nwbk60161331926819");
  EXPECT_EQ(found(d, "pay de89 3704 0044 0532 0130 00 asap"), std::vector<std::string>{"de89 3704 0044 0532 0130 00"});
  for (const char* s : {"de88 3704 0044 0532 0130 00", "xx89 3704 0044 0532 0130 00", "De89 3704 0044 0532 0130 00",
                        "de89370400440532013000asap"})
    expect_none(d, s);
  EXPECT_FALSE(iban_valid("DE8937040044053201300"));  // 21 characters for a 22-character country
}

TEST(Detectors, SecretFormats) {
  const Detectors d = only("secret");
  const std::string body40 = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0h";
  const std::vector<std::string> good = {
      "sk-" + body40,
      "sk-proj-" + body40 + "_-x9",
      "sk-ant-api03-" + body40,
      "AKIA" + std::string("IOSFODNN7EXAMPLE"),
      "ASIA" + std::string("Z2ABCDEFGHIJ3456"),
      "ghp_" + body40.substr(0, 36),
      "gho_" + body40.substr(0, 36),
      "ghs_" + body40.substr(0, 36),
      "github_pat_" + body40.substr(0, 22) + "_" + body40,
      "xoxb-" + std::string("123456789012-abcdefghijkl"),
      "AIza" + body40.substr(0, 35),
      "hf_" + body40.substr(0, 34),
      "sk_live_" + body40.substr(0, 24),
      "rk_live_" + body40.substr(0, 24),
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + body40 + "\n" + body40 + "==\n-----END RSA PRIVATE KEY-----",
      "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI" + body40 + "\n-----END PRIVATE KEY-----",
  };
  for (const std::string& s : good) expect_exact(d, s);
  // An unterminated private key still goes, up to the end of its base64.
  EXPECT_EQ(found(d, "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE" + body40 + "\n..."),
            std::vector<std::string>{"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE" + body40 + "\n"});
  for (const std::string& s :
       std::vector<std::string>{"sk-this-is-not-a-key-at-all-really", "task-123456789012345678901234", "AKIA1234",
                                "ghp_short1", "hf_hub_download", "xoxb-", "AIzaShort", "sk_live_", "eyJhbGci",
                                "-----BEGIN PUBLIC KEY-----", "mask-" + body40, "AKIA" + body40})
    expect_none(d, s);
}

TEST(Detectors, RedactionOffsetsAroundMultiByteText) {
  auto d = Detectors::create({"email", "card"}, {});
  ASSERT_TRUE(d.ok());
  const std::string text = "Grüße — schreib jörg@exämple.de ✓, Karte 4111 1111 1111 1111 😀 danke";
  const std::vector<Finding> f = d->scan(text);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].detector, "email");
  EXPECT_EQ(f[0].offset, text.find("jörg"));
  EXPECT_EQ(f[0].length, std::string("jörg@exämple.de").size());
  EXPECT_EQ(f[1].detector, "card");
  EXPECT_EQ(f[1].offset, text.find("4111"));
  EXPECT_EQ(d->redact(text), "Grüße — schreib [REDACTED:email] ✓, Karte [REDACTED:card] 😀 danke");
  EXPECT_EQ(d->redact("nothing to hide — ✓"), "nothing to hide — ✓");
  EXPECT_EQ(d->redact(""), "");
}

TEST(Detectors, OverlappingFindingsMergeInRedaction) {
  auto d = Detectors::create({"card"}, {{"digits", "[0-9]{4} [0-9]{4}"}});
  ASSERT_TRUE(d.ok());
  const std::string text = "x 4111 1111 1111 1111 y";
  EXPECT_GE(d->scan(text).size(), 3u);
  EXPECT_EQ(d->redact(text), "x [REDACTED:card] y");
}

TEST(Detectors, CustomPatterns) {
  auto d = Detectors::create({}, {{"project", "Project\\s+Zeus"}, {"ticket", "TCK-[0-9]{5}"}});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->names(), (std::vector<std::string>{"project", "ticket"}));
  EXPECT_EQ(d->redact("About Project  Zeus and TCK-12345."), "About [REDACTED:project] and [REDACTED:ticket].");
}

TEST(Detectors, ConfigurationErrorsAreClear) {
  auto unknown = Detectors::create({"email", "passport"}, {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown detector 'passport'"), std::string::npos);

  auto bad = Detectors::create({}, {{"broken", "abc(def"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("'broken'"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("offset 7"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("parenthesis"), std::string::npos) << bad.error().message;

  auto empty = Detectors::create({}, {{"loose", "a*"}});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty string"), std::string::npos);

  EXPECT_FALSE(Detectors::create({}, {{"bad name", "x"}}).ok());
  EXPECT_FALSE(Detectors::create({}, {{"", "x"}}).ok());
  EXPECT_FALSE(Detectors::create({}, {{"email", "x"}}).ok());
  EXPECT_FALSE(Detectors::create({}, {{"a", "x"}, {"a", "y"}}).ok());
  EXPECT_FALSE(Detectors::create({"card", "card"}, {}).ok());
}

TEST(Detectors, BacktrackingCustomPatternFailsClosed) {
  // Exponential backtracking on the run of a's (the 'c' is there, so PCRE2's
  // required-character shortcut does not save it).
  auto d = Detectors::create({}, {{"slow", "(a+)+c"}});
  ASSERT_TRUE(d.ok());
  const std::string text = "ok " + std::string(5000, 'a') + " c";
  const std::vector<Finding> f = d->scan(text);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].offset + f[0].length, text.size());
  EXPECT_EQ(d->redact(text), "[REDACTED:slow]");
  EXPECT_EQ(d->redact("fine: aac"), "fine: [REDACTED:slow]");
}

TEST(Detectors, ConcurrentScansOfSharedDetectors) {
  auto d = Detectors::create(builtin_detector_names(), {{"ticket", "TCK-[0-9]{5}"}});
  ASSERT_TRUE(d.ok());
  const Detectors copy = *d;  // copies share the compiled patterns
  std::vector<std::string> texts;
  for (int i = 0; i < 16; ++i)
    texts.push_back("user" + std::to_string(i) + "@example.com, TCK-1234" + std::to_string(i % 10) +
                    ", card 4111 1111 1111 1111, +44 20 7946 09" + std::to_string(10 + i));
  std::vector<std::string> expected;
  for (const std::string& t : texts) expected.push_back(d->redact(t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const Detectors& mine = t % 2 == 0 ? *d : copy;
      for (int round = 0; round < 200; ++round) {
        const size_t i = static_cast<size_t>(round + t) % texts.size();
        if (mine.redact(texts[i]) != expected[i]) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(expected[3], "[REDACTED:email], [REDACTED:ticket], card [REDACTED:card], [REDACTED:phone]");
}

TEST(Detectors, LargeInputIsScannedToTheEnd) {
  auto d = Detectors::create(builtin_detector_names(), {});
  ASSERT_TRUE(d.ok());
  std::string text;
  while (text.size() < (2u << 20)) text += "lorem 2024-01-15 ipsum 1.2.3 dolor 12345 sit amet ";
  text += "alice@example.com";
  const std::vector<Finding> f = d->scan(text);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].detector, "email");
  EXPECT_EQ(f[0].offset, text.size() - 17);
}

}  // namespace
}  // namespace dhi::policy
