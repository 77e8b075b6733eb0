// Compares the native renderers with cases rendered by the real Jinja templates
// (jinja_crosscheck.py). Where Jinja renders, ours must give the same text or a
// documented refusal (Llama 2 / Gemma system messages in places the template
// drops or mis-renders); where Jinja raises, ours must fail too.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat/template.h"

using dhi::chat::Message;

namespace {

// Conversations our renderers reject on purpose although the Jinja program
// renders something: a system message anywhere but first (Llama 2 drops it,
// Gemma prints a "system" turn) or with nothing after it (Llama 2).
bool documented_refusal(const std::string& family, const std::vector<Message>& msgs) {
  if (family != "llama2" && family != "gemma") return false;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "system") continue;
    if (family == "gemma" || i != 0 || msgs.size() == 1) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: jinja_compare CASES_JSON\n");
    return 2;
  }
  std::ifstream f(argv[1]);
  const auto cases = nlohmann::json::parse(f, nullptr, false);
  if (cases.is_discarded() || !cases.is_array() || cases.empty()) {
    std::fprintf(stderr, "%s: not a non-empty JSON array\n", argv[1]);
    return 2;
  }
  int failures = 0, refusals = 0;
  for (const auto& c : cases) {
    std::vector<Message> msgs;
    for (const auto& m : c["messages"]) msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    const std::string family_name = c["family"].get<std::string>();
    auto family = dhi::chat::template_from_name(family_name);
    if (!family.ok()) {
      std::fprintf(stderr, "%s\n", family.error().message.c_str());
      return 2;
    }
    auto ours = dhi::chat::render(*family, msgs, c["gen"].get<bool>());
    const bool jinja_ok = c["ok"].get<bool>();
    const std::string expected = c["out"].get<std::string>();
    bool pass;
    if (jinja_ok) {
      pass = ours.ok() ? *ours == expected : documented_refusal(family_name, msgs);
      if (!ours.ok() && pass) ++refusals;
    } else {
      pass = !ours.ok();
    }
    if (!pass) {
      ++failures;
      if (failures <= 10) {
        std::printf("MISMATCH %s\n  jinja: %s\n  ours:  %s\n", c["messages"].dump().c_str(),
                    nlohmann::json(expected).dump().c_str(),
                    ours.ok() ? nlohmann::json(*ours).dump().c_str() : ("error: " + ours.error().message).c_str());
      }
    }
  }
  std::printf("%zu cases, %d mismatches, %d documented refusals\n", cases.size(), failures, refusals);
  return failures == 0 ? 0 : 1;
}
