// A fixed pool of worker threads with one primitive: parallel_for over
// [0, n) split into contiguous, equal chunks, one per thread. The split
// depends only on n and the thread count, so any reduction done per chunk and
// combined in chunk order is deterministic for a given --threads.
//
// Hand-off: a training step makes thousands of parallel calls, many of them a
// few microseconds long, and waking a thread blocked on a condition variable
// costs 10-50 us on a small VM. So both sides first spin for a bounded time
// (kSpinMicros) on an atomic: workers waiting for the next job, and the caller
// waiting for the workers to finish. Only then do they block.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ps {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(begin, end, thread_index) for each non-empty chunk; blocks until done.
  // Chunk i is [i*n/T, (i+1)*n/T). Calls from inside a task run serially.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn);

  // fn(task_index, thread_index) for task_index in [0, tasks), tasks handed
  // out dynamically (for uneven work whose result does not depend on which
  // thread ran it, e.g. GEMM tiles that each own their output block).
  void run_tasks(size_t tasks, const std::function<void(size_t, int)>& fn);

 private:
  void worker(int index);
  // Stops and joins the workers started so far (the destructor; a constructor that could not start them all).
  void stop_workers();
  void run_all(const std::function<void(int)>& job);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // bumped (under mu_) once per job
  std::atomic<int> pending_{0};          // workers still running the job
  std::atomic<bool> stop_{false};
  int sleeping_workers_ = 0;   // guarded by mu_
  bool caller_sleeping_ = false;  // guarded by mu_
};

int hardware_threads();

}  // namespace ps
