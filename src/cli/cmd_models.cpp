// Model management: `dhi pull NAME` downloads a model into the Hugging Face
// cache, `dhi ls` lists the models on disk (that cache and Ollama's store) with
// what their GGUF headers say, `dhi rm NAME` removes one from the cache.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "hub/hf_cache.h"
#include "hub/names.h"
#include "hub/ollama.h"
#include "hub/resolve.h"

namespace dhi::cli {
namespace {

struct PullOptions {
  std::string name;
  bool offline = false;
};

struct LsOptions {
  bool json = false;
  bool catalog = false;
};

struct RmOptions {
  std::string name;
};

Status pull(const PullOptions& o) {
  hub::HubConfig cfg = hub::HubConfig::from_env();
  cfg.offline = cfg.offline || o.offline;
  DownloadProgress progress(stderr_is_terminal());
  hub::PullOptions opts = progress.pull_options();
  opts.cancel = &interrupt_flag();
  auto r = hub::pull_model(cfg, o.name, opts);
  progress.finish(r.ok() && r->source == hub::ModelSource::Downloaded);
  if (!r) return r.error();
  const char* how = r->source == hub::ModelSource::Downloaded ? "pulled"
                    : r->source == hub::ModelSource::Ollama  ? "found in the Ollama store:"
                                                             : "up to date:";
  std::printf("%s %s\n%s\n", how, r->name.c_str(), r->path.c_str());
  return {};
}

// llama.cpp's general.file_type numbers, named the way GGUF file names carry them.
std::string file_type_name(uint64_t t) {
  static const std::map<uint64_t, const char*> names = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},   {32, "BF16"}};
  auto it = names.find(t);
  return it == names.end() ? "" : it->second;
}

std::string param_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2fB", double(n) / 1e9);
  else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.1fM", double(n) / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1fK", double(n) / 1e3);
  return buf;
}

struct ListedModel {
  std::string name, path, source, quant, arch, params;
  uint64_t size = 0;
  uint64_t n_params = 0;
  std::string error;  // the GGUF header could not be read
};

// What the GGUF header says; a file that does not parse is listed with the reason.
void describe(ListedModel& m) {
  auto file = gguf::GgufFile::open(m.path);
  if (!file) {
    m.error = file.error().message;
    return;
  }
  auto arch = file->get_string_or("general.architecture", "");
  if (arch) m.arch = *arch;
  std::map<TensorType, uint64_t> bytes_by_type;
  for (const auto& t : file->tensors()) {
    m.n_params += t.n_elements;
    bytes_by_type[t.type] += t.n_bytes;
  }
  m.params = param_count(m.n_params);
  auto file_type = file->get_uint_or("general.file_type", 1u << 20);
  if (file_type) m.quant = file_type_name(*file_type);
  if (m.quant.empty()) {
    // No (known) file type: the type holding most of the bytes.
    uint64_t best = 0;
    for (const auto& [type, b] : bytes_by_type)
      if (b > best) {
        best = b;
        m.quant = std::string(tensor_type_name(type));
      }
  }
}

std::vector<ListedModel> local_models(const hub::HubConfig& cfg) {
  std::vector<ListedModel> out;
  const hub::HfCache cache(cfg.cache_dir);
  // One entry per repository file: the one main points to when there are several snapshots.
  std::map<std::pair<std::string, std::string>, hub::CachedFile> files;
  for (hub::CachedFile& f : cache.list_gguf()) {
    auto key = std::make_pair(f.repo, f.file);
    auto it = files.find(key);
    if (it == files.end() || cache.commit_of(f.repo, "main") == f.commit) files[key] = std::move(f);
  }
  for (const auto& [key, f] : files) {
    ListedModel m;
    m.name = hub::catalog_name_of(f.repo, f.file);
    if (m.name.empty()) m.name = "hf://" + f.repo + "/" + f.file;
    m.path = f.path;
    m.size = f.size;
    m.source = "hf-cache";
    out.push_back(std::move(m));
  }
  for (const hub::OllamaModel& om : hub::list_ollama_models(cfg.ollama_dir)) {
    ListedModel m;
    m.name = om.name;
    m.path = om.blob;
    m.size = om.size;
    m.source = "ollama";
    out.push_back(std::move(m));
  }
  for (ListedModel& m : out) describe(m);
  return out;
}

void print_catalog() {
  std::printf("%-24s %-46s %s\n", "NAME", "REPOSITORY", "FILE (default quant)");
  for (const hub::CatalogModel& m : hub::catalog()) {
    const std::string name = std::string(m.family) + ":" + std::string(m.size);
    auto ref = hub::parse_model_name(name);
    std::printf("%-24s %-46s %s\n", name.c_str(), std::string(m.repo).c_str(), ref ? ref->hf->file.c_str() : "");
  }
  std::string quants;
  for (std::string_view q : hub::catalog_quants()) quants += (quants.empty() ? "" : ", ") + std::string(q);
  std::printf("\nQuant variants: NAME-QUANT (e.g. deepseek-r1:7b-q8_0); quants: %s (default %s).\n"
              "A bare family name picks deepseek-r1:7b / deepseek-r1-qwen3:8b.\n",
              quants.c_str(), std::string(hub::catalog_quants()[0]).c_str());
}

