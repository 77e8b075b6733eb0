#include "hub/hf_download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "hub/digest.h"
#include "hub/hf_cache.h"
#include "hub/http.h"

namespace dhi::hub {
namespace fs = std::filesystem;
namespace {

// What the resolve endpoint says about a file.
struct FileMeta {
  std::string commit;
  std::string etag;
  uint64_t size = 0;
};

// Closes the descriptor (and so releases an flock) on every path.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::vector<std::string> auth_headers(const HubConfig& cfg) {
  if (cfg.token.empty()) return {};
  return {"Authorization: Bearer " + cfg.token};
}

std::string human(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  else std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  return buf;
}

// "scheme://host[:port]" of the endpoint, for relative redirects.
std::string origin_of(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t slash = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

// The ETag forms W/"x" and "x" as the bare value.
std::string normalize_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

std::string header(const Headers& h, const char* name) {
  auto it = h.find(name);
  return it == h.end() ? std::string() : it->second;
}

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  out = v;
  return true;
}

// A clear message for a refused request; `what` names the repository or file.
Error http_error(const HubConfig& cfg, const std::string& repo, const std::string& what,
                 const HttpResponse& r) {
  const std::string code = header(r.headers, "x-error-code");
  if (r.status == 401 || r.status == 403) {
    if (cfg.token.empty())
      return make_error(what, ": access denied (HTTP ", r.status, "); the repository may be gated or private: "
                        "accept its terms at ", cfg.endpoint, "/", repo, " and set HF_TOKEN to an access token");
    return make_error(what, ": access denied (HTTP ", r.status, ") with the token in HF_TOKEN; check that it "
                      "is valid and that its account has accepted the terms at ", cfg.endpoint, "/", repo);
  }
  if (r.status == 404) {
    if (code == "RepoNotFound") return make_error(what, ": repository ", repo, " not found at ", cfg.endpoint);
    if (code == "RevisionNotFound") return make_error(what, ": revision not found in ", repo);
    if (code == "EntryNotFound") return make_error(what, ": no such file in ", repo);
    return make_error(what, ": not found (HTTP 404) at ", cfg.endpoint);
  }
  return make_error(what, ": the hub answered HTTP ", r.status);
}

// HEAD on the resolve URL, following only same-site (relative) redirects such
// as a renamed repository; the CDN redirect is where the metadata headers are.
// `reached` tells a refusal by the hub from a network failure.
Expected<FileMeta> head_meta(const HubConfig& cfg, const HfTarget& t, const std::string& what, bool& reached) {
  reached = false;
  HttpRequest req;
  req.url = cfg.endpoint + "/" + t.repo + "/resolve/" + url_encode_path(t.revision) + "/" + url_encode_path(t.file);
  req.headers = auth_headers(cfg);
  // The hub compresses text files; ask for identity so Content-Length is the file's size.
  req.headers.push_back("Accept-Encoding: identity");
  req.follow_redirects = false;
  HttpResponse r;
  for (int hop = 0;; ++hop) {
    auto head = http_head(req);
    if (!head) return make_error("cannot reach the hub: ", head.error().message);
    reached = true;
    r = std::move(head).value();
    const std::string location = header(r.headers, "location");
    if (r.status >= 300 && r.status < 400 && !location.empty() && location[0] == '/' && hop < 5) {
      req.url = origin_of(cfg.endpoint) + location;
      continue;
    }
    break;
  }
  if (r.status >= 400) return http_error(cfg, t.repo, what, r);
  FileMeta m;
  m.commit = header(r.headers, "x-repo-commit");
  m.etag = normalize_etag(header(r.headers, "x-linked-etag"));
  if (m.etag.empty()) m.etag = normalize_etag(header(r.headers, "etag"));
  std::string size = header(r.headers, "x-linked-size");
  if (size.empty()) size = header(r.headers, "content-length");
  if (!is_hex(m.commit, 40))
    return make_error(what, ": the hub's answer (HTTP ", r.status, ") has no commit hash (X-Repo-Commit); is ",
                      cfg.endpoint, " a Hugging Face hub?");
  if (!parse_u64(size, m.size)) return make_error(what, ": the hub's answer has no valid file size");
  DHI_TRY(digest_kind_of(m.etag));
  return m;
}

Status check_free_space(const std::string& dir, uint64_t needed) {
  struct statvfs s {};
  if (statvfs(dir.c_str(), &s) != 0) return make_error("cannot check free space in ", dir, ": ", std::strerror(errno));
  const uint64_t free_bytes = uint64_t(s.f_bavail) * uint64_t(s.f_frsize);
  if (free_bytes < needed)
    return make_error("not enough disk space in ", dir, ": the download needs ", human(needed), ", ",
                      human(free_bytes), " is free (set HF_HOME to a larger disk)");
  return {};
}

Status write_all(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      if (errno == ENOSPC)
        return make_error("the disk is full while writing ", path, "; free space and run again to resume");
      return make_error("cannot write ", path, ": ", std::strerror(errno));
    }
    data += w;
    n -= size_t(w);
  }
  return {};
}

