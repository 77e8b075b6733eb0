// Shared plumbing of the subcommands (see common.h).
#include "cli/common.h"

#include "cli/commands.h"
#include "cli/progress.h"
#include "hub/resolve.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <random>

#include "planner/plan.h"

namespace dhi::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
  if (g_interrupted.exchange(true)) _exit(130);
}

}  // namespace

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) != 0; }
bool stderr_is_terminal() { return isatty(STDERR_FILENO) != 0; }

std::atomic<bool>& interrupt_flag() { return g_interrupted; }

int& failure_exit_code() {
  static int code = 1;
  return code;
}

void install_interrupt_handler() {
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

Expected<std::string> resolve_model_arg(const std::string& name_or_path, bool offline) {
  hub::HubConfig cfg = hub::HubConfig::from_env();
  cfg.offline = cfg.offline || offline;
  DownloadProgress progress(stderr_is_terminal());
  hub::PullOptions opts = progress.pull_options();
  opts.cancel = &interrupt_flag();
  auto resolved = hub::resolve_model(cfg, name_or_path, opts);
  progress.finish(resolved.ok() && resolved->source == hub::ModelSource::Downloaded);
  if (!resolved) return resolved.error();
  return resolved->path;
}

void add_offline_flag(CLI::App& cmd, bool& offline) {
  cmd.add_flag("--offline", offline, "Never touch the network: use cached models only (also HF_HUB_OFFLINE=1)");
}

Expected<std::unique_ptr<gguf::GgufFile>> open_gguf(const std::string& path) {
  auto file = gguf::GgufFile::open(path);
  if (!file) return file.error();
  return std::make_unique<gguf::GgufFile>(std::move(file).value());
}

Expected<TensorType> parse_kv_type(const std::string& name, bool allow_q8_0) {
  if (name == "f32" || name == "F32") return TensorType::F32;
  if (name == "f16" || name == "F16") return TensorType::F16;
  if (allow_q8_0 && (name == "q8_0" || name == "Q8_0")) return TensorType::Q8_0;
  return make_error("unknown KV cache type '", name, "' (", allow_q8_0 ? "f32, f16, q8_0" : "f32, f16", ")");
}

Expected<uint32_t> admit(const gguf::GgufFile& file, const std::string& path, const EngineRequest& req) {
  DHI_ASSIGN_OR_RETURN(planner::ModelDesc m, planner::describe_gguf(file, path));
  planner::LocalOptions lo;
  lo.n_threads = req.n_threads;
  lo.measure_bandwidth = false;  // memory only: the verdict does not depend on speed
  DHI_ASSIGN_OR_RETURN(planner::DeviceProfile dev, planner::local_device(lo));
  if (req.max_memory_bytes > 0 && req.max_memory_bytes < dev.ram_bytes) dev.ram_bytes = req.max_memory_bytes;
  planner::PlanRequest pr;
  pr.n_ctx = req.n_ctx;
  pr.n_seq = req.n_seq;
  pr.kv_type = req.kv_type;
  pr.suggest_devices = false;
  auto plan = planner::make_plan(m, dev, pr, planner::default_cpu_speed(m.dominant_type()));
  if (!plan) return make_error(path, ": ", plan.error().message);
  if (plan->fit == planner::Fit::No) {
    return make_error(path, ": does not fit in this machine's available memory at context ", plan->n_ctx, ": ",
                      plan->explanation,
                      "; ", plan->suggestion.empty() ? "free memory or use a smaller model" : plan->suggestion,
                      " (see dhi plan)");
  }
  return plan->n_ctx;
}

Expected<LoadedModel> load_model(const std::string& path, const EngineRequest* request) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel lm;
  DHI_ASSIGN_OR_RETURN(lm.file, open_gguf(path));
  if (request) {
    DHI_ASSIGN_OR_RETURN(lm.n_ctx, admit(*lm.file, path, *request));
  }

  auto tokenizer = tok::Tokenizer::from_gguf(*lm.file);
  if (!tokenizer) return make_error(path, ": ", tokenizer.error().message);
  lm.tokenizer = std::make_unique<tok::Tokenizer>(std::move(tokenizer).value());

  const bool show_progress = stderr_is_terminal();
  model::LoadOptions opts;
  int last_percent = -1;
  if (show_progress) {
    opts.on_progress = [&](double fraction) {
      int percent = int(fraction * 100);
      if (percent == last_percent) return;
      last_percent = percent;
      std::fprintf(stderr, "\rloading %s: %3d%%", path.c_str(), percent);
      std::fflush(stderr);
    };
  }
  auto model = model::Model::load(*lm.file, opts);
  if (show_progress && last_percent >= 0) std::fprintf(stderr, "\r\033[K");
  if (!model) return make_error(path, ": ", model.error().message);
  lm.model = std::move(model).value();
  lm.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return lm;
}

