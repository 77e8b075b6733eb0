// Download progress on stderr: a bar redrawn in place with size, speed and ETA
// on a terminal; a plain line every few seconds otherwise (logs, CI).
#pragma once

#include <chrono>
#include <string>

#include "hub/hf_download.h"

namespace dhi::cli {

class DownloadProgress {
 public:
  explicit DownloadProgress(bool terminal) : terminal_(terminal) {}
  // Options whose callbacks draw on this object; it must outlive their use.
  hub::PullOptions pull_options();
  void update(const hub::PullProgress& p);
  void note(const std::string& line);
  // Ends the bar; prints a summary when a download completed.
  void finish(bool completed);

 private:
  std::string line(const hub::PullProgress& p, double seconds) const;

  bool terminal_;
  bool started_ = false;
  bool bar_drawn_ = false;
  hub::PullProgress last_;
  std::chrono::steady_clock::time_point t0_;
  std::chrono::steady_clock::time_point last_draw_;
};

std::string human_size(uint64_t bytes);

}  // namespace dhi::cli