// Downloads the blob into `partial`, resuming from what is there; on success the
// partial file holds exactly meta.size bytes whose hash is meta.etag.
Status download_blob(const HubConfig& cfg, const HfTarget& t, const FileMeta& meta, const std::string& partial,
                     const PullOptions& opts, const std::string& what) {
  Fd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.fd < 0) return make_error("cannot open ", partial, ": ", std::strerror(errno));
  uint64_t offset = uint64_t(::lseek(fd.fd, 0, SEEK_END));
  if (offset > meta.size) {
    offset = 0;  // not a prefix of this file
    if (::ftruncate(fd.fd, 0) != 0) return make_error("cannot truncate ", partial, ": ", std::strerror(errno));
  }
  DHI_TRY(check_free_space(fs::path(partial).parent_path().string(), meta.size - offset));

  const DigestKind kind = digest_kind_of(meta.etag).value();
  auto digest = std::make_unique<Digest>(kind, meta.size);
  // The bytes of an earlier run are hashed again, so a resumed file is verified whole.
  if (offset > 0) {
    if (opts.on_note) opts.on_note("resuming " + t.file + " at " + human(offset) + " of " + human(meta.size));
    std::vector<char> buf(1 << 20);
    ::lseek(fd.fd, 0, SEEK_SET);
    uint64_t left = offset;
    while (left > 0) {
      ssize_t r = ::read(fd.fd, buf.data(), size_t(std::min<uint64_t>(left, buf.size())));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return make_error("cannot read ", partial, ": ", r < 0 ? std::strerror(errno) : "short file");
      digest->update(buf.data(), size_t(r));
      left -= uint64_t(r);
    }
  }
  const uint64_t resumed_from = offset;

  HttpRequest req;
  req.url = cfg.endpoint + "/" + t.repo + "/resolve/" + meta.commit + "/" + url_encode_path(t.file);
  req.headers = auth_headers(cfg);
  req.headers.push_back("Accept-Encoding: identity");
  std::string last_error;
  for (int attempt = 1; offset < meta.size; ++attempt) {
    if (opts.cancel && opts.cancel->load()) return make_error(what, ": interrupted; run again to resume");
    if (attempt > opts.max_attempts)
      return make_error(what, ": download failed after ", opts.max_attempts, " attempts (", last_error,
                        "); ", human(offset), " of ", human(meta.size), " kept, run again to resume");
    if (attempt > 1) {
      if (opts.on_note) opts.on_note(last_error + "; resuming at " + human(offset));
      std::this_thread::sleep_for(std::chrono::milliseconds(300 * (attempt - 1)));
    }
    if (::lseek(fd.fd, off_t(offset), SEEK_SET) < 0 || ::ftruncate(fd.fd, off_t(offset)) != 0)
      return make_error("cannot seek in ", partial, ": ", std::strerror(errno));
    req.range = offset > 0 ? std::to_string(offset) + "-" : "";

    Status failure;  // why a handler stopped the transfer
    StreamHandlers h;
    h.on_start = [&](long status, const Headers& headers) {
      if (status == 200 && offset > 0) {
        // The server ignored the Range: start over.
        offset = 0;
        digest = std::make_unique<Digest>(kind, meta.size);
        if (::lseek(fd.fd, 0, SEEK_SET) < 0 || ::ftruncate(fd.fd, 0) != 0) {
          failure = make_error("cannot truncate ", partial, ": ", std::strerror(errno));
          return false;
        }
        return true;
      }
      if (status == 206) {
        const std::string cr = header(headers, "content-range");
        if (cr.rfind("bytes " + std::to_string(offset) + "-", 0) != 0) {
          failure = make_error(what, ": the server answered the range request from byte ", offset,
                               " with Content-Range '", cr, "'");
          return false;
        }
        return true;
      }
      if (status == 200) return true;
      HttpResponse r;
      r.status = status;
      r.headers = headers;
      failure = http_error(cfg, t.repo, what, r);
      return false;
    };
    h.on_data = [&](const char* data, size_t n) {
      if (offset + n > meta.size) {
        failure = make_error(what, ": the server sent more than the ", meta.size, " bytes it announced");
        return false;
      }
      if (Status s = write_all(fd.fd, data, n, partial); !s) {
        failure = s;
        return false;
      }
      digest->update(data, n);
      offset += n;
      if (opts.on_progress) opts.on_progress({offset, meta.size, resumed_from});
      return !(opts.cancel && opts.cancel->load());
    };
    auto r = http_get_stream(req, h);
    if (!failure) return failure.error();
    if (!r) {
      last_error = r.error().message;
      continue;
    }
    if (r->aborted) continue;  // cancelled: reported at the top of the loop
    if (r->status == 416 && offset == meta.size) break;
    if (r->status >= 400) {
      if (r->status >= 500 || r->status == 429) {
        last_error = "HTTP " + std::to_string(r->status);
        continue;
      }
      return http_error(cfg, t.repo, what, *r);
    }
    if (offset < meta.size) last_error = "the connection closed early";
  }
  if (::fsync(fd.fd) != 0) return make_error("cannot write ", partial, ": ", std::strerror(errno));
  const std::string got = digest->hex();
  if (got != meta.etag) {
    std::error_code ec;
    fs::remove(partial, ec);
    return make_error(what, ": checksum mismatch (expected ", kind == DigestKind::Sha256 ? "sha256 " : "git sha1 ",
                      meta.etag, ", got ", got, "); the download was discarded, nothing was stored");
  }
  return {};
}

}  // namespace

