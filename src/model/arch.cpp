// The registration table: architecture name -> ArchDef.
#include "model/arch.h"

namespace dhi::model {

namespace {
using ArchGetter = const ArchDef& (*)();
constexpr ArchGetter kArchs[] = {&arch_llama, &arch_qwen2, &arch_qwen3};
}  // namespace

const ArchDef* find_arch(std::string_view name) {
  for (ArchGetter get : kArchs) {
    if (get().name == name) return &get();
  }
  return nullptr;
}

std::vector<std::string> arch_names() {
  std::vector<std::string> out;
  for (ArchGetter get : kArchs) out.emplace_back(get().name);
  return out;
}

}  // namespace dhi::model
