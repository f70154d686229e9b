#include "igscope/backend/thread_pool.h"

#include <algorithm>

#include "igscope/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace igscope {

namespace {

// Polls before a worker (or the caller) goes to sleep: about 50 microseconds
// on a 2-3 GHz x86 core, enough to bridge the gap between two kernel calls.
// WebAssembly has no pause instruction, so an iteration there is a bare
// atomic load, and waking a sleeping worker (Atomics.wait / notify) costs
// more: 200,000 polls made the 2-thread IG of the wasm benchmark 3% faster
// than 4,000 (interleaved runs under node, medians 17.8 against 18.3 ms).
#ifdef __EMSCRIPTEN__
constexpr int kSpinIterations = 200000;
#else
constexpr int kSpinIterations = 4000;
#endif

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

constexpr bool kThreadsAvailable =
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
    false;
#else
    true;
#endif

#if defined(__EMSCRIPTEN__) && !defined(IGSCOPE_WASM_MAX_THREADS)
#define IGSCOPE_WASM_MAX_THREADS 4
#endif

}  // namespace

int ThreadPool::hardware_threads() {
  if (!kThreadsAvailable) return 1;
  const unsigned n = std::thread::hardware_concurrency();
  int threads = n == 0 ? 1 : static_cast<int>(n);
#ifdef __EMSCRIPTEN__
  threads = std::min(threads, IGSCOPE_WASM_MAX_THREADS);
#endif
  return threads;
}

ThreadPool::ThreadPool(int threads) {
  if (threads < 0) throw Error("thread count must be >= 0 (0: one per core), got " + std::to_string(threads));
  if (threads == 0) threads = hardware_threads();
  if (!kThreadsAvailable) threads = 1;
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks() {
  for (;;) {
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return;
    try {
      (*fn_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      next_.store(count_, std::memory_order_relaxed);  // skip the remaining tasks
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    // Wait for a new generation: spin first, then sleep.
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      if (!open_) continue;  // the caller finished this job without us
      ++joined_;
    }
    run_tasks();
    finished_.fetch_add(1, std::memory_order_acq_rel);
    std::lock_guard<std::mutex> lock(mutex_);
    done_.notify_one();
  }
}

void ThreadPool::parallel_for(int64_t count, const std::function<void(int64_t)>& fn) {
  if (count <= 0) return;
  if (workers_.empty() || count == 1) {
    for (int64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    count_ = count;
    error_ = nullptr;
    next_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    joined_ = 0;
    open_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks();
  int joined = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;  // from here on, no worker joins this job
    joined = joined_;
  }
  // Wait for the workers that joined: spin first, then sleep.
  for (int spin = 0; finished_.load(std::memory_order_acquire) != joined && spin < kSpinIterations; ++spin)
    cpu_relax();
  if (finished_.load(std::memory_order_acquire) != joined) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return finished_.load(std::memory_order_acquire) == joined; });
  }
  fn_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

}  // namespace igscope
