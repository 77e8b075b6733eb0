// The built-in detector patterns, their validators (Luhn, IBAN mod 97, phone
// digit counts) and the PCRE2 scanning loop shared with custom patterns.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "policy/detectors.h"

#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

namespace dhi::policy {

// Limits per match attempt: far above what any bounded built-in needs, low
// enough that a backtracking custom pattern fails in milliseconds.
constexpr uint32_t kMatchLimit = 200000;
constexpr uint32_t kDepthLimit = 10000;

struct Detectors::Compiled {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  ~Compiled() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_alnum(char c) { return is_digit(c) || is_upper(c) || (c >= 'a' && c <= 'z'); }

size_t count_digits(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), is_digit));
}

// --- email -----------------------------------------------------------------
// Letters and digits of any script: internationalised addresses (jörg@exämple.de).
constexpr const char* kEmail =
    R"((?<![\p{L}\p{N}._%+\-])[\p{L}\p{N}._%+\-]{1,64}@)"
    R"((?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]{0,61}[\p{L}\p{N}])?\.){1,8}\p{L}{2,63}(?![\p{L}\p{N}\-]))";

// --- phone -----------------------------------------------------------------
constexpr const char* kPhone =
    // International: +CC (or the 00 dialling prefix many countries use for +)
    // then digits with single separators or (area) groups.
    R"((?:(?<![A-Za-z0-9_+])\+|(?<![A-Za-z0-9_+.\-/])00)[1-9](?:(?:[ .\-]|\)[ .\-]?| ?\()?[0-9]){7,14}\)?)"
    R"((?![0-9])(?![.\-/][0-9]))"
    // North American 3-3-4.
    R"(|(?<![A-Za-z0-9_+.\-/])(?:\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[\-. ]|[2-9][0-9]{2}([\-. ])[2-9][0-9]{2}\1))"
    R"([0-9]{4}(?![A-Za-z0-9_])(?![.\-/][0-9]))"
    // Trunk-prefix national: 0 + area code, separator, groups.
    R"(|(?<![A-Za-z0-9_+.\-/(])(?:\(0[1-9][0-9]{0,4}\) ?|0[1-9][0-9]{0,4}[ /\-]))"
    R"([0-9]{2,8}(?:[ \-][0-9]{2,8}){0,4}(?![A-Za-z0-9_])(?![.\-/][0-9]))";

size_t validate_phone(std::string_view text, size_t begin, size_t end) {
  const std::string_view m = text.substr(begin, end - begin);
  const size_t digits = count_digits(m);
  const bool dialled_00 = m.substr(0, 2) == "00";
  if (m[0] == '+' || dialled_00) {
    // The 00 prefix is not part of the number (E.164: at most 15 digits), and
    // written that way the number needs a separator: an unbroken run of digits
    // starting with 00 is more often an id than a phone number.
    const size_t number_digits = dialled_00 ? digits - 2 : digits;
    if (number_digits < 8 || number_digits > 15) return 0;
    if (dialled_00 && count_digits(m) == m.size()) return 0;
    // Parentheses: balanced, not nested, digits inside.
    int depth = 0;
    for (char c : m) {
      if (c == '(') {
        if (++depth > 1) return 0;
      } else if (c == ')') {
        if (--depth < 0) return 0;
      }
    }
    if (depth != 0) return 0;
    return m.size();
  }
  const bool trunk = m[0] == '0' || (m.size() > 1 && m[0] == '(' && m[1] == '0');
  if (trunk) return digits >= 9 && digits <= 12 ? m.size() : 0;
  return m.size();  // North American: the pattern fixes 10 digits
}

// --- card ------------------------------------------------------------------
constexpr const char* kCard = R"((?<![A-Za-z0-9_.\-])[0-9](?:[ \-]?[0-9]){12,18}(?![0-9])(?![.,][0-9]))";

size_t validate_card(std::string_view text, size_t begin, size_t end) {
  std::string digits;
  for (char c : text.substr(begin, end - begin))
    if (is_digit(c)) digits += c;
  if (std::all_of(digits.begin(), digits.end(), [&](char c) { return c == digits[0]; })) return 0;
  return luhn_valid(digits) ? end - begin : 0;
}

// --- iban ------------------------------------------------------------------
// Upper case as ISO 13616 writes it, or all lower case as people type it (then
// only for a country with a registered length, see validate_iban).
constexpr const char* kIban =
    R"((?<![A-Za-z0-9])(?:[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![a-z0-9]))"
    R"(|[a-z]{2}[0-9]{2}(?: ?[a-z0-9]){11,30}(?![A-Za-z0-9])))";

