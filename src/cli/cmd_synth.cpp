// `dhi synth`: writes a random-weight GGUF model with the exact shapes and weight
// types of a real target (presets in model/synth_presets.h), so speed and memory
// can be measured without downloading gigabytes. The vocabulary and chat template
// come from a vocab-only GGUF file.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "model/synth_presets.h"

namespace dhi::cli {
namespace {

struct SynthOptions {
  std::string preset;
  std::string quant = "Q4_K_M";
  std::string vocab_path;
  std::string out_path;
  uint64_t seed = 1;
  int32_t n_layer = 0;
  int32_t n_threads = 0;
};

std::string preset_names() {
  std::string s;
  for (const model::SynthPreset& p : model::synth_presets()) {
    if (!s.empty()) s += ", ";
    s += p.name;
  }
  return s;
}

Status synth(const SynthOptions& o) {
  const model::SynthPreset* preset = model::find_synth_preset(o.preset);
  if (!preset) return make_error("unknown preset '", o.preset, "' (presets: ", preset_names(), ")");
  DHI_ASSIGN_OR_RETURN(model::QuantMix mix, model::parse_quant_mix(o.quant));
  DHI_ASSIGN_OR_RETURN(auto vocab, open_gguf(o.vocab_path));
  DHI_ASSIGN_OR_RETURN(model::SynthSpec spec, model::preset_spec(*preset, mix, *vocab, o.n_layer, o.seed));
  model::SynthFileOptions fo = model::preset_file_options(*preset, spec);
  fo.n_threads = o.n_threads;
  const auto t0 = std::chrono::steady_clock::now();
  DHI_ASSIGN_OR_RETURN(model::SynthFileInfo info, model::write_synth_model(spec, fo, o.out_path));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%s: %s %s, %d layers, %.2f B parameters, %d tokens, %.2f GB in %.1f s\n", o.out_path.c_str(),
               std::string(preset->name).c_str(), mix.name.c_str(), spec.n_layer, double(info.n_params) / 1e9,
               info.n_vocab, double(info.file_bytes) / 1e9, s);
  return {};
}

}  // namespace

void register_synth(CLI::App& app, Action& action) {
  auto o = std::make_shared<SynthOptions>();
  CLI::App* cmd = app.add_subcommand("synth", "Write a random-weight model with a real model's shapes");
  cmd->add_option("preset", o->preset, "Model shape: " + preset_names())->required();
  cmd->add_option("-q,--quant", o->quant, "Weight types: F32, F16, BF16, Q8_0, Q4_0, Q4_K, ..., or a llama.cpp mix: Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K")
      ->capture_default_str();
  cmd->add_option("--vocab", o->vocab_path, "GGUF file whose tokenizer (and chat template) the model gets")
      ->required();
  cmd->add_option("-o,--output", o->out_path, "Output GGUF file")->required();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  cmd->add_option("--layers", o->n_layer, "Keep only this many layers (0: the preset's)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("-t,--threads", o->n_threads, "Threads drawing weights (0: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd->callback([o, &action] { action = [o] { return synth(*o); }; });
}

}  // namespace dhi::cli
