// The MPI world (aet/hpc/mpi.hpp). Without AET_WITH_MPI the same functions describe the
// one-process world: rank 0 of 1, collectives that have nothing to exchange.
#include "aet/hpc/mpi.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <thread>

#include "aet/core/error.hpp"
#include "aet/core/progress.hpp"

#ifndef AET_WITH_MPI
#define AET_WITH_MPI 0
#endif
#if AET_WITH_MPI
// The C API only: OpenMPI's and MPICH's mpi.h would otherwise pull in their C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace aet {
namespace {

struct World {
  bool active = false;
  int rank = 0, size = 1, local_rank = 0;
};
World g_world;

// The request that ends serve_mpi_workers (the services' tags are other values).
constexpr std::uint32_t kDoneTag = 0;

std::map<std::uint32_t, MpiHandler>& services() {
  static std::map<std::uint32_t, MpiHandler> table;
  return table;
}

bool started_by_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

#if AET_WITH_MPI
// MPI counts are int: long arrays travel in pieces.
constexpr std::size_t kChunk = std::size_t{1} << 28;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  std::fprintf(stderr, "aet (MPI rank %d): %s failed (MPI error %d)\n", g_world.rank, what, rc);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

template <class T>
void reduce_sum_then_broadcast(T* data, std::size_t n, MPI_Datatype type) {
  for (std::size_t at = 0; at < n; at += kChunk) {
    const int count = static_cast<int>(std::min(kChunk, n - at));
    if (g_world.rank == 0)
      check(MPI_Reduce(MPI_IN_PLACE, data + at, count, type, MPI_SUM, 0, MPI_COMM_WORLD),
            "MPI_Reduce");
    else
      check(MPI_Reduce(data + at, nullptr, count, type, MPI_SUM, 0, MPI_COMM_WORLD), "MPI_Reduce");
    check(MPI_Bcast(data + at, count, type, 0, MPI_COMM_WORLD), "MPI_Bcast");
  }
}

// A request of the worker protocol from rank 0 to every rank. Its length goes out as a
// non-blocking broadcast that a worker tests with growing sleeps (50 us to 5 ms): between
// requests a worker waits while rank 0 runs everything that is not distributed (GENFIRE's
// iterations, tracing, refinement), and in a blocking broadcast OpenMPI would spin a core there
// the whole time, taking it from rank 0 on a node with as many ranks as cores. Rank 0 uses the
// non-blocking call too (a blocking and a non-blocking collective do not match).
void broadcast_request(std::vector<std::uint8_t>& message) {
  std::uint64_t n = message.size();
  MPI_Request request;
  check(MPI_Ibcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &request), "MPI_Ibcast");
  if (g_world.rank == 0) {
    check(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
  } else {
    long sleep_us = 50;
    for (;;) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) break;
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
      sleep_us = std::min(2 * sleep_us, 5000L);
    }
  }
  message.resize(static_cast<std::size_t>(n));
  for (std::size_t at = 0; at < message.size(); at += kChunk)
    check(MPI_Bcast(message.data() + at, static_cast<int>(std::min(kChunk, message.size() - at)),
                    MPI_BYTE, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
}

void send_floats(const std::vector<float>& v, int dest) {
  const std::uint64_t n = v.size();
  check(MPI_Send(&n, 1, MPI_UINT64_T, dest, 1, MPI_COMM_WORLD), "MPI_Send");
  for (std::size_t at = 0; at < v.size(); at += kChunk)
    check(MPI_Send(v.data() + at, static_cast<int>(std::min(kChunk, v.size() - at)), MPI_FLOAT,
                   dest, 2, MPI_COMM_WORLD),
          "MPI_Send");
}

std::vector<float> recv_floats(int source) {
  std::uint64_t n = 0;
  check(MPI_Recv(&n, 1, MPI_UINT64_T, source, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t at = 0; at < v.size(); at += kChunk)
    check(MPI_Recv(v.data() + at, static_cast<int>(std::min(kChunk, v.size() - at)), MPI_FLOAT,
                   source, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Recv");
  return v;
}

bool many() {
  return g_world.active && g_world.size > 1;
}
#endif

}  // namespace

bool mpi_active() {
  return g_world.active;
}
int mpi_rank() {
  return g_world.rank;
}
int mpi_size() {
  return g_world.size;
}
int mpi_local_rank() {
  return g_world.local_rank;
}

MpiSession::MpiSession(int& argc, char**& argv) {
#if AET_WITH_MPI
  if (!started_by_launcher()) return;
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "aet: MPI_Init_thread failed\n");
    std::exit(1);
  }
  g_world.active = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world.size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &g_world.local_rank);
  MPI_Comm_free(&node);
#else
  (void)argc;
  (void)argv;
  (void)started_by_launcher;
#endif
}

