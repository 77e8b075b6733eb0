// `dhi run`: one prompt in, the generated text out (streamed), timings on stderr;
// `--json` prints one JSON object for scripts instead.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/reasoning_printer.h"
#include "engine/session.h"

namespace dhi::cli {
namespace {

struct RunOptions {
  GenerationOptions gen;
  std::string prompt;
  bool raw = false;
  bool json = false;
};

void print_timings(const LoadedModel& lm, const engine::Timings& t) {
  std::fprintf(stderr,
               "\nload: %.0f ms | prompt: %d tokens, %.1f tok/s | generated: %d tokens, "
               "%.1f tok/s | first token: %.0f ms\n",
               lm.load_ms, t.prompt_tokens, t.prompt_tps(), t.gen_tokens, t.gen_tps(), t.ttft_ms);
}

nlohmann::json timings_json(const LoadedModel& lm, const engine::Timings& t) {
  return {{"load_ms", lm.load_ms},         {"prompt_tokens", t.prompt_tokens},
          {"prompt_ms", t.prompt_ms},      {"prompt_tps", t.prompt_tps()},
          {"gen_tokens", t.gen_tokens},    {"gen_ms", t.gen_ms},
          {"gen_tps", t.gen_tps()},        {"ttft_ms", t.ttft_ms}};
}

Status run(RunOptions& o) {
  DHI_TRY(finalize_generation_options(o.gen));
  DHI_ASSIGN_OR_RETURN(EngineRequest request, engine_request(o.gen));
  DHI_ASSIGN_OR_RETURN(LoadedModel lm, load_model(o.gen.model_path, &request));
  const tok::Tokenizer& tokenizer = *lm.tokenizer;

  std::vector<int32_t> prompt;
  bool starts_in_reasoning = false;
  if (o.raw) {
    prompt = tokenizer.encode(o.prompt, tokenizer.add_bos(), /*parse_special=*/false);
  } else {
    DHI_ASSIGN_OR_RETURN(chat::TemplateFamily family,
                         choose_template(*lm.file, o.gen.chat_template));
    std::vector<chat::Message> messages;
    if (!o.gen.system_prompt.empty()) messages.push_back({"system", o.gen.system_prompt});
    messages.push_back({"user", o.prompt});
    DHI_ASSIGN_OR_RETURN(std::string text, chat::render(family, messages, true));
    prompt = tokenizer.encode(text, tokenizer.add_bos(), /*parse_special=*/true);
    starts_in_reasoning = chat::opens_in_reasoning(family, true);
    for (auto& s : chat::stop_texts(family)) o.gen.stop.push_back(s);
  }

  model::ContextParams cp;
  cp.n_ctx = lm.n_ctx;
  cp.n_threads = o.gen.n_threads;
  cp.kv_type = request.kv_type;
  DHI_ASSIGN_OR_RETURN(auto context, model::Context::create(*lm.model, cp));
  engine::Session session(*context, tokenizer);

  engine::GenerateParams gp;
  gp.max_tokens = o.gen.n_predict;
  gp.sampling = o.gen.sampling;
  gp.stop = o.gen.stop;
  gp.cancel = &interrupt_flag();

  // --raw output is printed as generated; templated output goes through the
  // reasoning split.
  ReasoningPrinter printer(parse_reasoning_mode(o.gen.reasoning_mode), starts_in_reasoning,
                           /*print=*/!o.json);
  DHI_ASSIGN_OR_RETURN(engine::GenerateResult result,
                       session.generate(prompt, gp, [&](std::string_view piece) {
                         if (o.raw && o.json) return;
                         if (o.raw) {
                           std::fwrite(piece.data(), 1, piece.size(), stdout);
                           std::fflush(stdout);
                         } else {
                           printer.push(piece);
                         }
                       }));
  if (!o.raw) printer.finish();

  if (o.json) {
    nlohmann::json j;
    if (o.raw) {
      j["text"] = result.text;
      j["reasoning"] = nullptr;
    } else {
      j["text"] = printer.content();
      j["reasoning"] = printer.reasoning();
    }
    j["tokens"] = result.tokens;
    j["prompt_tokens"] = prompt;
    j["finish_reason"] = engine::finish_reason_name(result.finish_reason);
    j["seed"] = o.gen.sampling.seed;
    j["timings"] = timings_json(lm, result.timings);
    std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::printf("%s\n", s.c_str());
  } else {
    std::fputc('\n', stdout);
    print_timings(lm, result.timings);
  }
  return {};
}

}  // namespace

void register_run(CLI::App& app, Action& action) {
  auto opts = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Generate a reply to one prompt");
  add_generation_options(*cmd, opts->gen);
  cmd->add_option("-p,--prompt", opts->prompt, "The prompt")->required();
  cmd->add_flag("--raw", opts->raw, "Use the prompt as plain text (no chat template)");
  cmd->add_flag("--json", opts->json, "Print one JSON object instead of streaming text");
  cmd->callback([opts, &action] { action = [opts] { return run(*opts); }; });
}

}  // namespace dhi::cli
