#include "hub/ollama.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hub/digest.h"

namespace dhi::hub {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRegistry = "registry.ollama.ai";
constexpr const char* kModelMediaType = "application/vnd.ollama.image.model";
constexpr uintmax_t kMaxManifestBytes = 1 << 20;

// The GGUF blob a manifest file points to.
Expected<OllamaModel> read_manifest(const std::string& root, const fs::path& manifest) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(manifest, ec);
  if (ec) return make_error(manifest.string(), ": ", ec.message());
  if (size > kMaxManifestBytes) return make_error(manifest.string(), ": manifest larger than 1 MiB");
  std::ifstream f(manifest, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(manifest.string(), ": not a JSON manifest");
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return make_error(manifest.string(), ": no \"layers\" array");
  for (const auto& layer : *layers) {
    if (!layer.is_object()) continue;
    auto media = layer.find("mediaType");
    auto digest = layer.find("digest");
    if (media == layer.end() || !media->is_string() || *media != kModelMediaType) continue;
    if (digest == layer.end() || !digest->is_string())
      return make_error(manifest.string(), ": model layer without a digest");
    const std::string d = digest->get<std::string>();
    if (d.rfind("sha256:", 0) != 0 || !is_hex(d.substr(7), 64))
      return make_error(manifest.string(), ": model layer digest '", d, "' is not sha256:<64 hex digits>");
    OllamaModel m;
    m.blob = root + "/blobs/sha256-" + d.substr(7);
    m.size = fs::file_size(m.blob, ec);
    if (ec) return make_error(manifest.string(), ": its model blob ", m.blob, " is missing");
    char magic[4] = {};
    std::ifstream b(m.blob, std::ios::binary);
    if (!b.read(magic, 4) || std::string(magic, 4) != "GGUF")
      return make_error(manifest.string(), ": its model blob ", m.blob, " is not a GGUF file");
    return m;
  }
  return make_error(manifest.string(), ": no layer of mediaType ", kModelMediaType);
}

// "HOST/NS/NAME:TAG" shortened the way Ollama shows names.
std::string display_name(const fs::path& rel) {
  std::vector<std::string> parts;
  for (const auto& p : rel) parts.push_back(p.string());
  if (parts.size() != 4) return "";
  std::string name = parts[2] + ":" + parts[3];
  if (parts[0] == kRegistry && parts[1] == "library") return name;
  if (parts[0] == kRegistry) return parts[1] + "/" + name;
  return parts[0] + "/" + parts[1] + "/" + name;
}

}  // namespace

std::vector<OllamaModel> list_ollama_models(const std::string& root) {
  std::vector<OllamaModel> out;
  const fs::path manifests = fs::path(root) / "manifests";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(manifests, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    const std::string name = display_name(it->path().lexically_relative(manifests));
    if (name.empty()) continue;
    auto m = read_manifest(root, it->path());
    if (!m) continue;  // not a GGUF model (or a broken manifest): nothing dhi can run
    m->name = name;
    out.push_back(std::move(m).value());
  }
  std::sort(out.begin(), out.end(), [](const OllamaModel& a, const OllamaModel& b) { return a.name < b.name; });
  return out;
}

Expected<std::optional<OllamaModel>> find_ollama_model(const std::string& root, const std::string& name) {
  const size_t colon = name.rfind(':');
  std::string base = colon == std::string::npos ? name : name.substr(0, colon);
  const std::string tag = colon == std::string::npos ? "latest" : name.substr(colon + 1);
  const size_t slashes = size_t(std::count(base.begin(), base.end(), '/'));
  if (slashes == 0) base = std::string(kRegistry) + "/library/" + base;
  else if (slashes == 1) base = std::string(kRegistry) + "/" + base;
  // Names were validated by parse_model_name; the path stays inside the store.
  const fs::path manifest = fs::path(root) / "manifests" / base / tag;
  std::error_code ec;
  if (!fs::is_regular_file(manifest, ec)) return std::optional<OllamaModel>{};
  DHI_ASSIGN_OR_RETURN(OllamaModel m, read_manifest(root, manifest));
  m.name = display_name(manifest.lexically_relative(fs::path(root) / "manifests"));
  return std::optional<OllamaModel>(std::move(m));
}

}  // namespace dhi::hub