MpiSession::~MpiSession() {
#if AET_WITH_MPI
  if (!g_world.active) return;
  if (g_world.rank == 0 && g_world.size > 1) {
    try {
      mpi_request(kDoneTag, {});
    } catch (...) {
      // Nothing is left to report to; MPI_Finalize below still runs.
    }
  }
  MPI_Finalize();
  g_world.active = false;
#endif
}

void mpi_sum(double* data, std::size_t n) {
#if AET_WITH_MPI
  if (many()) reduce_sum_then_broadcast(data, n, MPI_DOUBLE);
#else
  (void)data;
  (void)n;
#endif
}

void mpi_sum(float* data, std::size_t n) {
#if AET_WITH_MPI
  if (many()) reduce_sum_then_broadcast(data, n, MPI_FLOAT);
#else
  (void)data;
  (void)n;
#endif
}

double mpi_max(double value) {
#if AET_WITH_MPI
  if (many()) {
    double out = value;
    check(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return out;  // a maximum is exact: the same on every rank
  }
#endif
  return value;
}

void mpi_broadcast(std::vector<std::uint8_t>& bytes) {
#if AET_WITH_MPI
  if (!many()) return;
  std::uint64_t n = bytes.size();
  check(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  bytes.resize(static_cast<std::size_t>(n));
  for (std::size_t at = 0; at < bytes.size(); at += kChunk)
    check(MPI_Bcast(bytes.data() + at, static_cast<int>(std::min(kChunk, bytes.size() - at)),
                    MPI_BYTE, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
#else
  (void)bytes;
#endif
}

void mpi_broadcast(std::vector<float>& values) {
#if AET_WITH_MPI
  if (!many()) return;
  std::uint64_t n = values.size();
  check(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  values.resize(static_cast<std::size_t>(n));
  for (std::size_t at = 0; at < values.size(); at += kChunk)
    check(MPI_Bcast(values.data() + at, static_cast<int>(std::min(kChunk, values.size() - at)),
                    MPI_FLOAT, 0, MPI_COMM_WORLD),
          "MPI_Bcast");
#else
  (void)values;
#endif
}

std::vector<float> mpi_gather(const std::vector<float>& block) {
#if AET_WITH_MPI
  if (many()) {
    if (g_world.rank != 0) {
      send_floats(block, 0);
      return {};
    }
    std::vector<float> all = block;
    for (int r = 1; r < g_world.size; ++r) {
      const std::vector<float> part = recv_floats(r);
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }
#endif
  return block;
}

std::vector<float> mpi_scatter(const std::vector<std::vector<float>>& blocks) {
  if (g_world.rank == 0 && blocks.size() != static_cast<std::size_t>(g_world.size))
    throw InternalError("mpi_scatter: one block per rank expected");
#if AET_WITH_MPI
  if (many()) {
    if (g_world.rank != 0) return recv_floats(0);
    for (int r = 1; r < g_world.size; ++r) send_floats(blocks[static_cast<std::size_t>(r)], r);
  }
#endif
  return blocks[0];
}

void mpi_abort(int code) {
#if AET_WITH_MPI
  if (g_world.active) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

bool register_mpi_service(std::uint32_t tag, MpiHandler handler) {
  if (tag == kDoneTag) throw InternalError("register_mpi_service: tag 0 is reserved");
  services()[tag] = handler;
  return true;
}

void mpi_request(std::uint32_t tag, const std::vector<std::uint8_t>& request) {
  std::vector<std::uint8_t> message(sizeof tag + request.size());
  std::memcpy(message.data(), &tag, sizeof tag);
  if (!request.empty()) std::memcpy(message.data() + sizeof tag, request.data(), request.size());
#if AET_WITH_MPI
  if (many()) broadcast_request(message);
#endif
}

int serve_mpi_workers() {
  set_verbosity(Verbosity::quiet);
  for (;;) {
    std::vector<std::uint8_t> message;
#if AET_WITH_MPI
    if (many()) broadcast_request(message);
#endif
    std::uint32_t tag = kDoneTag;
    if (message.size() < sizeof tag) {
      std::fprintf(stderr, "aet (MPI rank %d): malformed request\n", g_world.rank);
      mpi_abort(1);
    }
    std::memcpy(&tag, message.data(), sizeof tag);
    if (tag == kDoneTag) return 0;
    const auto it = services().find(tag);
    if (it == services().end()) {
      std::fprintf(stderr, "aet (MPI rank %d): unknown request %u\n", g_world.rank, tag);
      mpi_abort(1);
    }
    try {
      it->second(std::vector<std::uint8_t>(message.begin() + sizeof tag, message.end()));
    } catch (const std::exception& e) {
      // The other ranks wait in a collective of this request: only an abort ends the job.
      std::fprintf(stderr, "aet (MPI rank %d): error: %s\n", g_world.rank, e.what());
      mpi_abort(1);
    }
  }
}

}  // namespace aet