Expected<chat::TemplateFamily> choose_template(const gguf::GgufFile& file,
                                               const std::string& override_name) {
  if (!override_name.empty()) return chat::template_from_name(override_name);
  const gguf::Value* v = file.find("tokenizer.chat_template");
  const std::string* source = v ? v->as_string() : nullptr;
  if (!source)
    return make_error("the model has no chat template (tokenizer.chat_template); pass "
                      "--chat-template NAME, or --raw to use the prompt as plain text");
  auto family = chat::detect_template(*source);
  if (!family)
    return make_error(family.error().message,
                      "; pass --chat-template NAME, or --raw to use the prompt as plain text");
  return family;
}

void add_generation_options(CLI::App& cmd, GenerationOptions& o) {
  cmd.add_option("model,-m,--model", o.model_path,
                 "GGUF file or model name (deepseek-r1:1.5b, hf://OWNER/REPO/FILE.gguf, OWNER/REPO:QUANT, "
                 "an Ollama NAME:TAG); pulled on first use")
      ->required();
  add_offline_flag(cmd, o.offline);
  cmd.add_option("-n,--n-predict", o.n_predict, "Tokens to generate (-1: until the model stops)")
      ->check(CLI::Range(-1, 1 << 30));
  cmd.add_option("-c,--ctx", o.n_ctx,
                 "Context length (0: the model's, capped at 4096, shrunk to what fits in memory)")
      ->check(CLI::Range(0u, 1u << 24));
  cmd.add_option("--kv-type", o.kv_type, "KV cache type: f32 (exact), f16 (half the memory)")
      ->capture_default_str();
  cmd.add_option("--max-memory", o.max_memory_gb,
                 "GB of memory to plan within (0: what the OS reports available)")
      ->check(CLI::Range(0.0, 1e6));
  cmd.add_option("-t,--threads", o.n_threads, "CPU threads (0: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd.add_option("--temp", o.sampling.temperature, "Temperature (0: greedy)")
      ->default_val(0.6f);
  cmd.add_option("--top-k", o.sampling.top_k, "Top-k (0: off)")->default_val(40);
  cmd.add_option("--top-p", o.sampling.top_p, "Top-p (1: off)")->default_val(0.95f);
  cmd.add_option("--min-p", o.sampling.min_p, "Min-p (0: off)")->default_val(0.05f);
  cmd.add_option("--repeat-penalty", o.sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->default_val(1.0f);
  cmd.add_option("--repeat-last-n", o.sampling.repeat_last_n, "Tokens the penalties look back on")
      ->default_val(64);
  cmd.add_option("--frequency-penalty", o.sampling.frequency_penalty, "Frequency penalty")
      ->default_val(0.0f);
  cmd.add_option("--presence-penalty", o.sampling.presence_penalty, "Presence penalty")
      ->default_val(0.0f);
  cmd.add_option_function<uint64_t>(
      "--seed", [&o](uint64_t s) { o.sampling.seed = s; o.seed_given = true; },
      "Random seed (same seed, same output)");
  cmd.add_option("--stop", o.stop, "Stop string (repeatable)");
  cmd.add_option("-s,--system", o.system_prompt, "System prompt");
  cmd.add_option("--chat-template", o.chat_template,
                 "Chat template family: deepseek-r1, chatml, llama3, llama2");
  cmd.add_option("--reasoning", o.reasoning_mode,
                 "How to print <think> reasoning: show, dim, hide (auto: dim on a terminal)")
      ->check(CLI::IsMember({"auto", "show", "dim", "hide"}));
}

Status finalize_generation_options(GenerationOptions& o) {
  if (!o.seed_given) o.sampling.seed = std::random_device{}();
  DHI_TRY(sampling::validate(o.sampling));
  DHI_ASSIGN_OR_RETURN(o.model_path, resolve_model_arg(o.model_path, o.offline));
  return {};
}

Expected<EngineRequest> engine_request(const GenerationOptions& o) {
  EngineRequest r;
  r.n_ctx = o.n_ctx;
  r.n_threads = o.n_threads;
  r.max_memory_bytes = uint64_t(o.max_memory_gb * 1e9);
  DHI_ASSIGN_OR_RETURN(r.kv_type, parse_kv_type(o.kv_type, /*allow_q8_0=*/false));
  return r;
}

}  // namespace dhi::cli
