// The thread pool's contract, which every parallel kernel relies on:
// - parallel_for hands out exactly the chunks [i*n/T, (i+1)*n/T), each once,
//   with its index, and no chunk index is held twice at once (kernels keep
//   per-chunk scratch); run_tasks runs every task once, and no thread index is
//   held twice at once (per-thread scratch);
// - when a call returns, no thread is still inside fn (fn's captures live on
//   the caller's stack);
// - a worker that does not run (held here by a signal, as the OS deschedules
//   one when other programs keep every core busy) delays nothing: the caller
//   does its chunks. With a fixed chunk per thread the first call below would
//   wait for the held worker forever; the alarm turns that into a failure.
// - an exception thrown by fn on any thread reaches the caller, and the pool
//   keeps working.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

#include "check.h"
#include "threadpool.h"

namespace {

void check_parallel_for_chunks(ps::ThreadPool& pool) {
  const int T = pool.size();
  for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}, size_t{16}, size_t{33}, size_t{1000}}) {
    std::mutex mu;
    std::vector<std::tuple<size_t, size_t, int>> calls;
    std::vector<std::atomic<int>> holding(T);
    std::atomic<bool> shared{false};
    pool.parallel_for(n, [&](size_t b, size_t e, int chunk) {
      if (chunk < 0 || chunk >= T || holding[chunk].fetch_add(1) != 0) shared = true;
      {
        std::lock_guard<std::mutex> lock(mu);
        calls.emplace_back(b, e, chunk);
      }
      std::this_thread::yield();
      if (chunk >= 0 && chunk < T) holding[chunk].fetch_sub(1);
    });
    CHECK(!shared);
    // Expected: every non-empty chunk of the fixed split once (n = 1 is one call, [0, 1), index 0).
    std::set<std::tuple<size_t, size_t, int>> want, got(calls.begin(), calls.end());
    for (int i = 0; i < T; ++i) {
      const size_t b = n * i / T, e = n * (i + 1) / T;
      if (b < e) want.emplace(b, e, i);
    }
    if (n == 1) want = {std::make_tuple(size_t{0}, size_t{1}, 0)};
    CHECK(calls.size() == want.size());
    CHECK(got == want);
  }
}

void check_run_tasks(ps::ThreadPool& pool, size_t tasks) {
  const int T = pool.size();
  std::vector<std::atomic<int>> runs(tasks), holding(T);
  std::atomic<bool> bad_thread{false};
  pool.run_tasks(tasks, [&](size_t t, int thread) {
    if (thread < 0 || thread >= T || holding[thread].fetch_add(1) != 0) {
      bad_thread = true;
      return;
    }
    runs[t].fetch_add(1);
    std::this_thread::yield();
    holding[thread].fetch_sub(1);
  });
  CHECK(!bad_thread);
  int once = 0;
  for (auto& r : runs) once += r.load() == 1;
  CHECK(once == static_cast<int>(tasks));
}

// Many tiny calls: at each return nothing may be inside fn any more.
void check_nothing_left_inside(ps::ThreadPool& pool) {
  std::atomic<int> inside{0};
  int leftovers = 0;
  for (int round = 0; round < 20000; ++round) {
    if (round % 2 == 0) {
      pool.parallel_for(static_cast<size_t>(pool.size()) * 3, [&](size_t, size_t, int) {
        inside.fetch_add(1);
        inside.fetch_sub(1);
      });
    } else {
      pool.run_tasks(5, [&](size_t, int) {
        inside.fetch_add(1);
        inside.fetch_sub(1);
      });
    }
    leftovers += inside.load() != 0;
  }
  CHECK(leftovers == 0);
}

