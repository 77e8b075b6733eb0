// One persistent pool of worker threads for all CPU work. Threads are created
// once; each parallel region hands out chunks of an index range through an
// atomic counter, so no thread is created per operation and a slow core does
// not hold the others back. Between regions threads spin briefly before they
// sleep, so back-to-back regions start without a futex wake.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dhi {

class ThreadPool {
 public:
  // n_threads includes the calling thread; 0 means hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return int(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of at most `grain`, spread over
  // all threads; returns when every chunk has run. Not reentrant.
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  std::atomic<uint64_t> generation_{0};  // bumped once per parallel region
  std::atomic<int> active_{0};           // workers still inside the current region
  std::atomic<bool> stop_{false};

  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  alignas(64) std::atomic<int64_t> next_{0};
};

}  // namespace dhi
