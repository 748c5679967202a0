// Thread count for CPU kernels (--threads), and a static-partition parallel loop.
// Work is split into fixed chunks so results never depend on scheduling.
#pragma once

#include <cstdint>
#include <functional>

namespace aet {

// 0 = one thread per CPU this thread may run on (its affinity mask: taskset, cpusets), or
// SLURM_CPUS_PER_TASK when that is smaller, divided among the MPI ranks that share an unbound
// node. Set once by the CLI; read by every CPU kernel.
void set_num_threads(int n);
int num_threads();
// What set_num_threads was given (0 = the default): MPI rank 0 passes it on to the workers.
int requested_num_threads();

namespace detail {
// The default thread count from `allowed` CPUs (the affinity mask's), `online` CPUs of the node,
// SLURM_CPUS_PER_TASK and OMPI_COMM_WORLD_LOCAL_SIZE (0 = unset): at most the Slurm CPUs, and an
// unbound node's CPUs divided among its ranks (at least 1).
int threads_for(int allowed, long online, long slurm_cpus, long local_ranks);
}  // namespace detail

// Calls body(begin, end) on disjoint ranges covering [0, n) from up to num_threads() threads:
// min(num_threads(), n) chunks, chunk t = [n t / chunks, n (t + 1) / chunks), whatever thread runs
// it. The threads are a persistent pool shared by all callers; a call from inside a body runs its
// chunks one after another on the calling thread. Every chunk runs; the first exception from the
// body is then rethrown in the caller.
void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body);

}  // namespace aet
