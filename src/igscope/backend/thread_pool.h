#pragma once
// A small fixed-size thread pool for the kernels: the calling thread works
// too, tasks are handed out dynamically (an atomic counter), and idle workers
// spin briefly before sleeping so that back-to-back kernel calls do not pay a
// wake-up each. Works natively and under Emscripten with pthreads; a wasm
// build without pthreads runs everything on the calling thread.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace igscope {

class ThreadPool {
 public:
  // threads: the total number of threads including the caller; 0 means one
  // per core. Throws igscope::Error when negative.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(i) once for every i in [0, count) on the pool's threads and
  // returns when all calls have returned; the first exception thrown by fn
  // is rethrown here. Not reentrant: fn must not call parallel_for.
  void parallel_for(int64_t count, const std::function<void(int64_t)>& fn);

  static int hardware_threads();

 private:
  void worker_loop();
  void run_tasks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;  // workers wait here for a new job
  std::condition_variable done_;  // the caller waits here for the workers
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};  // workers still in the current job
  bool stop_ = false;
  int64_t count_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::exception_ptr error_;
};

}  // namespace igscope
