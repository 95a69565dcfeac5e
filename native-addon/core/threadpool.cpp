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

// A joined worker that keeps the caller waiting this long after its own share
// (and longer than that share took) was kept off the CPU by another program.
constexpr auto kLateWait = std::chrono::microseconds(300);
// How long one worker fewer may join before the pool tries one more again.
constexpr auto kProbeAfter = std::chrono::milliseconds(20);

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

ThreadPool::ThreadPool(int threads)
    : n_threads_(threads > 0 ? threads : hardware_threads()), joiners_allowed_(n_threads_ - 1) {
  // Thread 0 is the caller; the pool starts n-1 workers. A system that will not
  // start that many (a thread limit, memory for their stacks) is an error that
  // says so, with the workers started so far stopped: never std::terminate.
  sleepers_.reset(new Sleeper[n_threads_]);
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

namespace {
constexpr uint64_t kOpen = uint64_t{1} << 31;
constexpr uint64_t kInsideMask = kOpen - 1;
uint32_t generation_of(uint64_t state) { return static_cast<uint32_t>(state >> 32); }
uint64_t inside_of(uint64_t state) { return state & kInsideMask; }
}  // namespace

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    for (int i = 1; i < n_threads_; ++i) {
      sleepers_[i].waiting = false;
      sleepers_[i].cv.notify_one();
    }
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::record_failure() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_) failure_ = std::current_exception();
  failed_.store(true, std::memory_order_relaxed);
}

void ThreadPool::run_guarded(const std::function<void(int)>& job, int index) {
  t_inside_pool = true;
  try {
    job(index);
  } catch (...) {
    record_failure();
  }
  t_inside_pool = false;
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  // Refused by the limit on joiners: sleep until the caller wakes this worker
  // for a job it may join, instead of spinning on every job it may not (the
  // CPUs are scarce then: other programs want them, and so does the caller).
  bool refused = false;
  for (;;) {
    auto ready = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_of(state_.load(std::memory_order_acquire)) != seen;
    };
    if (refused) {
      std::unique_lock<std::mutex> lock(mu_);
      Sleeper& me = sleepers_[index];
      me.waiting = true;
      while (me.waiting && !stop_.load(std::memory_order_acquire)) me.cv.wait(lock);
      me.waiting = false;
    } else if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      Sleeper& me = sleepers_[index];
      while (!ready()) {
        me.waiting = true;
        me.cv.wait(lock);
      }
      me.waiting = false;
    }
    if (stop_.load(std::memory_order_acquire)) return;
    // Join the newest job if it is still open. A worker woken late finds it
    // closed (the caller and the others did the work) and goes back to waiting.
    uint64_t s = state_.load(std::memory_order_acquire);
    seen = generation_of(s);
    bool joined = false;
    refused = false;
    while (s & kOpen) {
      if (inside_of(s) >= static_cast<uint64_t>(joiners_allowed_.load(std::memory_order_relaxed))) {
        refused = true;
        break;
      }
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
      if (generation_of(s) != seen) break;  // a newer job: the next round takes it
    }
    if (!joined) continue;
    // Joined: job_ is the job of generation `seen` and stays alive until this
    // worker leaves, since the caller waits for every worker inside.
    run_guarded(*job_, index);
    const uint64_t left = state_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (inside_of(left) == 0 && !(left & kOpen)) {
      // Last one out of a closed job: wake the caller if it stopped spinning.
      std::lock_guard<std::mutex> lock(mu_);
      if (caller_sleeping_) cv_done_.notify_one();
    }
  }
}

void ThreadPool::adapt_joiners(bool equal_shares, Clock::time_point opened, Clock::time_point own_done,
                               Clock::time_point all_done) {
  const auto own = own_done - opened, waited = all_done - own_done;
  const int allowed = joiners_allowed_.load(std::memory_order_relaxed);
  if (equal_shares && waited > kLateWait && waited > own) {
    // A joined worker made the caller wait longer than the caller's own
    // share took, though every chunk is the same size: it was kept off the
    // CPU. One worker fewer for a while (the bits do not change: who runs a
    // chunk never does). Tasks of run_tasks differ in size, so their waits
    // say nothing of this.
    if (allowed > 0) joiners_allowed_.store(allowed - 1, std::memory_order_relaxed);
    limit_changed_ = all_done;
  } else if (allowed < n_threads_ - 1 && all_done - limit_changed_ > kProbeAfter) {
    joiners_allowed_.store(allowed + 1, std::memory_order_relaxed);
    limit_changed_ = all_done;
  }
}

void ThreadPool::run_job(const std::function<void(int)>& job, bool equal_shares) {
  const auto opened = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    failed_.store(false, std::memory_order_relaxed);
    // No worker is inside (the last job waited for them all): open the next generation.
    const uint32_t next = generation_of(state_.load(std::memory_order_relaxed)) + 1;
    state_.store((static_cast<uint64_t>(next) << 32) | kOpen, std::memory_order_release);
    // Wake as many sleeping workers as may join, each once and on its own
    // condition variable: glibc's broadcast waits for every waiter it woke
    // earlier to have run (its group switch), so a shared notify_all would
    // make the caller wait for a worker another program keeps off the CPU.
    int to_wake = joiners_allowed_.load(std::memory_order_relaxed);
    for (int i = 1; i < n_threads_ && to_wake > 0; ++i) {
      if (!sleepers_[i].waiting) continue;
      sleepers_[i].waiting = false;
      sleepers_[i].cv.notify_one();
      --to_wake;
    }
  }
  run_guarded(job, 0);
  const auto own_done = Clock::now();
  // Nothing is left to claim: close the job so that no worker joins it now,
  // then wait for the ones inside.
  state_.fetch_and(~kOpen, std::memory_order_acq_rel);
  auto done = [&] { return inside_of(state_.load(std::memory_order_acquire)) == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_sleeping_ = true;
    cv_done_.wait(lock, done);
    caller_sleeping_ = false;
  }
  adapt_joiners(equal_shares, opened, own_done, Clock::now());
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(failure, failure_);
  }
  if (failure) std::rethrow_exception(failure);
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  const int T = n_threads_;
  if (T == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  if (t_inside_pool) {
    // Nested call: keep the same chunking so results do not change.
    for (int i = 0; i < T; ++i) {
      size_t b = n * i / T, e = n * (i + 1) / T;
      if (b < e) fn(b, e, i);
    }
    return;
  }
  std::atomic<int> next{0};
  std::function<void(int)> job = [&](int) {
    for (int i; !failed_.load(std::memory_order_relaxed) && (i = next.fetch_add(1, std::memory_order_relaxed)) < T;) {
      size_t b = n * i / T, e = n * (i + 1) / T;
      if (b < e) fn(b, e, i);
    }
  };
  run_job(job, /*equal_shares=*/true);
}

void ThreadPool::run_tasks(size_t tasks, const std::function<void(size_t, int)>& fn) {
  if (tasks == 0) return;
  if (n_threads_ == 1 || t_inside_pool || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<size_t> next{0};
  std::function<void(int)> job = [&](int i) {
    for (size_t t; !failed_.load(std::memory_order_relaxed) && (t = next.fetch_add(1, std::memory_order_relaxed)) < tasks;)
      fn(t, i);
  };
  run_job(job, /*equal_shares=*/false);
}

}  // namespace ps
