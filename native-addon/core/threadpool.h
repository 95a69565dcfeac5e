// A fixed pool of worker threads with two primitives, parallel_for and
// run_tasks.
//
// parallel_for splits [0, n) into T contiguous, equal chunks (T = the pool's
// size); chunk i is [i*n/T, (i+1)*n/T) and fn gets i. The split depends only
// on n and T, so a reduction done per chunk and combined in chunk order is
// deterministic for a given --threads, whichever thread runs which chunk.
//
// Who runs a chunk is decided at run time: the caller and the workers claim
// chunks (or tasks) from a shared counter, and a worker joins a job only while
// it is open. When every chunk is claimed the caller closes the job and waits
// only for the workers that joined it. So a worker the OS has descheduled
// (other programs busy on every core) delays nothing: the caller runs its
// chunk. With a fixed chunk per thread, every one of a step's thousands of
// parallel calls waited for such a worker: 200 demo steps beside two busy
// processes took 7x as long with 2 threads as with 1.
//
// Hand-off: a training step makes thousands of parallel calls, many of them a
// few microseconds long, and waking a thread blocked on a condition variable
// costs 10-50 us on a small VM. So both sides first spin for a bounded time
// (kSpinMicros) on an atomic: workers waiting for the next job, and the caller
// waiting for the workers that joined to finish. Only then do they block.
//
// An exception thrown by fn on any thread ends the job (chunks not yet
// claimed are skipped) and is rethrown to the caller once every thread has
// left the job; the pool stays usable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
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

  // fn(begin, end, chunk) for each non-empty chunk; blocks until done.
  // Chunk i is [i*n/T, (i+1)*n/T). No two calls at once get the same chunk, so
  // fn may use per-chunk scratch indexed by it. Calls from inside a task run
  // serially, in chunk order.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn);

  // fn(task_index, thread_index) for task_index in [0, tasks), tasks handed
  // out dynamically (for uneven work whose result does not depend on which
  // thread ran it, e.g. GEMM tiles that each own their output block).
  // thread_index is in [0, size()) and is never held by two tasks at once, so
  // fn may use per-thread scratch indexed by it.
  void run_tasks(size_t tasks, const std::function<void(size_t, int)>& fn);

 private:
  void worker(int index);
  // Stops and joins the workers started so far (the destructor; a constructor that could not start them all).
  void stop_workers();
  // Runs job(thread_index) on the caller and on every worker that joins while
  // the job is open; job must return once there is nothing left to claim.
  void run_job(const std::function<void(int)>& job);
  // job(index) with any exception kept for the caller (the first one wins).
  void run_guarded(const std::function<void(int)>& job, int index);
  void record_failure();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;  // written by the caller before it opens a job
  // One word so that opening, joining and closing a job are single atomic
  // steps: the job's generation (high 32 bits), whether it is open (bit 31)
  // and how many workers are inside it (the low bits).
  std::atomic<uint64_t> state_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};  // a thread of the current job threw: claim no more
  std::exception_ptr failure_;       // guarded by mu_
  int sleeping_workers_ = 0;         // guarded by mu_
  bool caller_sleeping_ = false;     // guarded by mu_
};

int hardware_threads();

}  // namespace ps