struct IbanCountry {
  char code[3];
  int length;
};
// IBAN lengths by country (SWIFT IBAN registry).
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
    {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
    {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19},
    {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23},
    {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

int iban_length(std::string_view country) {
  for (const IbanCountry& c : kIbanCountries)
    if (country == c.code) return c.length;
  return 0;
}

char to_upper(char c) { return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c; }

size_t validate_iban(std::string_view text, size_t begin, size_t end) {
  const bool lower = !is_upper(text[begin]);
  const std::string country{to_upper(text[begin]), to_upper(text[begin + 1])};
  const int known = iban_length(country);
  // A lower-case run of an unknown country is too often an identifier or a hash.
  if (lower && known == 0) return 0;
  // Take the country's number of characters (the match may run into a
  // following upper-case word); an unknown country takes the whole match.
  std::string compact;
  size_t pos = begin;
  for (; pos < end; ++pos) {
    if (text[pos] == ' ') continue;
    if (known > 0 && static_cast<int>(compact.size()) == known) break;
    compact += to_upper(text[pos]);
  }
  if (known > 0) {
    if (static_cast<int>(compact.size()) != known) return 0;
    // Trim a trailing space the loop stepped over, then the next character
    // must not continue the token.
    size_t stop = pos;
    while (stop > begin && text[stop - 1] == ' ') --stop;
    if (stop < text.size() && is_alnum(text[stop])) return 0;
    return iban_valid(compact) ? stop - begin : 0;
  }
  if (compact.size() < 15 || compact.size() > 34) return 0;
  return iban_valid(compact) ? end - begin : 0;
}

// --- secret ----------------------------------------------------------------
constexpr const char* kSecret =
    R"((?<![A-Za-z0-9_\-])(?:)"
    R"(sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,1024})"
    R"(|(?:AKIA|ASIA)[A-Z0-9]{16})"
    R"(|gh[pousr]_[A-Za-z0-9]{36,255})"
    R"(|github_pat_[A-Za-z0-9_]{22,255})"
    R"(|xox[abposr]-[A-Za-z0-9\-]{10,255})"
    R"(|AIza[A-Za-z0-9_\-]{35})"
    R"(|hf_[A-Za-z0-9]{30,64})"
    R"(|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,255})"
    R"(|eyJ[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{8,8192}\.[A-Za-z0-9_\-]{0,1024})"
    R"()(?![A-Za-z0-9_\-]))"
    R"(|-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----)"
    R"((?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----|[A-Za-z0-9+/=\s:,\-]{0,16384}))";

size_t validate_secret(std::string_view text, size_t begin, size_t end) {
  const std::string_view m = text.substr(begin, end - begin);
  // "sk-" plus words and dashes is also prose ("sk-this-is-not-a-key..."):
  // a real key has digits.
  if (m.substr(0, 3) == "sk-" && count_digits(m) == 0) return 0;
  return m.size();
}

struct Builtin {
  const char* name;
  const char* pattern;
  size_t (*validate)(std::string_view, size_t, size_t);
};

constexpr Builtin kBuiltins[] = {
    {"email", kEmail, nullptr},
    {"phone", kPhone, validate_phone},
    {"card", kCard, validate_card},
    {"iban", kIban, validate_iban},
    {"secret", kSecret, validate_secret},
};

bool valid_custom_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// The next UTF-8 character boundary after `pos`.
size_t next_boundary(std::string_view text, size_t pos) {
  ++pos;
  while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
  return pos;
}

}  // namespace

bool luhn_valid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    if (!is_digit(digits[i])) return false;
    int d = digits[i] - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool iban_valid(std::string_view iban) {
  if (iban.size() < 5 || iban.size() > 34) return false;
  if (!is_upper(iban[0]) || !is_upper(iban[1]) || !is_digit(iban[2]) || !is_digit(iban[3])) return false;
  const int known = iban_length(iban.substr(0, 2));
  if (known > 0 && static_cast<int>(iban.size()) != known) return false;
  // Move the first four characters to the end, letters become 10..35, and the
  // number must be 1 mod 97; computed digit by digit.
  int rem = 0;
  auto feed = [&](char c) {
    if (is_digit(c)) {
      rem = (rem * 10 + (c - '0')) % 97;
    } else if (is_upper(c)) {
      rem = (rem * 100 + (c - 'A' + 10)) % 97;
    } else {
      return false;
    }
    return true;
  };
  for (size_t i = 4; i < iban.size(); ++i)
    if (!feed(iban[i])) return false;
  for (size_t i = 0; i < 4; ++i)
    if (!feed(iban[i])) return false;
  return rem == 1;
}

const std::vector<std::string>& builtin_detector_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Builtin& b : kBuiltins) v.emplace_back(b.name);
    return v;
  }();
  return names;
}

