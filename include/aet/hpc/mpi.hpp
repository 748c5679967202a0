// The MPI world of one aet run (docs/hpc.md): which rank this process is, the few collectives the
// distributed reconstruction needs, and the master/worker protocol that keeps every other stage
// single-process. Rank 0 runs the command as without MPI (it alone reads inputs, logs and writes
// outputs); ranks > 0 run serve_mpi_workers(), which carries out the requests rank 0 broadcasts
// (a distributed reconstruction) until rank 0's MpiSession ends.
//
// MPI is touched only when the process was started by an MPI launcher (OMPI_COMM_WORLD_SIZE,
// PMIX_RANK or PMI_RANK set): a plain `aet` is the one-process world, as is every process of a
// build without MPI (AET_BUILT_WITH_MPI 0), with the same API. The MPI headers stay in mpi.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace aet {

// Whether MPI was initialised (started by a launcher, in a build with MPI).
bool mpi_active();
int mpi_rank();        // 0 in the one-process world
int mpi_size();        // 1 in the one-process world
int mpi_local_rank();  // rank among the ranks of this node (one GPU per rank)

// Created first in main(): MPI_Init_thread (funneled: only the main thread calls MPI) when a
// launcher started the process, otherwise nothing. The destructor of rank 0's session tells the
// workers to return (also when the command failed), then every rank finalizes.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// Collectives over all ranks (nothing to do in the one-process world). Sums are reduced on rank 0
// and broadcast, so every rank holds the same bits (the ranks' control flow depends on them).
void mpi_sum(double* data, std::size_t n);
void mpi_sum(float* data, std::size_t n);
double mpi_max(double value);
// Rank 0's bytes on every rank (resized there).
void mpi_broadcast(std::vector<std::uint8_t>& bytes);
void mpi_broadcast(std::vector<float>& values);
// Rank 0 gets every rank's block, in rank order; the other ranks get an empty vector.
std::vector<float> mpi_gather(const std::vector<float>& block);
// Rank r gets blocks[r] (blocks is read on rank 0 only, mpi_size() long).
std::vector<float> mpi_scatter(const std::vector<std::vector<float>>& blocks);

// Ranks > 0 abort the whole job on an error they cannot report (rank 0 alone talks to the user).
[[noreturn]] void mpi_abort(int code);

// The worker protocol. A service is a request kind with its handler, registered once (static
// initialisation) by the module that serves it; rank 0 starts it on every worker with
// mpi_request, then the ranks run the service's collectives together.
using MpiHandler = void (*)(const std::vector<std::uint8_t>& request);
bool register_mpi_service(std::uint32_t tag, MpiHandler handler);
void mpi_request(std::uint32_t tag, const std::vector<std::uint8_t>& request);
// Ranks > 0: serve requests until rank 0 says done; returns the exit code (0). Quiet: workers
// print nothing (an error they hit aborts the job with a line on stderr).
int serve_mpi_workers();

}  // namespace aet
