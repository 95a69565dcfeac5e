#include "threadpool.h"

#include <atomic>

namespace ps {

namespace {
thread_local bool t_inside_pool = false;
}

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int threads) : n_threads_(threads > 0 ? threads : hardware_threads()) {
  // Thread 0 is the caller; the pool starts n-1 workers.
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  size_t seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    t_inside_pool = true;
    (*job)(index);
    t_inside_pool = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }
}

static void run_all(ThreadPool* pool, int n_threads, std::mutex& mu, std::condition_variable& start,
                    std::condition_variable& done, const std::function<void(int)>*& job_slot,
                    size_t& generation, int& pending, const std::function<void(int)>& job) {
  (void)pool;
  {
    std::lock_guard<std::mutex> lock(mu);
    job_slot = &job;
    pending = n_threads - 1;
    ++generation;
  }
  start.notify_all();
  t_inside_pool = true;
  job(0);
  t_inside_pool = false;
  std::unique_lock<std::mutex> lock(mu);
  done.wait(lock, [&] { return pending == 0; });
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
  run_all(this, T, mu_, cv_start_, cv_done_, job_, generation_, pending_, job);
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
  run_all(this, n_threads_, mu_, cv_start_, cv_done_, job_, generation_, pending_, job);
}

}  // namespace ps
