// Shared plumbing of the `dhi` subcommands: turning a model name into a file
// (pulling it with a progress bar when needed), loading a model file with a
// progress line, choosing the chat template, Ctrl-C handling and the options
// that several subcommands accept.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "chat/template.h"
#include "core/expected.h"
#include "gguf/reader.h"
#include "model/context.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace CLI {
class App;
}

namespace dhi::cli {

// The one place a model argument becomes a file: an existing path as is, else a
// name (catalog, hf://, OWNER/REPO:QUANT, Ollama) from the caches, else pulled
// from the hub with progress on stderr; `offline` (or HF_HUB_OFFLINE=1) never
// touches the network.
Expected<std::string> resolve_model_arg(const std::string& name_or_path, bool offline);
// `--offline` for a subcommand that takes a model.
void add_offline_flag(CLI::App& cmd, bool& offline);

// A model file with everything read from it. The GGUF mapping is owned here and
// outlives the model, whose tensors point into it.
struct LoadedModel {
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  double load_ms = 0;
};

// Opens and validates the file and builds the model and tokenizer; shows a
// progress line on stderr while the weights are paged in when stderr is a terminal.
Expected<LoadedModel> load_model(const std::string& path);
Expected<std::unique_ptr<gguf::GgufFile>> open_gguf(const std::string& path);

// The template family: `override_name` when given, else detected from the file's
// tokenizer.chat_template; an error says what to do when neither works.
Expected<chat::TemplateFamily> choose_template(const gguf::GgufFile& file,
                                               const std::string& override_name);

// Sampling and generation options shared by `run` and `chat`.
struct GenerationOptions {
  std::string model_path;  // a path or a model name until resolve_model_arg
  bool offline = false;
  int32_t n_predict = -1;
  uint32_t n_ctx = 0;
  int32_t n_threads = 0;
  sampling::SamplingParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  std::string system_prompt;
  std::string chat_template;
  std::string reasoning_mode = "auto";  // show | dim | hide | auto
};
void add_generation_options(CLI::App& cmd, GenerationOptions& opts);
// Fills in a random seed when none was given, validates the sampling values,
// then resolves the model argument to a file (pulling it when needed).
Status finalize_generation_options(GenerationOptions& opts);

// Ctrl-C: the first press sets the flag (generation stops cleanly at the next
// token); a second press while the flag is set exits at once.
void install_interrupt_handler();
std::atomic<bool>& interrupt_flag();

bool stdout_is_terminal();
bool stderr_is_terminal();

}  // namespace dhi::cli
