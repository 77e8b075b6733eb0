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
  uint32_t n_ctx = 0;  // the context admit() chose (0 when not asked)
};

// What the engine asks the capacity planner before loading a model: dhi's CPU
// engine on this machine with this context (0: the plan's choice).
struct EngineRequest {
  uint32_t n_ctx = 0;
  int32_t n_seq = 1;
  int32_t n_threads = 0;
  TensorType kv_type = TensorType::F32;
  uint64_t max_memory_bytes = 0;  // > 0: plan within this much instead of what the OS reports
};

// Plans the model of `file` on this machine (MemAvailable) before its weights
// are touched: returns the context to use (the requested one, or the largest
// up to the training context capped at 4096 that fits), or an error with the
// planner's explanation and suggestion when it does not fit, or when the
// requested context exceeds the model's training context.
Expected<uint32_t> admit(const gguf::GgufFile& file, const std::string& path, const EngineRequest& req);

// Opens and validates the file and builds the model and tokenizer; shows a
// progress line on stderr while the weights are paged in when stderr is a terminal.
// With `request`, admit() runs first and the chosen context is in n_ctx.
Expected<LoadedModel> load_model(const std::string& path, const EngineRequest* request = nullptr);

// "f32" / "f16" (and "q8_0" when allowed: planning for a GPU engine).
Expected<TensorType> parse_kv_type(const std::string& name, bool allow_q8_0);
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
  std::string kv_type = "f32";
  double max_memory_gb = 0;
};
void add_generation_options(CLI::App& cmd, GenerationOptions& opts);
// Fills in a random seed when none was given, validates the sampling values,
// then resolves the model argument to a file (pulling it when needed).
Status finalize_generation_options(GenerationOptions& opts);
// The planner's request for `run`/`chat` with these options.
Expected<EngineRequest> engine_request(const GenerationOptions& opts);

// Ctrl-C: the first press sets the flag (generation stops cleanly at the next
// token); a second press while the flag is set exits at once.
void install_interrupt_handler();
std::atomic<bool>& interrupt_flag();

bool stdout_is_terminal();
bool stderr_is_terminal();

}  // namespace dhi::cli