void check_exceptions(ps::ThreadPool& pool) {
  for (int throwing_chunk = 0; throwing_chunk < pool.size(); ++throwing_chunk) {
    std::string what;
    try {
      pool.parallel_for(100, [&](size_t, size_t, int chunk) {
        if (chunk == throwing_chunk) throw std::runtime_error("chunk " + std::to_string(chunk) + " failed");
      });
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK(what == "chunk " + std::to_string(throwing_chunk) + " failed");
  }
  std::string what;
  try {
    pool.run_tasks(200, [&](size_t t, int) {
      if (t == 57) throw std::runtime_error("task 57 failed");
    });
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  CHECK(what == "task 57 failed");
  // Still usable, and a later call does not see the old failure.
  check_run_tasks(pool, 64);
  check_parallel_for_chunks(pool);
}

// Holding a worker: SIGUSR1 sent to it parks it in the handler until released.
sem_t g_release;
std::atomic<int> g_parked{0};
void park(int) {
  g_parked.fetch_add(1);
  while (sem_wait(&g_release) != 0) {
  }
  g_parked.fetch_sub(1);
}

void on_alarm(int) {
  const char msg[] = "FAIL test_threadpool: a call waited for a worker that could not run\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(1);
}

// T = 2: the only worker held. T = 3: one of two held, the other joining
// jobs and going to sleep between them, so the caller wakes it again and
// again while the held one has a wake-up it cannot take (a broadcast to both
// would wait for the held one: glibc's condition variable does).
void check_held_worker_delays_nothing(int T) {
  ps::ThreadPool pool(T);
  // Find the worker's thread: run tasks until one runs on thread index 1.
  std::atomic<bool> seen{false};
  pthread_t worker{};
  for (int round = 0; round < 100000 && !seen.load(); ++round) {
    pool.run_tasks(8, [&](size_t, int thread) {
      if (thread == 1 && !seen.exchange(true)) worker = pthread_self();
      std::this_thread::yield();
    });
  }
  CHECK(seen.load());
  if (!seen.load()) return;
  sem_init(&g_release, 0, 0);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = park;
  sigaction(SIGUSR1, &sa, nullptr);
  // Let the worker finish spinning and go to sleep (it holds no lock there), then park it.
  usleep(50000);
  pthread_kill(worker, SIGUSR1);
  while (g_parked.load() == 0) usleep(1000);

  signal(SIGALRM, on_alarm);
  alarm(60);
  for (int round = 0; round < 2000; ++round) {
    // now and then a pause long enough for the free worker to go to sleep
    if (round % 100 == 99) usleep(2000);
    std::vector<int> hit(1000, 0);
    pool.parallel_for(hit.size(), [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) ++hit[i];
    });
    int once = 0;
    for (int h : hit) once += h == 1;
    CHECK(once == 1000);
    check_run_tasks(pool, 9);
  }
  alarm(0);
  CHECK(g_parked.load() == 1);  // the worker really was held throughout
  sem_post(&g_release);
  while (g_parked.load() != 0) usleep(1000);
  // Released, it takes part again and nothing is off.
  for (int round = 0; round < 200; ++round) {
    check_parallel_for_chunks(pool);
    check_run_tasks(pool, 33);
  }
  sem_destroy(&g_release);
}

}  // namespace

int main() {
  for (int T : {1, 2, 3, 4, 7}) {
    ps::ThreadPool pool(T);
    check_parallel_for_chunks(pool);
    for (size_t tasks : {size_t{1}, size_t{2}, size_t{5}, size_t{64}, size_t{1000}}) check_run_tasks(pool, tasks);
    check_exceptions(pool);
    check_nothing_left_inside(pool);
    // A call from inside a task runs serially, with the same chunks.
    pool.run_tasks(3, [&](size_t, int) {
      std::vector<std::tuple<size_t, size_t, int>> calls;
      pool.parallel_for(10, [&](size_t b, size_t e, int i) { calls.emplace_back(b, e, i); });
      std::vector<std::tuple<size_t, size_t, int>> want;
      for (int i = 0; i < T; ++i)
        if (10 * i / T < 10 * (i + 1) / T) want.emplace_back(10 * i / T, 10 * (i + 1) / T, i);
      if (T == 1) want = {std::make_tuple(size_t{0}, size_t{10}, 0)};
      CHECK(calls == want);
    });
  }
  check_held_worker_delays_nothing(2);
  check_held_worker_delays_nothing(3);
  return pstest::finish("test_threadpool");
}