Expected<FetchedFile> hf_fetch(const HubConfig& cfg, const HfTarget& t, const PullOptions& opts) {
  const std::string what = t.repo + "/" + t.file;
  if (!valid_repo_id(t.repo)) return make_error("invalid repository name '", t.repo, "'");
  if (!valid_repo_path(t.file)) return make_error("invalid file name '", t.file, "'");
  const HfCache cache(cfg.cache_dir);
  auto cached = [&]() -> std::optional<FetchedFile> {
    auto path = cache.find(t.repo, t.revision, t.file);
    if (!path) return std::nullopt;
    FetchedFile f;
    f.path = *path;
    f.commit = cache.commit_of(t.repo, t.revision).value_or("");
    std::error_code ec;
    f.size = fs::file_size(*path, ec);
    return f;
  };
  if (cfg.offline) {
    if (auto f = cached()) return *f;
    return make_error(what, " is not in the cache (", cfg.cache_dir, ") and offline mode forbids downloading it");
  }

  bool reached = false;
  auto meta = head_meta(cfg, t, what, reached);
  if (!meta) {
    // No network: a cached copy is still good (huggingface_hub does the same).
    if (auto f = cached(); f && !reached) {
      if (opts.on_note) opts.on_note("cannot reach " + cfg.endpoint + " (" + meta.error().message + "); using the cached copy");
      return *f;
    }
    return make_error(meta.error().message);
  }

  FetchedFile out;
  out.commit = meta->commit;
  out.size = meta->size;
  out.path = cache.snapshot_path(t.repo, meta->commit, t.file);
  const std::string blob = cache.blob_path(t.repo, meta->etag);
  std::error_code ec;
  auto blob_complete = [&] { return fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == meta->size; };
  if (!blob_complete()) {
    fs::create_directories(fs::path(blob).parent_path(), ec);
    if (ec) return make_error("cannot create ", fs::path(blob).parent_path().string(), ": ", ec.message());
    const std::string lock = cache.lock_path(t.repo, meta->etag);
    fs::create_directories(fs::path(lock).parent_path(), ec);
    Fd lock_fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (lock_fd.fd < 0) return make_error("cannot create the lock file ", lock, ": ", std::strerror(errno));
    if (::flock(lock_fd.fd, LOCK_EX | LOCK_NB) != 0) {
      if (opts.on_note) opts.on_note("waiting for another download of " + what);
      if (::flock(lock_fd.fd, LOCK_EX) != 0) return make_error("cannot lock ", lock, ": ", std::strerror(errno));
    }
    if (!blob_complete()) {  // the other download may have finished it
      const std::string partial = blob + ".incomplete";
      DHI_TRY(download_blob(cfg, t, *meta, partial, opts, what));
      fs::rename(partial, blob, ec);
      if (ec) return make_error("cannot move ", partial, " to ", blob, ": ", ec.message());
      out.downloaded = true;
    }
  }
  DHI_TRY(cache.link(t.repo, meta->commit, t.file, meta->etag));
  DHI_TRY(cache.write_ref(t.repo, t.revision, meta->commit));
  return out;
}

