#include "hub/names.h"

#include <algorithm>
#include <cctype>

namespace dhi::hub {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// A name component Hugging Face and Ollama both accept.
bool valid_component(std::string_view s) {
  if (s.empty() || s.size() > 96 || s == "." || s == "..") return false;
  if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

// Bare family names pick a size like Ollama's "latest" tags do.
std::string_view default_size(std::string_view family) {
  return family == "deepseek-r1-qwen3" ? "8b" : "7b";
}

std::string usage() {
  return "a model is a GGUF file path, a catalog name (see `dhi ls --catalog`), "
         "hf://OWNER/REPO/FILE.gguf, OWNER/REPO:QUANT, or an Ollama name NAME:TAG";
}

std::optional<ModelRef> parse_catalog(const std::string& name) {
  const std::string n = lower(name);
  const size_t colon = n.find(':');
  const std::string family = n.substr(0, colon);
  std::string tag = colon == std::string::npos ? "latest" : n.substr(colon + 1);
  const CatalogModel* model = nullptr;
  std::string quant(catalog_quants()[0]);
  for (const CatalogModel& m : catalog()) {
    if (m.family != family) continue;
    std::string size(tag == "latest" ? default_size(family) : std::string_view{});
    std::string q;
    if (size.empty()) {
      size_t dash = tag.find('-');
      size = tag.substr(0, dash);
      if (dash != std::string::npos) q = tag.substr(dash + 1);
    }
    if (m.size != size) continue;
    if (!q.empty()) {
      const auto& qs = catalog_quants();
      if (std::find(qs.begin(), qs.end(), q) == qs.end()) return std::nullopt;
      quant = q;
    }
    model = &m;
    break;
  }
  if (!model) return std::nullopt;
  ModelRef ref;
  HfTarget t;
  t.repo = std::string(model->repo);
  t.file = std::string(model->file_prefix) + "-" + upper(quant) + ".gguf";
  t.quant = quant;
  ref.hf = t;
  ref.catalog_name = std::string(model->family) + ":" + std::string(model->size) + "-" + quant;
  ref.ollama = colon == std::string::npos ? n + ":latest" : n;
  return ref;
}

}  // namespace

const std::vector<CatalogModel>& catalog() {
  // unsloth's GGUF conversions: every file is PREFIX-QUANT.gguf, with the
  // K-quants and Q8_0 the engine runs.
  static const std::vector<CatalogModel> models = {
      {"deepseek-r1", "1.5b", "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF", "DeepSeek-R1-Distill-Qwen-1.5B",
       "DeepSeek-R1-Distill-Qwen-1.5B"},
      {"deepseek-r1", "7b", "unsloth/DeepSeek-R1-Distill-Qwen-7B-GGUF", "DeepSeek-R1-Distill-Qwen-7B",
       "DeepSeek-R1-Distill-Qwen-7B"},
      {"deepseek-r1", "8b", "unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF", "DeepSeek-R1-Distill-Llama-8B",
       "DeepSeek-R1-Distill-Llama-8B"},
      {"deepseek-r1", "14b", "unsloth/DeepSeek-R1-Distill-Qwen-14B-GGUF", "DeepSeek-R1-Distill-Qwen-14B",
       "DeepSeek-R1-Distill-Qwen-14B"},
      {"deepseek-r1", "32b", "unsloth/DeepSeek-R1-Distill-Qwen-32B-GGUF", "DeepSeek-R1-Distill-Qwen-32B",
       "DeepSeek-R1-Distill-Qwen-32B"},
      {"deepseek-r1-qwen3", "8b", "unsloth/DeepSeek-R1-0528-Qwen3-8B-GGUF", "DeepSeek-R1-0528-Qwen3-8B",
       "DeepSeek-R1-0528-Qwen3-8B"},
  };
  return models;
}

const std::vector<std::string_view>& catalog_quants() {
  static const std::vector<std::string_view> quants = {"q4_k_m", "q5_k_m", "q6_k", "q8_0", "q3_k_m", "q2_k"};
  return quants;
}

std::string catalog_name_of(const std::string& repo, const std::string& file) {
  for (const CatalogModel& m : catalog()) {
    if (m.repo != repo) continue;
    for (std::string_view q : catalog_quants()) {
      if (file != std::string(m.file_prefix) + "-" + upper(std::string(q)) + ".gguf") continue;
      std::string name = std::string(m.family) + ":" + std::string(m.size);
      if (q != catalog_quants()[0]) {
        name += '-';
        name += q;
      }
      return name;
    }
  }
  return "";
}

bool valid_repo_id(const std::string& repo) {
  const size_t slash = repo.find('/');
  if (slash == std::string::npos) return false;
  return valid_component(std::string_view(repo).substr(0, slash)) &&
         valid_component(std::string_view(repo).substr(slash + 1));
}

bool valid_repo_path(const std::string& path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part = std::string_view(path).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part)
      if (static_cast<unsigned char>(c) < 0x20 || c == '\\' || c == 0x7f) return false;
    start = end + 1;
  }
  return true;
}

