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
// processes took 18x as long with 2 threads as with 1.
//
// A worker descheduled after it joined still holds its chunk. When a joined
// worker keeps the caller waiting longer than the caller's own share of equal
// chunks took, one worker fewer may join for a while (kProbeAfter), then one
// more again: beside busy programs the pool shrinks to what the CPUs give it,
// idle it stays whole. Who runs a chunk never changes a bit. A worker the
// limit turned away sleeps until the caller wakes it for a job it may join,
// rather than spinning on every job (CPUs are scarce then).
//
// Workers sleep on a condition variable each, and each is woken once: glibc's
// broadcast waits for every waiter it woke before to have run, so one shared
// notify_all made the caller wait for a worker the OS kept off the CPU.
//
// One caller at a time: the engine calls a pool from its own thread only.
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
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
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
  void run_job(const std::function<void(int)>& job, bool equal_shares);
  // job(index) with any exception kept for the caller (the first one wins).
  void run_guarded(const std::function<void(int)>& job, int index);
  void record_failure();
  using Clock = std::chrono::steady_clock;
  // After each job: fewer workers may join while they keep the caller waiting
  // (descheduled by other programs), one more again after a while.
  void adapt_joiners(bool equal_shares, Clock::time_point opened, Clock::time_point own_done, Clock::time_point all_done);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_done_;  // the caller sleeps on it
  // A worker sleeps on its own condition variable; `waiting` (guarded by mu_)
  // says it is asleep and has not been woken yet, so it is woken once.
  struct Sleeper {
    std::condition_variable cv;
    bool waiting = false;
  };
  std::unique_ptr<Sleeper[]> sleepers_;  // by worker index (0, the caller, unused)
  const std::function<void(int)>* job_ = nullptr;  // written by the caller before it opens a job
  // One word so that opening, joining and closing a job are single atomic
  // steps: the job's generation (high 32 bits), whether it is open (bit 31)
  // and how many workers are inside it (the low bits).
  std::atomic<uint64_t> state_{0};
  std::atomic<int> joiners_allowed_;     // how many workers may be inside a job at once (adapted by the caller)
  Clock::time_point limit_changed_{};  // the caller's: when joiners_allowed_ last changed
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};  // a thread of the current job threw: claim no more
  std::exception_ptr failure_;       // guarded by mu_
  bool caller_sleeping_ = false;     // guarded by mu_
};

int hardware_threads();

}  // namespace ps