Expected<std::vector<std::string>> hf_list_files(const HubConfig& cfg, const std::string& repo,
                                                 const std::string& revision) {
  if (!valid_repo_id(repo)) return make_error("invalid repository name '", repo, "'");
  if (cfg.offline) {
    std::vector<std::string> files = HfCache(cfg.cache_dir).snapshot_files(repo, revision);
    if (files.empty())
      return make_error(repo, " has no cached snapshot (", cfg.cache_dir, ") and offline mode forbids listing it");
    return files;
  }
  std::vector<std::string> files;
  HttpRequest req;
  req.url = cfg.endpoint + "/api/models/" + repo + "/tree/" + url_encode_path(revision) + "?recursive=true";
  req.headers = auth_headers(cfg);
  // The listing is paginated with Link: <url>; rel="next".
  for (int page = 0; page < 100 && !req.url.empty(); ++page) {
    DHI_ASSIGN_OR_RETURN(HttpResponse r, http_get_text(req, 16u << 20));
    if (r.status >= 400) return http_error(cfg, repo, repo, r);
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array())
      return make_error(repo, ": the hub's file list is not a JSON array (HTTP ", r.status, ")");
    for (const auto& e : j) {
      if (!e.is_object()) continue;
      auto type = e.find("type");
      auto path = e.find("path");
      if (type != e.end() && type->is_string() && *type == "file" && path != e.end() && path->is_string())
        files.push_back(path->get<std::string>());
    }
    req.url.clear();
    const std::string link = header(r.headers, "link");
    if (link.find("rel=\"next\"") != std::string::npos) {
      const size_t open = link.find('<'), close = link.find('>');
      if (open != std::string::npos && close != std::string::npos && close > open) {
        std::string next = link.substr(open + 1, close - open - 1);
        req.url = next[0] == '/' ? origin_of(cfg.endpoint) + next : next;
      }
    }
  }
  return files;
}

}  // namespace dhi::hub
