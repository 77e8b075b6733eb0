// `dhi info`: what a GGUF file holds — architecture, shapes, tensor types,
// tokenizer, chat template — and the memory it needs at a given context.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <algorithm>
#include <cstdint>
#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "planner/plan.h"

namespace dhi::cli {
namespace {

struct InfoOptions {
  std::string model_path;
  uint32_t n_ctx = 4096;
  bool offline = false;
};

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
  return buf;
}

Status info(const InfoOptions& o) {
  DHI_ASSIGN_OR_RETURN(const std::string path, resolve_model_arg(o.model_path, o.offline));
  DHI_ASSIGN_OR_RETURN(auto file, open_gguf(path));
  std::printf("file:         %s (GGUF v%u, %s)\n", path.c_str(), file->version(),
              human_bytes(file->file_size()).c_str());
  std::printf("architecture: %s\n",
              file->get_string_or("general.architecture", "(none)")->c_str());
  auto name = file->get_string_or("general.name", "");
  if (name && !name->empty()) std::printf("name:         %s\n", name->c_str());

  // Tensor types by count and bytes.
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  uint64_t n_params = 0;
  for (const auto& t : file->tensors()) {
    auto& e = by_type[std::string(tensor_type_name(t.type))];
    e.first++;
    e.second += t.n_bytes;
    n_params += t.n_elements;
  }
  std::printf("tensors:      %zu, %.3g M parameters\n", file->tensors().size(), n_params / 1e6);
  for (const auto& [type, e] : by_type)
    std::printf("  %-6s      %4d tensors, %s\n", type.c_str(), e.first, human_bytes(e.second).c_str());

  auto tokenizer = tok::Tokenizer::from_gguf(*file);
  if (tokenizer) {
    std::printf("tokenizer:    %s (pre: %s), %d tokens, bos %d, eos %d, add_bos %s\n",
                std::string(tokenizer->model_name()).c_str(),
                std::string(tokenizer->pre_name()).c_str(), tokenizer->n_vocab(),
                tokenizer->bos(), tokenizer->eos(), tokenizer->add_bos() ? "yes" : "no");
  } else {
    std::printf("tokenizer:    unusable: %s\n", tokenizer.error().message.c_str());
  }
  auto family = choose_template(*file, "");
  std::printf("chat template: %s\n", family ? std::string(chat::template_name(*family)).c_str()
                                            : ("none: " + family.error().message).c_str());

  auto model = model::Model::load(*file);
  if (!model) {
    std::printf("model:        not loadable: %s\n", model.error().message.c_str());
    return {};
  }
  const model::ModelConfig& c = (*model)->config();
  std::printf("shape:        n_embd %d, n_layer %d, n_head %d, n_head_kv %d, head_dim %d, n_ff %d, "
              "n_vocab %d\n",
              c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.n_ff, c.n_vocab);
  std::printf("context:      %u trained; rope base %g, %s%s%s\n", c.n_ctx_train, c.rope_base,
              c.rope_style == model::RopeStyle::Neox ? "neox" : "norm",
              c.qkv_bias ? ", qkv bias" : "", c.qk_norm ? ", q/k norm" : "");
  std::printf("output:       %s\n", c.tied_output ? "tied to token embeddings" : "separate matrix");
  // The planner's CPU-engine footprint (dhi run's defaults: f32 cache, one sequence).
  DHI_ASSIGN_OR_RETURN(planner::ModelDesc desc, planner::describe_gguf(*file, o.model_path));
  planner::DeviceProfile cpu;
  cpu.name = "cpu";
  cpu.ram_bytes = UINT64_MAX;
  cpu.cpu_threads = 1;
  cpu.cpu_bandwidth_gbs = cpu.cpu_nominal_gflops = 1;
  planner::PlanRequest req;
  req.n_ctx = std::min(o.n_ctx, std::max(1u, desc.n_ctx_train));
  DHI_ASSIGN_OR_RETURN(planner::Plan plan,
                       planner::make_plan(desc, cpu, req, planner::default_cpu_speed(desc.dominant_type())));
  const planner::MemoryBreakdown& mem = plan.memory;
  std::printf("memory at context %u: %s (weights %s, KV cache %s, compute %s, overhead %s; see dhi plan)\n",
              plan.n_ctx, human_bytes(mem.total()).c_str(), human_bytes(mem.weights).c_str(),
              human_bytes(mem.kv_cache).c_str(), human_bytes(mem.compute).c_str(), human_bytes(mem.overhead).c_str());
  return {};
}

}  // namespace

void register_info(CLI::App& app, Action& action) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a GGUF model file");
  cmd->add_option("model", opts->model_path, "GGUF file or model name")->required();
  add_offline_flag(*cmd, opts->offline);
  cmd->add_option("-c,--ctx", opts->n_ctx, "Context length for the memory estimate")
      ->check(CLI::Range(1u, 1u << 24));
  cmd->callback([opts, &action] { action = [opts] { return info(*opts); }; });
}

}  // namespace dhi::cli