Expected<std::shared_ptr<const Detectors::Compiled>> Detectors::compile(const std::string& name,
                                                                        const std::string& pattern) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    return make_error("detector '", name, "': pattern does not compile at offset ", static_cast<size_t>(offset),
                      ": ", reinterpret_cast<const char*>(msg));
  }
  auto compiled = std::make_shared<Compiled>();
  compiled->code = re;
  uint32_t min_length = 0;
  pcre2_pattern_info(re, PCRE2_INFO_MINLENGTH, &min_length);
  if (min_length == 0) return make_error("detector '", name, "': pattern can match the empty string");
  // JIT is an optimisation: without it (no JIT support on this CPU or build)
  // pcre2_match interprets the same code.
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  compiled->context = pcre2_match_context_create(nullptr);
  if (!compiled->context) return make_error("detector '", name, "': out of memory");
  pcre2_set_match_limit(compiled->context, kMatchLimit);
  pcre2_set_depth_limit(compiled->context, kDepthLimit);
  return std::shared_ptr<const Compiled>(std::move(compiled));
}

Expected<Detectors> Detectors::create(const std::vector<std::string>& builtin,
                                      const std::vector<CustomDetector>& custom) {
  Detectors d;
  std::set<std::string> seen;
  for (const std::string& name : builtin) {
    const Builtin* b = nullptr;
    for (const Builtin& candidate : kBuiltins)
      if (name == candidate.name) b = &candidate;
    if (!b) return make_error("unknown detector '", name, "' (detectors: email, phone, card, iban, secret)");
    if (!seen.insert(name).second) return make_error("detector '", name, "' is listed twice");
    DHI_ASSIGN_OR_RETURN(auto code, compile(name, b->pattern));
    d.entries_.push_back({name, std::move(code), b->validate});
  }
  for (const CustomDetector& c : custom) {
    if (!valid_custom_name(c.name))
      return make_error("custom detector name '", c.name, "' must be 1..64 of A-Z a-z 0-9 _ . -");
    const auto& names = builtin_detector_names();
    if (std::find(names.begin(), names.end(), c.name) != names.end())
      return make_error("custom detector '", c.name, "' has the name of a built-in detector");
    if (!seen.insert(c.name).second) return make_error("detector '", c.name, "' is defined twice");
    DHI_ASSIGN_OR_RETURN(auto code, compile(c.name, c.pattern));
    d.entries_.push_back({c.name, std::move(code), nullptr});
  }
  return d;
}

std::vector<std::string> Detectors::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  return out;
}

void Detectors::scan_one(const Entry& entry, std::string_view text, std::vector<Finding>& out) const {
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
      pcre2_match_data_create_from_pattern(entry.code->code, nullptr), pcre2_match_data_free);
  if (!md) {
    // Fail closed: without match data nothing can be checked.
    out.push_back({entry.name, 0, text.size()});
    return;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    const int rc = pcre2_match(entry.code->code, subject, text.size(), start, 0, md.get(), entry.code->context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      // Match or depth limit (or another run-time error): the rest of the
      // text could not be checked, so it counts as found.
      out.push_back({entry.name, start, text.size() - start});
      return;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t begin = ov[0], end = ov[1];
    const size_t length = entry.validate ? entry.validate(text, begin, end) : end - begin;
    if (length > 0) {
      out.push_back({entry.name, begin, length});
      start = begin + length;
    } else {
      start = next_boundary(text, begin);
    }
  }
}

std::vector<Finding> Detectors::scan(std::string_view text) const {
  std::vector<Finding> out;
  for (const Entry& e : entries_) scan_one(e, text, out);
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    return a.length > b.length;
  });
  return out;
}

std::string Detectors::redact(std::string_view text) const {
  const std::vector<Finding> findings = scan(text);
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t i = 0; i < findings.size();) {
    const size_t begin = findings[i].offset;
    size_t end = begin + findings[i].length;
    const std::string& name = findings[i].detector;
    size_t j = i + 1;
    while (j < findings.size() && findings[j].offset < end) {
      end = std::max(end, findings[j].offset + findings[j].length);
      ++j;
    }
    out.append(text.substr(pos, begin - pos));
    out += "[REDACTED:" + name + "]";
    pos = end;
    i = j;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace dhi::policy
