// Where the model hub lives, read from the environment the way the Hugging Face
// tools and Ollama read it, so dhi shares their files.
#pragma once

#include <string>

namespace dhi::hub {

struct HubConfig {
  std::string endpoint;    // HF_ENDPOINT, else https://huggingface.co (no trailing '/')
  std::string token;       // HF_TOKEN, else the file $HF_HOME/token; empty for none
  std::string cache_dir;   // HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
                           // else ~/.cache/huggingface/hub
  std::string ollama_dir;  // OLLAMA_MODELS, else ~/.ollama/models
  bool offline = false;    // HF_HUB_OFFLINE=1 (or --offline): never touch the network

  static HubConfig from_env();
};

}  // namespace dhi::hub