bool file_has_quant(const std::string& path, const std::string& quant) {
  const std::string p = upper(path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1));
  const std::string q = upper(quant);
  if (q.empty()) return false;
  auto is_sep = [](char c) { return c == '-' || c == '.' || c == '/'; };
  for (size_t pos = p.find(q); pos != std::string::npos; pos = p.find(q, pos + 1)) {
    const bool left = pos == 0 || is_sep(p[pos - 1]);
    const bool right = pos + q.size() == p.size() || is_sep(p[pos + q.size()]);
    if (left && right) return true;
  }
  return false;
}

Expected<std::string> pick_quant_file(const std::vector<std::string>& files, const std::string& repo,
                                      const std::string& quant) {
  std::vector<std::string> ggufs, matches;
  for (const std::string& f : files) {
    if (lower(f).size() < 5 || lower(f).substr(f.size() - 5) != ".gguf") continue;
    ggufs.push_back(f);
    if (file_has_quant(f, quant)) matches.push_back(f);
  }
  if (matches.size() == 1) {
    if (lower(matches[0]).find("-of-0") != std::string::npos)
      return make_error(repo, ": ", matches[0], " is one part of a split GGUF model, which dhi does not read");
    return matches[0];
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("none") : s;
  };
  if (matches.empty())
    return make_error(repo, " has no GGUF file with quant ", upper(quant), " (GGUF files: ", join(ggufs), ")");
  return make_error(repo, " has several GGUF files with quant ", upper(quant), ": ", join(matches),
                    "; name one with hf://", repo, "/FILE");
}

Expected<ModelRef> parse_model_name(const std::string& name) {
  if (name.empty()) return make_error("empty model name; ", usage());
  if (name.rfind("hf://", 0) == 0) {
    // hf://OWNER/REPO[@REVISION]/PATH
    const std::string rest = name.substr(5);
    const size_t s1 = rest.find('/');
    const size_t s2 = s1 == std::string::npos ? s1 : rest.find('/', s1 + 1);
    if (s2 == std::string::npos)
      return make_error("'", name, "': expected hf://OWNER/REPO/FILE.gguf");
    HfTarget t;
    t.repo = rest.substr(0, s2);
    t.file = rest.substr(s2 + 1);
    if (size_t at = t.repo.find('@'); at != std::string::npos) {
      t.revision = t.repo.substr(at + 1);
      t.repo = t.repo.substr(0, at);
      if (!valid_component(t.revision))
        return make_error("'", name, "': invalid revision '", t.revision, "'");
    }
    if (!valid_repo_id(t.repo)) return make_error("'", name, "': invalid repository '", t.repo, "'");
    if (!valid_repo_path(t.file)) return make_error("'", name, "': invalid file path '", t.file, "'");
    ModelRef ref;
    ref.hf = t;
    return ref;
  }
  if (auto ref = parse_catalog(name)) return *ref;

  const size_t colon = name.rfind(':');
  const std::string base = name.substr(0, colon);
  const std::string tag = colon == std::string::npos ? "latest" : name.substr(colon + 1);
  if (!valid_component(tag)) return make_error("'", name, "': invalid tag '", tag, "'; ", usage());
  const size_t slashes = size_t(std::count(base.begin(), base.end(), '/'));
  size_t start = 0;
  for (size_t i = 0; i <= slashes; ++i) {
    size_t end = base.find('/', start);
    if (end == std::string::npos) end = base.size();
    if (!valid_component(std::string_view(base).substr(start, end - start)))
      return make_error("'", name, "' is neither an existing file nor a model name; ", usage());
    start = end + 1;
  }
  if (slashes > 2) return make_error("'", name, "' is neither an existing file nor a model name; ", usage());

  ModelRef ref;
  ref.ollama = base + ":" + tag;
  // OWNER/REPO:QUANT is also a Hugging Face repository with a quant.
  if (slashes == 1 && colon != std::string::npos) {
    HfTarget t;
    t.repo = base;
    t.quant = tag;
    ref.hf = t;
  }
  return ref;
}

}  // namespace dhi::hub
