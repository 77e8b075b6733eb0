// Content detectors of the privacy policy: the built-in ones (email, phone,
// card, iban, secret) and custom regexes from the config, compiled once with
// PCRE2 (JIT when available) and run over request text to find what must not
// leave the machine. Scanning is thread-safe: compiled patterns are shared and
// read-only, match data is made per call.
//
// What each built-in finds (digits are ASCII):
//   email   local@domain.tld, local part up to 64 characters, a dotted domain
//           with a 2..63-letter top-level label; letters of any script.
//   phone   international: '+', a country code starting 1-9, then 8..15 digits
//           in all (E.164), groups split by one space, '.', '-' or a
//           parenthesised area code;
//           North American: (415) 555-0132, 415-555-0132, 415.555.0132,
//           415 555 0132 (the two separators alike);
//           trunk-prefix national (Europe and most of the world): '0', a
//           1..5-digit area code, a separator (space, '-', '/' or a closing
//           parenthesis), then digit groups split by space or '-', 9..12 digits
//           in all (020 7946 0958, 030/1234567, 06 12 34 56 78).
//           Never a bare run of digits, a date (at most 8 digits), a dotted
//           version or an amount: a number is phone-shaped only with a '+',
//           with the North American 3-3-4 grouping, or with a leading trunk 0
//           and a separator after its area code.
//   card    13..19 digits, optionally grouped by single spaces or dashes,
//           Luhn-valid and not all one digit.
//   iban    two capital letters, two check digits and the account part (capital
//           letters and digits, optionally in groups split by single spaces),
//           of the length the country's IBAN has (for the countries in the
//           registry table; 15..34 characters for others), with the ISO 13616
//           mod-97 check equal to 1.
//   secret  OpenAI sk- / sk-proj- / sk-svcacct- / sk-admin- keys, Anthropic
//           sk-ant-, AWS AKIA/ASIA access key ids, GitHub ghp_/gho_/ghu_/ghs_/
//           ghr_ and github_pat_ tokens, Slack xox?- tokens, Google AIza keys,
//           Hugging Face hf_ tokens, Stripe sk_/rk_ live and test keys, JWTs,
//           and PEM "-----BEGIN ... PRIVATE KEY-----" blocks (an unterminated
//           block runs to the end of its base64).
//
// Bounded work: every built-in pattern has bounded repetition, so a scan costs
// O(text length x longest match) per detector. Each match attempt also runs
// under PCRE2's match and depth limits; a custom pattern that hits them
// (catastrophic backtracking) fails closed: it counts as a finding that covers
// the rest of the text, and scanning with that pattern stops.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"

namespace dhi::policy {

struct Finding {
  std::string detector;
  size_t offset = 0;  // in bytes, on a UTF-8 character boundary
  size_t length = 0;  // in bytes
};

struct CustomDetector {
  std::string name;     // [A-Za-z0-9_.-]{1,64}, not a built-in name
  std::string pattern;  // PCRE2, UTF mode; \d, \w and \s are ASCII
};

// "email", "phone", "card", "iban", "secret".
const std::vector<std::string>& builtin_detector_names();

class Detectors {
 public:
  Detectors() = default;

  // The named built-ins plus the custom patterns. Unknown built-in names,
  // duplicate names, bad custom names and custom patterns that do not compile
  // (the message has PCRE2's text and the offset) or can match the empty
  // string are errors.
  static Expected<Detectors> create(const std::vector<std::string>& builtin, const std::vector<CustomDetector>& custom);

  // Every finding of every detector, ordered by offset (then longer first).
  // Findings of different detectors may overlap.
  std::vector<Finding> scan(std::string_view text) const;
  // `text` with each finding replaced by "[REDACTED:<detector>]"; overlapping
  // findings merge into one span named after the earliest.
  std::string redact(std::string_view text) const;

  // The detector names in configuration order.
  std::vector<std::string> names() const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Compiled;
  // Accepts a regex match [begin, end) of `text`: returns the length of the
  // finding that starts at `begin` (0: rejected).
  using Validator = size_t (*)(std::string_view text, size_t begin, size_t end);
  struct Entry {
    std::string name;
    std::shared_ptr<const Compiled> code;
    Validator validate = nullptr;
  };
  static Expected<std::shared_ptr<const Compiled>> compile(const std::string& name, const std::string& pattern);
  void scan_one(const Entry& entry, std::string_view text, std::vector<Finding>& out) const;

  std::vector<Entry> entries_;
};

// Exposed for the tests: the checks behind the built-ins.
bool luhn_valid(std::string_view digits);
// `iban` without spaces, upper case: country length (when known) and mod 97.
bool iban_valid(std::string_view iban);

}  // namespace dhi::policy
