// Knobs of the simulator for tests (plain C++: no CUDA types).
#pragma once

namespace ps {
namespace cudasim {

// The order in which the scheduler resumes the threads of a block between
// barriers, and runs the blocks of a grid: lowest index first (default) or
// highest first. A kernel without data races gives the same bits either way;
// a thread reading shared or global memory that another thread writes
// without a __syncthreads between them, or two blocks writing one element,
// give different results (tests run kernels both ways and compare). The
// environment variable PS_CUDA_SIM_THREAD_ORDER=reverse starts reversed.
void set_reverse_thread_order(bool reverse);
bool reverse_thread_order();

}  // namespace cudasim
}  // namespace ps
