#include "hub/config.h"

#include <cstdlib>
#include <fstream>

namespace dhi::hub {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string home() {
  std::string h = env("HOME");
  return h.empty() ? "/" : h;
}

bool truthy(const std::string& v) {
  return v == "1" || v == "true" || v == "TRUE" || v == "yes" || v == "YES" || v == "on" || v == "ON";
}

}  // namespace

HubConfig HubConfig::from_env() {
  HubConfig c;
  c.endpoint = env("HF_ENDPOINT");
  if (c.endpoint.empty()) c.endpoint = "https://huggingface.co";
  while (c.endpoint.size() > 1 && c.endpoint.back() == '/') c.endpoint.pop_back();

  std::string hf_home = env("HF_HOME");
  if (hf_home.empty()) {
    std::string xdg = env("XDG_CACHE_HOME");
    hf_home = (xdg.empty() ? home() + "/.cache" : xdg) + "/huggingface";
  }
  c.cache_dir = env("HF_HUB_CACHE");
  if (c.cache_dir.empty()) c.cache_dir = hf_home + "/hub";

  c.token = env("HF_TOKEN");
  if (c.token.empty()) {
    // Where `huggingface-cli login` / `hf auth login` keeps the token.
    std::ifstream f(hf_home + "/token");
    std::getline(f, c.token);
    while (!c.token.empty() && (c.token.back() == '\r' || c.token.back() == ' ')) c.token.pop_back();
  }

  c.ollama_dir = env("OLLAMA_MODELS");
  if (c.ollama_dir.empty()) c.ollama_dir = home() + "/.ollama/models";
  c.offline = truthy(env("HF_HUB_OFFLINE"));
  return c;
}

}  // namespace dhi::hub
