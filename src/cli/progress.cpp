#include "cli/progress.h"

#include <cstdio>

namespace dhi::cli {
namespace {

constexpr double kTerminalRedrawSeconds = 0.1;
constexpr double kPlainLineSeconds = 5.0;

std::string duration(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

}  // namespace

std::string human_size(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

hub::PullOptions DownloadProgress::pull_options() {
  hub::PullOptions o;
  o.on_progress = [this](const hub::PullProgress& p) { update(p); };
  o.on_note = [this](const std::string& s) { note(s); };
  return o;
}

std::string DownloadProgress::line(const hub::PullProgress& p, double seconds) const {
  const double rate = seconds > 0 ? double(p.done - p.resumed_from) / seconds : 0;
  const double eta = rate > 0 ? double(p.total - p.done) / rate : -1;
  const int percent = p.total ? int(100.0 * double(p.done) / double(p.total)) : 100;
  std::string s;
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = p.total ? int(double(kWidth) * double(p.done) / double(p.total)) : kWidth;
    s.assign(1, '[');
    s.append(size_t(filled), '#');
    s.append(size_t(kWidth - filled), '.');
    s += "] ";
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%3d%% %s / %s, %s/s, ETA %s", percent, human_size(p.done).c_str(),
                human_size(p.total).c_str(), human_size(uint64_t(rate)).c_str(), duration(eta).c_str());
  return s + buf;
}

void DownloadProgress::update(const hub::PullProgress& p) {
  const auto now = std::chrono::steady_clock::now();
  if (!started_) {
    started_ = true;
    t0_ = last_draw_ = now;
  }
  last_ = p;
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  if (since_draw < (terminal_ ? kTerminalRedrawSeconds : kPlainLineSeconds) && p.done < p.total) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - t0_).count();
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K", line(p, seconds).c_str());
    bar_drawn_ = true;
  } else if (p.done < p.total) {
    std::fprintf(stderr, "%s\n", line(p, seconds).c_str());
  }
  std::fflush(stderr);
}

void DownloadProgress::note(const std::string& s) {
  if (bar_drawn_) std::fputc('\n', stderr);
  bar_drawn_ = false;
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

void DownloadProgress::finish(bool completed) {
  if (bar_drawn_) std::fputc('\n', stderr);
  bar_drawn_ = false;
  if (!started_ || !completed) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const uint64_t got = last_.done - last_.resumed_from;
  std::fprintf(stderr, "downloaded %s of %s in %.1f s (%s/s)\n", human_size(got).c_str(),
               human_size(last_.total).c_str(), seconds,
               human_size(seconds > 0 ? uint64_t(double(got) / seconds) : got).c_str());
  std::fflush(stderr);
  started_ = false;
}

}  // namespace dhi::cli
