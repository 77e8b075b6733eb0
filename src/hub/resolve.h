// From what a user types after `-m` to a GGUF file on disk: an existing path as
// is; a name from the Hugging Face cache, then from Ollama's store, then
// downloaded (never in offline mode).
#pragma once

#include <string>

#include "core/expected.h"
#include "hub/config.h"
#include "hub/hf_download.h"

namespace dhi::hub {

enum class ModelSource { File, HfCache, Downloaded, Ollama };
const char* model_source_name(ModelSource s);

struct ResolvedModel {
  std::string path;
  ModelSource source = ModelSource::File;
  std::string name;  // how listings show it: catalog name, hf://OWNER/REPO/FILE, Ollama name, or the path
};

Expected<ResolvedModel> resolve_model(const HubConfig& cfg, const std::string& name, const PullOptions& opts);

// `dhi pull`: asks the hub for the current revision even when a copy is cached
// (downloading only what changed); an Ollama model is reported, not fetched.
Expected<ResolvedModel> pull_model(const HubConfig& cfg, const std::string& name, const PullOptions& opts);

}  // namespace dhi::hub
