// Streaming-read bandwidth measurement (see bandwidth.h).
#include "engine/bandwidth.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "core/mapped_file.h"
#include "core/thread_pool.h"

namespace dhi::engine {
namespace {

// Sums n 64-byte lines. Eight independent accumulators, one per 8-byte word of
// a cache line, keep the loop bound by loads (the compiler vectorizes it) rather
// than by a dependency chain of adds.
uint64_t sum_lines(const uint64_t* p, uint64_t n_lines) {
  uint64_t a[8] = {};
  for (uint64_t i = 0; i < n_lines; ++i, p += 8) {
    for (int k = 0; k < 8; ++k) a[k] += p[k];
  }
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

// Median, min and max of the passes (at least one).
void summarize_passes(BandwidthResult& r) {
  std::vector<double> v = r.pass_gbs;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  r.median_gbs = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  r.min_gbs = v.front();
  r.max_gbs = v.back();
}

// What the child writes to the parent: a fixed header, then the passes' GB/s
// (ok) or the error message (not ok).
struct ChildReport {
  int32_t ok = 0;
  int32_t n_threads = 0;
  uint64_t buffer_bytes = 0;
  uint64_t n_payload = 0;  // passes (doubles) or message bytes
};

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    out.append(buf, size_t(r));
  }
  return out;
}

[[noreturn]] void child_measure(int fd, const BandwidthParams& params) {
  const Expected<BandwidthResult> r = measure_read_bandwidth(params);
  ChildReport h;
  bool sent = false;
  if (r.ok()) {
    h.ok = 1;
    h.n_threads = r->n_threads;
    h.buffer_bytes = r->buffer_bytes;
    h.n_payload = r->pass_gbs.size();
    sent = write_all(fd, &h, sizeof h) && write_all(fd, r->pass_gbs.data(), r->pass_gbs.size() * sizeof(double));
  } else {
    const std::string& m = r.error().message;
    h.n_payload = m.size();
    sent = write_all(fd, &h, sizeof h) && write_all(fd, m.data(), m.size());
  }
  // _exit: the parent's atexit handlers and buffered streams are not the child's to run.
  ::_exit(sent ? 0 : 1);
}

}  // namespace

Expected<BandwidthResult> measure_read_bandwidth_in_child(const BandwidthParams& params) {
  int fds[2];
  if (::pipe(fds) != 0) return make_error("bandwidth: pipe: ", std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return make_error("bandwidth: fork: ", std::strerror(e));
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_measure(fds[1], params);
  }
  ::close(fds[1]);
  const std::string report = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ChildReport h;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || report.size() < sizeof h)
    return make_error("bandwidth: the measuring child process failed (status ", status, ")");
  std::memcpy(&h, report.data(), sizeof h);
  const size_t payload = report.size() - sizeof h;
  if (!h.ok) return make_error(report.substr(sizeof h, std::min<size_t>(payload, h.n_payload)));
  if (h.n_payload == 0 || h.n_payload > 1000 || payload != h.n_payload * sizeof(double))
    return make_error("bandwidth: malformed report from the measuring child process");
  BandwidthResult r;
  r.n_threads = h.n_threads;
  r.buffer_bytes = h.buffer_bytes;
  r.pass_gbs.resize(size_t(h.n_payload));
  std::memcpy(r.pass_gbs.data(), report.data() + sizeof h, payload);
  summarize_passes(r);
  return r;
}

Expected<BandwidthResult> measure_read_bandwidth(const BandwidthParams& params) {
  if (params.passes < 1 || params.passes > 1000)
    return make_error("bandwidth: passes must be in [1, 1000], got ", params.passes);
  if (params.buffer_bytes < (uint64_t(1) << 20) || params.buffer_bytes > (uint64_t(1) << 40))
    return make_error("bandwidth: buffer must be between 1 MiB and 1 TiB, got ", params.buffer_bytes, " bytes");
  if (params.n_threads < 0) return make_error("bandwidth: threads must be >= 0, got ", params.n_threads);

  constexpr uint64_t kLine = 64;
  const uint64_t n_lines = params.buffer_bytes / kLine;
  // On 2 MB-aligned memory with huge pages, as the loader gives the weights
  // the decode kernels stream: on 4 KB pages a core reads about a third
  // slower, and the ceiling would be understated.
  constexpr size_t kHugePage = size_t(2) << 20;
  struct HugeFree {
    void operator()(uint64_t* p) const { ::operator delete[](p, std::align_val_t(kHugePage)); }
  };
  std::unique_ptr<uint64_t, HugeFree> buf(
      static_cast<uint64_t*>(::operator new[](size_t(n_lines * kLine), std::align_val_t(kHugePage), std::nothrow)));
  if (!buf) return make_error("bandwidth: cannot allocate ", params.buffer_bytes, " bytes");
  advise_huge_pages(buf.get(), size_t(n_lines * kLine));

  ThreadPool pool(params.n_threads);
  const int64_t n_threads = pool.n_threads();
  // One contiguous slice per thread: each streams its own pages, as a matmul
  // over disjoint row ranges does. Writing the buffer from the same threads
  // also places its pages near them on NUMA machines.
  const uint64_t per_thread = (n_lines + uint64_t(n_threads) - 1) / uint64_t(n_threads);
  const auto slice = [&](int64_t t, uint64_t& begin, uint64_t& end) {
    begin = std::min(n_lines, uint64_t(t) * per_thread);
    end = std::min(n_lines, begin + per_thread);
  };
  pool.parallel_for(n_threads, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      uint64_t lo, hi;
      slice(t, lo, hi);
      for (uint64_t i = lo * 8; i < hi * 8; ++i) buf.get()[i] = i * 0x9E3779B97F4A7C15ull;
    }
  });

  BandwidthResult r;
  r.n_threads = int32_t(n_threads);
  r.buffer_bytes = n_lines * kLine;
  std::vector<uint64_t> sink(size_t(n_threads), 0);
  for (int32_t pass = 0; pass < params.passes; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n_threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        uint64_t lo, hi;
        slice(t, lo, hi);
        sink[size_t(t)] += sum_lines(buf.get() + lo * 8, hi - lo);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.pass_gbs.push_back(s > 0 ? double(r.buffer_bytes) / s / 1e9 : 0.0);
  }
  // The sums must be observable, or the reads could be optimized away.
  uint64_t total = 0;
  for (uint64_t v : sink) total ^= v;
  asm volatile("" : : "r"(total) : "memory");

  summarize_passes(r);
  return r;
}

}  // namespace dhi::engine
