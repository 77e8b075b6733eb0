// Downloads from a Hugging Face hub (https://huggingface.co or HF_ENDPOINT) into
// the shared cache. The resolve endpoint's HEAD answer, read without following
// its redirect to the CDN, names the commit (X-Repo-Commit), the content hash
// (X-Linked-Etag: the LFS sha256) and the size (X-Linked-Size). The body goes
// to blobs/<etag>.incomplete, resumed with a Range request after a cut or a
// restart, hashed while it arrives, and becomes blobs/<etag> plus its snapshot
// link only when size and hash match.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/expected.h"
#include "hub/config.h"
#include "hub/names.h"

namespace dhi::hub {

struct PullProgress {
  uint64_t done = 0;          // bytes of the file on disk so far
  uint64_t total = 0;
  uint64_t resumed_from = 0;  // bytes that were already there when this run started
};

struct PullOptions {
  std::function<void(const PullProgress&)> on_progress;
  std::function<void(const std::string&)> on_note;  // one-line notices (resuming, waiting, using the cache)
  const std::atomic<bool>* cancel = nullptr;
  int max_attempts = 4;  // transfers cut by the network are resumed this many times in one run
};

struct FetchedFile {
  std::string path;  // the snapshot entry
  std::string commit;
  uint64_t size = 0;
  bool downloaded = false;  // false: it was in the cache already
};

// The file of `target` (whose `file` is set) in the cache, downloading it when
// it is missing or the revision moved; with cfg.offline only the cache is read.
Expected<FetchedFile> hf_fetch(const HubConfig& cfg, const HfTarget& target, const PullOptions& opts);

// The files of a repository at a revision: from the tree API online, from the
// cached snapshot offline.
Expected<std::vector<std::string>> hf_list_files(const HubConfig& cfg, const std::string& repo,
                                                 const std::string& revision);

}  // namespace dhi::hub
