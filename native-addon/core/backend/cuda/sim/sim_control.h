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

// The machine the simulator presents, so tests can take the paths other GPUs
// and drivers take:
// - the compute capability (default 9.0; PS_CUDA_SIM_COMPUTE_CAPABILITY=7.5
//   starts a process as a Turing card);
// - the driver: the CUDA version it supports as cudaDriverGetVersion says it
//   (default 13000, the runtime's own), 0 for no driver installed; below the
//   runtime's, cudaGetDeviceCount fails with cudaErrorInsufficientDriver as
//   the real runtime does (PS_CUDA_SIM_DRIVER_VERSION);
// - the architecture the kernels' code was built for, as cudaFuncGetAttributes
//   reports it (default 90: a build with sm_90; 75 is a build without
//   architecture 80+ whose compute_75 code a newer GPU runs).
void set_compute_capability(int major, int minor);
void set_driver_version(int version);
void set_code_arch(int arch);
int code_arch();

}  // namespace cudasim
}  // namespace ps
