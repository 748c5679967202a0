// parallel_for on a pool of persistent worker threads. Each call is one job of `chunks` fixed
// chunks (chunk t = [n t / chunks, n (t + 1) / chunks), as when every call started its own
// threads), claimed one at a time by idle workers and by the calling thread itself. The caller
// helping with its own job means a call always finishes, however busy the workers are with the
// jobs of other threads; a call from inside a body runs its chunks inline, in order.
#include "aet/core/parallel.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cfenv>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace aet {
namespace {

using Body = std::function<void(std::int64_t, std::int64_t)>;

std::atomic<int> g_threads{0};

// Set while this thread runs a parallel_for body.
thread_local bool t_in_body = false;

// Runs body on chunk t of n items in `chunks` parts, marked as inside a body (nested calls run
// inline), keeping the first exception in *error.
void run_chunk(const Body& body, std::int64_t n, std::int64_t chunks, std::int64_t t,
               std::exception_ptr* error) {
  const bool outer = t_in_body;
  t_in_body = true;
  try {
    body(n * t / chunks, n * (t + 1) / chunks);
  } catch (...) {
    if (!*error) *error = std::current_exception();
  }
  t_in_body = outer;
}

// One parallel_for call, on the caller's stack; every field but the constants is guarded by
// Pool::mutex_. It stays alive until all its chunks are done, and a claimed chunk is not done,
// so whoever holds a claim may use it.
struct Job {
  Job(const Body& b, std::int64_t items, std::int64_t parts) : body(&b), n(items), chunks(parts) {
    std::fegetenv(&fenv);
  }

  const Body* body;
  std::int64_t n, chunks;
  std::fenv_t fenv;          // the caller's rounding mode and flags, for the workers
  std::int64_t claimed = 0;  // chunks handed out
  std::int64_t done = 0;     // chunks finished
  std::exception_ptr first_error;
  std::condition_variable finished;
};

class Pool {
 public:
  // Runs the job's chunks on up to chunks - 1 workers and the calling thread; returns when all
  // are done.
  void run(Job& job) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (static_cast<std::int64_t>(workers_) < job.chunks - 1) {
      std::thread(&Pool::work, this).detach();
      ++workers_;
    }
    jobs_.push_back(&job);
    for (std::int64_t i = 1; i < job.chunks; ++i) wake_.notify_one();
    while (job.claimed < job.chunks) {
      const std::int64_t t = claim(job);
      lock.unlock();
      std::exception_ptr error;
      run_chunk(*job.body, job.n, job.chunks, t, &error);
      lock.lock();
      finish(job, error);
    }
    job.finished.wait(lock, [&] { return job.done == job.chunks; });
  }

  // fork() copies only the calling thread: around it, no thread may hold the pool's lock.
  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

 private:
  // The next chunk of `job`, which has one unclaimed; the job leaves the queue with its last.
  std::int64_t claim(Job& job) {
    const std::int64_t t = job.claimed++;
    if (job.claimed == job.chunks) jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));
    return t;
  }

  void finish(Job& job, const std::exception_ptr& error) {
    if (error && !job.first_error) job.first_error = error;
    if (++job.done == job.chunks) job.finished.notify_all();
  }

  // A worker: the oldest job's next chunk, in its caller's floating-point environment (threads
  // started per call inherited it).
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return !jobs_.empty(); });
      Job& job = *jobs_.front();
      const std::int64_t t = claim(job);
      lock.unlock();
      std::fesetenv(&job.fenv);
      std::exception_ptr error;
      run_chunk(*job.body, job.n, job.chunks, t, &error);
      lock.lock();
      finish(job, error);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job*> jobs_;  // jobs with unclaimed chunks, oldest first
  std::size_t workers_ = 0;
};

// The pool, made on first use and never destroyed: workers may still wait on it at exit. A
// child process of fork() has none of the workers and makes a new pool.
std::mutex g_pool_mutex;
Pool* g_pool = nullptr;

void before_fork() {
  g_pool_mutex.lock();
  if (g_pool) g_pool->lock();
}
void after_fork_parent() {
  if (g_pool) g_pool->unlock();
  g_pool_mutex.unlock();
}
void after_fork_child() {
  if (g_pool) g_pool->unlock();
  g_pool = nullptr;  // its workers exist only in the parent
  g_pool_mutex.unlock();
}

Pool& pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) {
    static const bool registered =
        pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0;
    (void)registered;
    g_pool = new Pool;
  }
  return *g_pool;
}

// A positive integer environment value, 0 when unset or anything else.
long positive_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return 0;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  return end != v && *end == '\0' && errno == 0 && n > 0 ? n : 0;
}

// The CPUs this thread may run on (taskset, cgroups' cpusets), and no more than SLURM allots a
// task, shared among the MPI ranks of an unbound node (detail::threads_for).
int default_num_threads() {
  int n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) {  // more CPUs than a cpu_set_t holds, or no affinity support
    const unsigned hw = std::thread::hardware_concurrency();
    n = hw == 0 ? 1 : static_cast<int>(hw);
  }
  return detail::threads_for(n, sysconf(_SC_NPROCESSORS_ONLN), positive_env("SLURM_CPUS_PER_TASK"),
                             positive_env("OMPI_COMM_WORLD_LOCAL_SIZE"));
}

}  // namespace

namespace detail {

int threads_for(int allowed, long online, long slurm_cpus, long local_ranks) {
  int n = allowed;
  if (slurm_cpus > 0 && slurm_cpus < n) n = static_cast<int>(slurm_cpus);
  // MPI ranks sharing a node without binding (mpirun --bind-to none, --oversubscribe) each see
  // the whole machine: share its CPUs between them instead of running ranks x CPUs threads.
  if (local_ranks > 1 && online > 0 && n >= online)
    n = std::max(1, n / static_cast<int>(local_ranks));
  return n;
}

}  // namespace detail

void set_num_threads(int n) {
  g_threads = n < 0 ? 0 : n;
}

int num_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : default_num_threads();
}

int requested_num_threads() {
  return g_threads.load();
}

void parallel_for(std::int64_t n, const Body& body) {
  if (n <= 0) return;
  const std::int64_t chunks = std::min<std::int64_t>(num_threads(), n);
  if (chunks <= 1) {
    body(0, n);
    return;
  }
  std::exception_ptr first_error;
  if (t_in_body) {
    // Inside a body: the chunks one after another on this thread (the same chunks, so the same
    // results), as waiting for busy workers could deadlock.
    for (std::int64_t t = 0; t < chunks; ++t) run_chunk(body, n, chunks, t, &first_error);
  } else {
    Job job(body, n, chunks);
    pool().run(job);
    first_error = job.first_error;
  }
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace aet
