// `dhi chat`: an interactive multi-turn conversation. The KV cache is kept between
// turns: each turn renders the whole conversation, and the session evaluates only
// the part not already cached.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/reasoning_printer.h"
#include "engine/session.h"

namespace dhi::cli {
namespace {

constexpr const char* kHelp =
    "Type a message and press Enter. Commands: /reset (forget the conversation), /exit.\n"
    "Ctrl-C stops a reply; at the prompt it exits.\n";

Status chat_loop(GenerationOptions& o) {
  DHI_TRY(finalize_generation_options(o));
  DHI_ASSIGN_OR_RETURN(EngineRequest request, engine_request(o));
  DHI_ASSIGN_OR_RETURN(LoadedModel lm, load_model(o.model_path, &request));
  DHI_ASSIGN_OR_RETURN(chat::TemplateFamily family, choose_template(*lm.file, o.chat_template));
  std::vector<std::string> stops = o.stop;
  for (auto& s : chat::stop_texts(family)) stops.push_back(s);

  model::ContextParams cp;
  cp.n_ctx = lm.n_ctx;
  cp.n_threads = o.n_threads;
  cp.kv_type = request.kv_type;
  DHI_ASSIGN_OR_RETURN(auto context, model::Context::create(*lm.model, cp));
  engine::Session session(*context, *lm.tokenizer);

  const bool interactive = stdout_is_terminal();
  std::vector<chat::Message> history;
  if (!o.system_prompt.empty()) history.push_back({"system", o.system_prompt});
  if (interactive) std::fprintf(stderr, "%s", kHelp);

  auto& interrupted = interrupt_flag();
  std::string line;
  for (;;) {
    if (interactive) {
      std::fputs("\n> ", stdout);
      std::fflush(stdout);
    }
    interrupted = false;
    if (!std::getline(std::cin, line)) break;  // EOF, or Ctrl-C at the prompt
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history.resize(o.system_prompt.empty() ? 0 : 1);
      session.reset();
      continue;
    }
    if (line == "/help") {
      std::fprintf(stderr, "%s", kHelp);
      continue;
    }

    history.push_back({"user", line});
    DHI_ASSIGN_OR_RETURN(std::string text, chat::render(family, history, true));
    std::vector<int32_t> prompt =
        lm.tokenizer->encode(text, lm.tokenizer->add_bos(), /*parse_special=*/true);

    engine::GenerateParams gp;
    gp.max_tokens = o.n_predict;
    gp.sampling = o.sampling;
    gp.sampling.seed = o.sampling.seed + history.size();  // a different draw each turn
    gp.stop = stops;
    gp.cancel = &interrupted;

    ReasoningPrinter printer(parse_reasoning_mode(o.reasoning_mode),
                             chat::opens_in_reasoning(family, true));
    auto result = session.generate(prompt, gp, [&](std::string_view piece) { printer.push(piece); });
    printer.finish();
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!result) {
      // A turn that does not fit is reported; the conversation goes on without it.
      std::fprintf(stderr, "dhi: %s\n", result.error().message.c_str());
      history.pop_back();
      continue;
    }
    const engine::Timings& t = result->timings;
    std::fprintf(stderr, "[%d new prompt tokens (%d cached), %.1f tok/s | %d tokens, %.1f tok/s%s]\n",
                 t.prompt_tokens, t.prompt_cached, t.prompt_tps(), t.gen_tokens, t.gen_tps(),
                 result->finish_reason == engine::FinishReason::Cancelled ? ", stopped" : "");
    // The template decides what of the reply (e.g. R1 reasoning) stays in history.
    history.push_back({"assistant", result->text});
  }
  if (interactive) std::fputc('\n', stdout);
  return {};
}

}  // namespace

void register_chat(CLI::App& app, Action& action) {
  auto opts = std::make_shared<GenerationOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Interactive multi-turn chat");
  add_generation_options(*cmd, *opts);
  cmd->callback([opts, &action] { action = [opts] { return chat_loop(*opts); }; });
}

}  // namespace dhi::cli
