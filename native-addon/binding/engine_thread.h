// One OS thread per engine that runs every slow call of it (a step, an
// evaluation, a decode). The CPU backend keeps its GEMM packing buffers in
// thread_local Workspaces of the calling thread (its pool's thread 0), and
// libuv hands each AsyncWorker to whichever of its threads is free: each of
// them would grow and keep its own copy of those buffers, memory the estimate
// cannot count (it counts one) and dispose() could not give back. On its own
// thread the engine has one copy, freed when the thread ends with the engine.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

namespace psb {

class EngineThread {
 public:
  EngineThread() : thread_([this] { loop(); }) {}
  ~EngineThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  EngineThread(const EngineThread&) = delete;
  EngineThread& operator=(const EngineThread&) = delete;

  // Runs job on the engine's thread and waits for it; an exception it throws
  // is rethrown here. One job at a time (the binding refuses a second call
  // while one runs).
  void run(const std::function<void()>& job) {
    std::exception_ptr error;
    std::unique_lock<std::mutex> lock(mu_);
    job_ = [&] {
      try {
        job();
      } catch (...) {
        error = std::current_exception();
      }
    };
    finished_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return finished_; });
    if (error) std::rethrow_exception(error);
  }

  // run() for a call with a result: f's value, or what it threw.
  template <typename F>
  auto call(F&& f) -> decltype(f()) {
    using Result = decltype(f());
    if constexpr (std::is_void_v<Result>) {
      run(f);
    } else {
      std::optional<Result> out;
      run([&] { out.emplace(f()); });
      return std::move(*out);
    }
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || job_; });
      if (stop_) return;
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      job();
      lock.lock();
      finished_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool finished_ = false;  // the job handed over last has run
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it reads exist
};

}  // namespace psb
