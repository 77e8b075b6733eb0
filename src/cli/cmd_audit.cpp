// `dhi audit verify LOG`: checks a gateway audit log (policy/audit.h) and
// prints a summary, or every violation with its line. Exit status: 0 clean,
// 1 violations, 2 a usage error or a log that cannot be read.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "policy/audit.h"

namespace dhi::cli {
namespace {

struct AuditOptions {
  std::string log;
  bool strict = false;
  bool json = false;
};

std::string counts(const std::map<std::string, size_t>& m) {
  std::string s;
  for (const auto& [name, n] : m) {
    if (!s.empty()) s += ", ";
    s += name + " " + std::to_string(n);
  }
  return s.empty() ? "none" : s;
}

void print_findings(const char* label, const std::vector<policy::AuditViolation>& v) {
  for (const policy::AuditViolation& x : v)
    std::printf("%s: line %zu: %s: %s\n", label, x.line, x.kind.c_str(), x.message.c_str());
}

Status verify(const AuditOptions& o) {
  auto report = policy::verify_audit_log(std::filesystem::path(o.log), policy::VerifyOptions{o.strict});
  if (!report) {
    failure_exit_code() = 2;
    return report.error();
  }
  const policy::AuditReport& r = *report;
  if (o.json) {
    std::printf("%s\n", r.to_json().dump(2).c_str());
  } else {
    print_findings("violation", r.violations);
    print_findings("warning", r.warnings);
    std::printf("%s: %zu lines, %zu requests (%zu blocked, %zu incomplete; levels: %s), %zu attempts (%zu failovers, "
                "%zu continuations; tiers: %s), %zu results\n",
                o.log.c_str(), r.lines, r.requests, r.blocked, r.incomplete, counts(r.requests_per_level).c_str(),
                r.attempts, r.failovers, r.continuations, counts(r.attempts_per_tier).c_str(), r.results);
    std::printf("%s\n", r.clean() ? "clean: no request reached a backend above its privacy level"
                                  : "NOT clean: see the violations above");
  }
  if (!r.clean()) {
    failure_exit_code() = 1;
    return make_error(o.log, ": ", r.violations.size(), " violation(s)");
  }
  return {};
}

}  // namespace

void register_audit(CLI::App& app, Action& action) {
  CLI::App* audit = app.add_subcommand("audit", "Audit logs of the gateway");
  audit->require_subcommand(1);
  auto o = std::make_shared<AuditOptions>();
  CLI::App* cmd = audit->add_subcommand(
      "verify", "Check an audit log: no request above its privacy level, every attempt after its request, ...");
  cmd->add_option("log", o->log, "The audit log (JSON lines)")->required();
  cmd->add_flag("--strict", o->strict, "Requests without a result and a torn last line are violations too");
  cmd->add_flag("--json", o->json, "Print the report as one JSON object");
  cmd->callback([o, &action] { action = [o] { return verify(*o); }; });
}

}  // namespace dhi::cli
