#include "hub/hf_cache.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "hub/digest.h"

namespace dhi::hub {
namespace fs = std::filesystem;

std::string repo_folder_name(const std::string& repo) {
  std::string s = "models--";
  for (char c : repo) {
    if (c == '/') s += "--";
    else s += c;
  }
  return s;
}

std::string HfCache::repo_dir(const std::string& repo) const { return root_ + "/" + repo_folder_name(repo); }

std::string HfCache::blob_path(const std::string& repo, const std::string& etag) const {
  return repo_dir(repo) + "/blobs/" + etag;
}

std::string HfCache::lock_path(const std::string& repo, const std::string& etag) const {
  return root_ + "/.locks/" + repo_folder_name(repo) + "/" + etag + ".lock";
}

std::string HfCache::snapshot_path(const std::string& repo, const std::string& commit,
                                   const std::string& file) const {
  return repo_dir(repo) + "/snapshots/" + commit + "/" + file;
}

std::optional<std::string> HfCache::commit_of(const std::string& repo, const std::string& revision) const {
  if (is_hex(revision, 40)) return revision;
  std::ifstream f(repo_dir(repo) + "/refs/" + revision);
  std::string commit;
  if (!f || !std::getline(f, commit)) return std::nullopt;
  if (!is_hex(commit, 40)) return std::nullopt;
  return commit;
}

std::optional<std::string> HfCache::find(const std::string& repo, const std::string& revision,
                                         const std::string& file) const {
  auto commit = commit_of(repo, revision);
  if (!commit) return std::nullopt;
  std::string path = snapshot_path(repo, *commit, file);
  std::error_code ec;
  // is_regular_file follows the symlink: a dangling link (blob removed) is no hit.
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  return path;
}

std::vector<std::string> HfCache::snapshot_files(const std::string& repo, const std::string& revision) const {
  std::vector<std::string> files;
  auto commit = commit_of(repo, revision);
  if (!commit) return files;
  const fs::path dir = repo_dir(repo) + "/snapshots/" + *commit;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (fs::is_regular_file(it->path(), ec)) files.push_back(it->path().lexically_relative(dir).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

Status HfCache::write_ref(const std::string& repo, const std::string& revision,
                          const std::string& commit) const {
  // A commit hash needs no ref; huggingface_hub writes none either.
  if (revision == commit) return {};
  const fs::path path = repo_dir(repo) + "/refs/" + revision;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return make_error("cannot create ", path.parent_path().string(), ": ", ec.message());
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << commit;
    if (!f) return make_error("cannot write ", tmp);
  }
  fs::rename(tmp, path, ec);
  if (ec) return make_error("cannot write ", path.string(), ": ", ec.message());
  return {};
}

Status HfCache::link(const std::string& repo, const std::string& commit, const std::string& file,
                     const std::string& etag) const {
  const fs::path entry = snapshot_path(repo, commit, file);
  std::error_code ec;
  fs::create_directories(entry.parent_path(), ec);
  if (ec) return make_error("cannot create ", entry.parent_path().string(), ": ", ec.message());
  // From snapshots/<commit>/a/b/FILE up to the repository folder: one "../" per
  // folder below it.
  std::string target = "../../";
  for (char c : file)
    if (c == '/') target += "../";
  target += "blobs/" + etag;
  const std::string tmp = entry.string() + ".dhi-tmp";
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) return make_error("cannot create the symlink ", tmp, ": ", ec.message());
  fs::rename(tmp, entry, ec);  // atomic replacement of an older entry
  if (ec) return make_error("cannot create ", entry.string(), ": ", ec.message());
  return {};
}

std::vector<CachedFile> HfCache::list_gguf() const {
  std::vector<CachedFile> out;
  std::error_code ec;
  for (const auto& repo_entry : fs::directory_iterator(root_, ec)) {
    const std::string name = repo_entry.path().filename().string();
    if (name.rfind("models--", 0) != 0) continue;
    std::string rest = name.substr(8);
    size_t sep = rest.find("--");
    if (sep == std::string::npos) continue;
    const std::string repo = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
    const fs::path snapshots = repo_entry.path() / "snapshots";
    std::error_code ec2;
    for (const auto& commit_dir : fs::directory_iterator(snapshots, ec2)) {
      std::error_code ec3;
      for (auto it = fs::recursive_directory_iterator(commit_dir.path(), ec3);
           !ec3 && it != fs::recursive_directory_iterator(); it.increment(ec3)) {
        const fs::path& p = it->path();
        std::error_code ec4;
        if (p.extension() != ".gguf" || !fs::is_regular_file(p, ec4)) continue;
        CachedFile f;
        f.repo = repo;
        f.commit = commit_dir.path().filename().string();
        f.file = p.lexically_relative(commit_dir.path()).string();
        f.path = p.string();
        f.size = fs::file_size(p, ec4);
        out.push_back(std::move(f));
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const CachedFile& a, const CachedFile& b) {
    return std::tie(a.repo, a.file, a.commit) < std::tie(b.repo, b.file, b.commit);
  });
  return out;
}

Expected<int> HfCache::remove(const std::string& repo, const std::string& file) const {
  const fs::path dir = repo_dir(repo);
  const fs::path snapshots = dir / "snapshots";
  std::error_code ec;
  std::set<fs::path> blobs;
  int removed = 0;
  std::vector<fs::path> commit_dirs;
  for (const auto& commit_dir : fs::directory_iterator(snapshots, ec)) commit_dirs.push_back(commit_dir.path());
  for (const fs::path& commit_dir : commit_dirs) {
    const fs::path entry = commit_dir / file;
    std::error_code ec2;
    if (!fs::is_symlink(entry, ec2) && !fs::exists(entry, ec2)) continue;
    if (fs::is_symlink(entry, ec2)) {
      fs::path target = fs::read_symlink(entry, ec2);
      if (!ec2) blobs.insert(fs::weakly_canonical(entry.parent_path() / target, ec2));
    }
    if (!fs::remove(entry, ec2) || ec2) return make_error("cannot remove ", entry.string(), ": ", ec2.message());
    ++removed;
    // Drop the folders the file sat in, up to the snapshot, once empty.
    for (fs::path p = entry.parent_path(); p != snapshots; p = p.parent_path()) {
      if (!fs::is_empty(p, ec2) || ec2) break;
      fs::remove(p, ec2);
    }
  }
  // A blob still linked from another snapshot stays.
  std::set<fs::path> still_linked;
  for (auto it = fs::recursive_directory_iterator(snapshots, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code ec2;
    if (fs::is_symlink(it->path(), ec2))
      still_linked.insert(fs::weakly_canonical(it->path().parent_path() / fs::read_symlink(it->path(), ec2), ec2));
  }
  for (const fs::path& blob : blobs) {
    std::error_code ec2;
    if (!still_linked.count(blob)) fs::remove(blob, ec2);
  }
  std::error_code ec2;
  if (fs::is_empty(snapshots, ec2) && !ec2) fs::remove_all(dir, ec2);
  return removed;
}

}  // namespace dhi::hub
