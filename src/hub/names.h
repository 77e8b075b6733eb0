// Model names: the built-in catalog of DeepSeek-R1-Distill GGUF repositories on
// Hugging Face ("deepseek-r1:1.5b", "deepseek-r1:7b-q8_0", ...), hf:// URLs
// ("hf://OWNER/REPO/FILE.gguf"), repository plus quant ("OWNER/REPO:Q4_K_M") and
// Ollama names ("NAME:TAG"). Parsing touches neither disk nor network.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"

namespace dhi::hub {

// A file in a Hugging Face repository; `file` empty means "the GGUF file whose
// name carries `quant`", found from the repository's file list.
struct HfTarget {
  std::string repo;  // OWNER/REPO
  std::string revision = "main";
  std::string file;
  std::string quant;
};

struct ModelRef {
  std::optional<HfTarget> hf;
  std::optional<std::string> ollama;  // "NAME:TAG" (or "NS/NAME:TAG") to look up in the Ollama store
  std::string catalog_name;           // canonical catalog name ("deepseek-r1:1.5b-q4_k_m"), else empty
};

struct CatalogModel {
  std::string_view family;       // "deepseek-r1"
  std::string_view size;         // "1.5b"
  std::string_view repo;         // Hugging Face repository
  std::string_view file_prefix;  // the GGUF file is PREFIX-QUANT.gguf
  std::string_view base;         // the model it was made from, for listings
};

const std::vector<CatalogModel>& catalog();
// Quant tags the catalog names accept, lower-case; the first is the default.
const std::vector<std::string_view>& catalog_quants();
// The catalog name for a repository file ("deepseek-r1:1.5b" for the default
// quant, "deepseek-r1:1.5b-q8_0" otherwise), or empty.
std::string catalog_name_of(const std::string& repo, const std::string& file);

// An error names what was wrong with the name and lists the accepted forms.
Expected<ModelRef> parse_model_name(const std::string& name);

// Whether a file name in a repository carries the quant tag (case-insensitive,
// between separators: "X-Q4_K_M.gguf" has Q4_K_M but not Q4_K).
bool file_has_quant(const std::string& path, const std::string& quant);
// The one GGUF file among `files` that carries the quant; an error lists the
// candidates when there is none or more than one.
Expected<std::string> pick_quant_file(const std::vector<std::string>& files, const std::string& repo,
                                      const std::string& quant);

bool valid_repo_id(const std::string& repo);
bool valid_repo_path(const std::string& path);

}  // namespace dhi::hub
