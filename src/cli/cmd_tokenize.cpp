// `dhi tokenize`: the token ids of a text under a model's tokenizer. Needs only
// the tokenizer metadata, so vocab-only GGUF files work too.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"

namespace dhi::cli {
namespace {

struct TokenizeOptions {
  std::string model_path;
  std::string text;
  bool no_bos = false;
  bool no_special = false;
  bool pieces = false;
  bool offline = false;
};

Status tokenize(const TokenizeOptions& o) {
  DHI_ASSIGN_OR_RETURN(const std::string path, resolve_model_arg(o.model_path, o.offline));
  DHI_ASSIGN_OR_RETURN(auto file, open_gguf(path));
  auto tokenizer = tok::Tokenizer::from_gguf(*file);
  if (!tokenizer) return make_error(path, ": ", tokenizer.error().message);
  bool add_bos = tokenizer->add_bos() && !o.no_bos;
  std::vector<int32_t> ids = tokenizer->encode(o.text, add_bos, !o.no_special);
  if (o.pieces) {
    // One token a line: the id and its text as a JSON string, so spaces, control
    // bytes and partial UTF-8 sequences stay visible.
    for (int32_t id : ids) {
      nlohmann::json piece = tokenizer->token_to_piece(id);
      std::printf("%d %s\n", id,
                  piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    return {};
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::printf("%s\n", line.c_str());
  return {};
}

}  // namespace

void register_tokenize(CLI::App& app, Action& action) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", opts->model_path, "GGUF model or vocab file, or a model name")->required();
  add_offline_flag(*cmd, opts->offline);
  cmd->add_option("text", opts->text, "Text to tokenize")->required();
  cmd->add_flag("--no-bos", opts->no_bos, "Do not add the BOS token");
  cmd->add_flag("--no-special", opts->no_special,
                "Tokenize special-token texts as plain text");
  cmd->add_flag("--pieces", opts->pieces, "Print each token's text too, one token a line");
  cmd->callback([opts, &action] { action = [opts] { return tokenize(*opts); }; });
}

}  // namespace dhi::cli
