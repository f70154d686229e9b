#pragma once
// A small fixed-size thread pool for the kernels: the calling thread works
// too, tasks are handed out dynamically (an atomic counter), and idle workers
// spin briefly before sleeping so that back-to-back kernel calls do not pay a
// wake-up each. A worker joins a job only while the job is open; once the
// caller has run out of tasks it closes the job and waits only for the
// workers that joined, never for one that is asleep or not yet started (an
// Emscripten pthread starts only when the browser's main thread yields).
// Works natively and under Emscripten with pthreads, where one per core
// means at most IGSCOPE_WASM_MAX_THREADS (the size of the pre-started
// worker pool the wasm programs link with); a wasm build without pthreads
// runs everything on the calling thread.
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
  std::condition_variable done_;  // the caller waits here for the workers that joined
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> finished_{0};  // workers that joined the current job and are done
  int joined_ = 0;                // workers that joined the current job (under mutex_)
  bool open_ = false;             // whether workers may still join (under mutex_)
  bool stop_ = false;
  int64_t count_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::exception_ptr error_;
};

}  // namespace igscope
