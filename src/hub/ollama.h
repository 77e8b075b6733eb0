// Models Ollama has already stored, so they run without another download.
// Ollama keeps one JSON manifest per name and tag,
//   ROOT/manifests/registry.ollama.ai/library/NAME/TAG   (ROOT: OLLAMA_MODELS or ~/.ollama/models)
// whose layer of mediaType application/vnd.ollama.image.model has the digest
// "sha256:<hex>" of the GGUF file ROOT/blobs/sha256-<hex>. Manifests are
// untrusted input: a malformed one is skipped by the listing and named by the lookup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.h"

namespace dhi::hub {

struct OllamaModel {
  std::string name;  // "NAME:TAG", "NS/NAME:TAG" outside library/, "HOST/NS/NAME:TAG" for other registries
  std::string blob;  // the GGUF file
  uint64_t size = 0;
};

// Every model in the store whose model layer is a GGUF file, sorted by name.
std::vector<OllamaModel> list_ollama_models(const std::string& root);
// The model stored under `name` ("NAME", "NAME:TAG", "NS/NAME:TAG"); nullopt
// when the store has no such manifest, an error when it has one that is unusable.
Expected<std::optional<OllamaModel>> find_ollama_model(const std::string& root, const std::string& name);

}  // namespace dhi::hub
