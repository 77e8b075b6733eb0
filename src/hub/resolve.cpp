#include "hub/resolve.h"

#include <filesystem>

#include "hub/hf_cache.h"
#include "hub/names.h"
#include "hub/ollama.h"

namespace dhi::hub {
namespace fs = std::filesystem;
namespace {

std::string hf_name(const HfTarget& t) {
  std::string c = catalog_name_of(t.repo, t.file);
  if (!c.empty()) return c;
  return "hf://" + t.repo + (t.revision == "main" ? "" : "@" + t.revision) + "/" + t.file;
}

// The cached file of a target; for a quant, the cached snapshot file carrying it.
std::optional<ResolvedModel> from_cache(const HubConfig& cfg, HfTarget t) {
  const HfCache cache(cfg.cache_dir);
  if (t.file.empty()) {
    auto file = pick_quant_file(cache.snapshot_files(t.repo, t.revision), t.repo, t.quant);
    if (!file) return std::nullopt;
    t.file = *file;
  }
  auto path = cache.find(t.repo, t.revision, t.file);
  if (!path) return std::nullopt;
  return ResolvedModel{*path, ModelSource::HfCache, hf_name(t)};
}

Expected<ResolvedModel> fetch(const HubConfig& cfg, HfTarget t, const PullOptions& opts) {
  if (t.file.empty()) {
    DHI_ASSIGN_OR_RETURN(std::vector<std::string> files, hf_list_files(cfg, t.repo, t.revision));
    DHI_ASSIGN_OR_RETURN(t.file, pick_quant_file(files, t.repo, t.quant));
  }
  DHI_ASSIGN_OR_RETURN(FetchedFile f, hf_fetch(cfg, t, opts));
  return ResolvedModel{f.path, f.downloaded ? ModelSource::Downloaded : ModelSource::HfCache, hf_name(t)};
}

std::string catalog_hint() {
  std::string s;
  for (const CatalogModel& m : catalog()) s += (s.empty() ? "" : ", ") + std::string(m.family) + ":" + std::string(m.size);
  return s;
}

}  // namespace

const char* model_source_name(ModelSource s) {
  switch (s) {
    case ModelSource::File: return "file";
    case ModelSource::HfCache: return "hf-cache";
    case ModelSource::Downloaded: return "downloaded";
    case ModelSource::Ollama: return "ollama";
  }
  return "file";
}

Expected<ResolvedModel> resolve_model(const HubConfig& cfg, const std::string& name, const PullOptions& opts) {
  std::error_code ec;
  if (fs::is_regular_file(name, ec)) return ResolvedModel{name, ModelSource::File, name};
  const bool looks_like_path = name.size() > 5 && name.substr(name.size() - 5) == ".gguf" && name.rfind("hf://", 0) != 0;
  if (looks_like_path || fs::exists(name, ec)) return make_error(name, ": no such file");
  DHI_ASSIGN_OR_RETURN(ModelRef ref, parse_model_name(name));

  if (ref.hf) {
    if (auto hit = from_cache(cfg, *ref.hf)) return *hit;
  }
  if (ref.ollama) {
    DHI_ASSIGN_OR_RETURN(auto found, find_ollama_model(cfg.ollama_dir, *ref.ollama));
    if (found) return ResolvedModel{found->blob, ModelSource::Ollama, found->name};
  }
  if (!ref.hf)
    return make_error("'", name, "' is not a file, not a catalog name (", catalog_hint(),
                      "), and not in the Ollama store (", cfg.ollama_dir, ")");
  if (cfg.offline)
    return make_error("'", name, "' is not in the cache (", cfg.cache_dir, ") and offline mode forbids downloading it");
  if (opts.on_note) opts.on_note("pulling " + hf_name(*ref.hf) + " from " + cfg.endpoint);
  return fetch(cfg, *ref.hf, opts);
}

Expected<ResolvedModel> pull_model(const HubConfig& cfg, const std::string& name, const PullOptions& opts) {
  DHI_ASSIGN_OR_RETURN(ModelRef ref, parse_model_name(name));
  if (!ref.hf) {
    if (ref.ollama) {
      DHI_ASSIGN_OR_RETURN(auto found, find_ollama_model(cfg.ollama_dir, *ref.ollama));
      if (found) return ResolvedModel{found->blob, ModelSource::Ollama, found->name};
    }
    return make_error("'", name, "' is not a catalog name (", catalog_hint(),
                      "), hf://OWNER/REPO/FILE.gguf or OWNER/REPO:QUANT, and not in the Ollama store (",
                      cfg.ollama_dir, ")");
  }
  if (cfg.offline) {
    if (auto hit = from_cache(cfg, *ref.hf)) return *hit;
    return make_error("'", name, "' is not in the cache (", cfg.cache_dir, ") and offline mode forbids downloading it");
  }
  return fetch(cfg, *ref.hf, opts);
}

}  // namespace dhi::hub
