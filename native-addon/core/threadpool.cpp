#include "threadpool.h"

#include <string>
#include <system_error>

#include "error.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define PS_CPU_RELAX() _mm_pause()
#else
#define PS_CPU_RELAX() std::this_thread::yield()
#endif

namespace ps {

namespace {
thread_local bool t_inside_pool = false;

// How long a waiting side spins before it blocks. Long enough to bridge the
// serial gaps between the parallel calls of a step (tens of microseconds),
// short enough that an idle pool goes to sleep almost at once.
constexpr int kSpinMicros = 100;

// Spins until done() or the spin budget is spent; true when done() held.
// The yield between rounds lets a thread we wait for run first when the pool
// has more threads than free cores.
template <typename Done>
bool spin_until(Done&& done) {
  if (done()) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      PS_CPU_RELAX();
      if (done()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::yield();
  }
}
}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int threads) : n_threads_(threads > 0 ? threads : hardware_threads()) {
  // Thread 0 is the caller; the pool starts n-1 workers. A system that will not
  // start that many (a thread limit, memory for their stacks) is an error that
  // says so, with the workers started so far stopped: never std::terminate.
  try {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
  } catch (const std::system_error& e) {
    const size_t started = workers_.size();
    stop_workers();
    throw Error("cannot start " + std::to_string(n_threads_) + " threads: the system refused thread " +
                std::to_string(started + 2) + " (" + e.what() + "); use fewer threads (this machine has " +
                std::to_string(hardware_threads()) + ")");
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] {
      return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      ++sleeping_workers_;
      cv_start_.wait(lock, ready);
      --sleeping_workers_;
    }
    if (stop_.load(std::memory_order_acquire)) return;
    // job_ was written before the generation bump that released us.
    seen = generation_.load(std::memory_order_acquire);
    const std::function<void(int)>* job = job_;
    t_inside_pool = true;
    (*job)(index);
    t_inside_pool = false;
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Last one out: wake the caller if it stopped spinning.
      std::lock_guard<std::mutex> lock(mu_);
      if (caller_sleeping_) cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_all(const std::function<void(int)>& job) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    wake = sleeping_workers_ > 0;
  }
  if (wake) cv_start_.notify_all();
  t_inside_pool = true;
  job(0);
  t_inside_pool = false;
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(done)) return;
  std::unique_lock<std::mutex> lock(mu_);
  caller_sleeping_ = true;
  cv_done_.wait(lock, done);
  caller_sleeping_ = false;
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  const int T = n_threads_;
  if (T == 1 || t_inside_pool || n == 1) {
    if (T == 1 || n == 1) {
      fn(0, n, 0);
    } else {
      // Nested call: keep the same chunking so results do not change.
      for (int i = 0; i < T; ++i) {
        size_t b = n * i / T, e = n * (i + 1) / T;
        if (b < e) fn(b, e, i);
      }
    }
    return;
  }
  std::function<void(int)> job = [&](int i) {
    size_t b = n * i / T, e = n * (i + 1) / T;
    if (b < e) fn(b, e, i);
  };
  run_all(job);
}

void ThreadPool::run_tasks(size_t tasks, const std::function<void(size_t, int)>& fn) {
  if (tasks == 0) return;
  if (n_threads_ == 1 || t_inside_pool || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<size_t> next{0};
  std::function<void(int)> job = [&](int i) {
    for (size_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;) fn(t, i);
  };
  run_all(job);
}

}  // namespace ps