Status ls(const LsOptions& o) {
  if (o.catalog) {
    print_catalog();
    return {};
  }
  const hub::HubConfig cfg = hub::HubConfig::from_env();
  std::vector<ListedModel> models = local_models(cfg);
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const ListedModel& m : models) {
      nlohmann::json e = {{"name", m.name},   {"path", m.path},         {"size", m.size},
                          {"source", m.source}, {"quant", m.quant},     {"arch", m.arch},
                          {"n_params", m.n_params}};
      if (!m.error.empty()) e["error"] = m.error;
      j.push_back(e);
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return {};
  }
  if (models.empty()) {
    std::printf("no models in %s or %s; get one with `dhi pull deepseek-r1:1.5b`\n", cfg.cache_dir.c_str(),
                cfg.ollama_dir.c_str());
    return {};
  }
  std::printf("%-36s %10s  %-7s %-8s %8s  %-8s  %s\n", "NAME", "SIZE", "QUANT", "ARCH", "PARAMS", "SOURCE", "FILE");
  for (const ListedModel& m : models) {
    std::printf("%-36s %10s  %-7s %-8s %8s  %-8s  %s\n", m.name.c_str(), human_size(m.size).c_str(),
                m.error.empty() ? m.quant.c_str() : "?", m.error.empty() ? m.arch.c_str() : "?",
                m.error.empty() ? m.params.c_str() : "?", m.source.c_str(), m.path.c_str());
    if (!m.error.empty()) std::printf("  unreadable: %s\n", m.error.c_str());
  }
  return {};
}

Status rm(const RmOptions& o) {
  const hub::HubConfig cfg = hub::HubConfig::from_env();
  auto ref = hub::parse_model_name(o.name);
  if (!ref) return make_error("'", o.name, "' is not a model name (dhi rm removes models from the cache, not files)");
  if (ref->hf) {
    hub::HfTarget t = *ref->hf;
    const hub::HfCache cache(cfg.cache_dir);
    if (t.file.empty()) {
      auto file = hub::pick_quant_file(cache.snapshot_files(t.repo, t.revision), t.repo, t.quant);
      if (file) t.file = *file;
    }
    if (!t.file.empty()) {
      DHI_ASSIGN_OR_RETURN(int removed, cache.remove(t.repo, t.file));
      if (removed > 0) {
        std::printf("removed %s (%s/%s)\n", o.name.c_str(), t.repo.c_str(), t.file.c_str());
        return {};
      }
    }
  }
  if (ref->ollama) {
    DHI_ASSIGN_OR_RETURN(auto found, hub::find_ollama_model(cfg.ollama_dir, *ref->ollama));
    if (found)
      return make_error("'", found->name, "' belongs to Ollama's store (", found->blob,
                        "); remove it with `ollama rm ", found->name, "`");
  }
  return make_error("'", o.name, "' is not in the cache (", cfg.cache_dir, "); `dhi ls` lists what is");
}

}  // namespace

void register_pull(CLI::App& app, Action& action) {
  auto o = std::make_shared<PullOptions>();
  CLI::App* cmd = app.add_subcommand("pull", "Download a model into the Hugging Face cache");
  cmd->add_option("name", o->name,
                  "Model name: deepseek-r1:1.5b (see `dhi ls --catalog`), hf://OWNER/REPO/FILE.gguf, "
                  "OWNER/REPO:QUANT")
      ->required();
  add_offline_flag(*cmd, o->offline);
  cmd->callback([o, &action] { action = [o] { return pull(*o); }; });
}

void register_ls(CLI::App& app, Action& action) {
  auto o = std::make_shared<LsOptions>();
  CLI::App* cmd = app.add_subcommand("ls", "List the models on disk (Hugging Face cache and Ollama store)");
  cmd->add_flag("--json", o->json, "Print a JSON array");
  cmd->add_flag("--catalog", o->catalog, "List the built-in model names instead");
  cmd->callback([o, &action] { action = [o] { return ls(*o); }; });
}

void register_rm(CLI::App& app, Action& action) {
  auto o = std::make_shared<RmOptions>();
  CLI::App* cmd = app.add_subcommand("rm", "Remove a model from the Hugging Face cache");
  cmd->add_option("name", o->name, "Model name as `dhi ls` shows it")->required();
  cmd->callback([o, &action] { action = [o] { return rm(*o); }; });
}

}  // namespace dhi::cli
