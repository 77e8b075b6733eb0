// The Hugging Face hub cache, laid out exactly as huggingface_hub writes it so
// both tools reuse each other's downloads:
//   ROOT/models--OWNER--REPO/blobs/<etag>            the content (etag = sha256 for LFS files)
//   ROOT/models--OWNER--REPO/blobs/<etag>.incomplete  a download in progress
//   ROOT/models--OWNER--REPO/snapshots/<commit>/FILE  relative symlink ../../blobs/<etag>
//   ROOT/models--OWNER--REPO/refs/<revision>          the commit hash, no newline
//   ROOT/.locks/models--OWNER--REPO/<etag>.lock       held while downloading that blob
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.h"

namespace dhi::hub {

struct CachedFile {
  std::string repo;    // OWNER/REPO
  std::string commit;
  std::string file;    // path inside the repository
  std::string path;    // the snapshot entry
  uint64_t size = 0;
};

class HfCache {
 public:
  explicit HfCache(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  std::string repo_dir(const std::string& repo) const;
  std::string blob_path(const std::string& repo, const std::string& etag) const;
  std::string lock_path(const std::string& repo, const std::string& etag) const;
  std::string snapshot_path(const std::string& repo, const std::string& commit,
                            const std::string& file) const;

  // The commit a revision names: itself when it is a commit hash, else refs/<revision>.
  std::optional<std::string> commit_of(const std::string& repo, const std::string& revision) const;
  // The snapshot entry of FILE at the revision, when it is there and its blob is complete.
  std::optional<std::string> find(const std::string& repo, const std::string& revision,
                                  const std::string& file) const;
  // Files present in the revision's snapshot (paths inside the repository).
  std::vector<std::string> snapshot_files(const std::string& repo, const std::string& revision) const;

  Status write_ref(const std::string& repo, const std::string& revision, const std::string& commit) const;
  // Makes snapshots/<commit>/FILE a relative symlink to blobs/<etag>.
  Status link(const std::string& repo, const std::string& commit, const std::string& file,
              const std::string& etag) const;

  // Every GGUF file in every snapshot, sorted by repository and file.
  std::vector<CachedFile> list_gguf() const;
  // Removes FILE from every snapshot of the repository, then the blobs nothing
  // links to any more, then the repository folder when no snapshot is left.
  // Returns how many snapshot entries went.
  Expected<int> remove(const std::string& repo, const std::string& file) const;

 private:
  std::string root_;
};

// "models--OWNER--REPO" for "OWNER/REPO".
std::string repo_folder_name(const std::string& repo);

}  // namespace dhi::hub
