// The HDF5 helpers shared by the result, training-set and model-weights files (hdf5_handles.hpp).
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>

#include "hdf5_handles.hpp"

// Under AddressSanitizer (the fuzzing and sanitizer builds) the child drops the parent's death
// callback: a fuzzer's would record the child's crash inside libhdf5, which the guard exists to
// contain, as the fuzzer's own finding.
#if defined(__clang__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/common_interface_defs.h>
#define AET_CHILD_DROPS_DEATH_CALLBACK 1
#endif
#endif

namespace aet::hdf5 {

namespace fs = std::filesystem;

FileH open_for_reading(const std::string& path, const std::string& noun) {
  silence_hdf5();
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail_file(path, (noun.empty() ? "file" : noun) + " not found");
  if (fs::is_directory(st))
    fail_file(path, "is a directory, not " + (noun.empty() ? "an HDF5 file" : "a " + noun));
  if (H5Fis_hdf5(path.c_str()) <= 0)
    fail_file(path, "not an HDF5 " + (noun.empty() ? "file" : noun) + " (or truncated)");
  return checked<FileH>(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path,
                        "cannot open the HDF5 file (truncated or corrupt?)");
}

namespace {

void delete_attr_if_present(hid_t loc, const std::string& name) {
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

herr_t collect_hard_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

void write_string_attr(const std::string& path, hid_t loc, const std::string& name,
                       const std::string& value) {
  delete_attr_if_present(loc, name);
  TypeH type = utf8_string_type(path);
  SpaceH space = checked<SpaceH>(H5Screate(H5S_SCALAR), path, "cannot create a dataspace");
  AttrH attr = checked<AttrH>(
      H5Acreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
      "cannot create attribute '" + name + "'");
  const char* p = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &p), path, "cannot write attribute '" + name + "'");
}

void write_numeric_attr(const std::string& path, hid_t loc, const std::string& name,
                        hid_t file_type, hid_t mem_type, const void* data, hsize_t n) {
  delete_attr_if_present(loc, name);
  SpaceH space = checked<SpaceH>(n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr),
                                 path, "cannot create a dataspace");
  AttrH attr = checked<AttrH>(
      H5Acreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
      "cannot create attribute '" + name + "'");
  check(H5Awrite(attr.get(), mem_type, data), path, "cannot write attribute '" + name + "'");
}

void write_double_attr(const std::string& path, hid_t loc, const std::string& name, double v) {
  write_numeric_attr(path, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

void write_dataset(const std::string& path, hid_t loc, const std::string& name, hid_t file_type,
                   hid_t mem_type, const std::vector<hsize_t>& dims, const void* data) {
  if (name.empty() || name.front() == '/' || name.back() == '/')
    throw InternalError(path + ": invalid dataset name '" + name + "'");
  PlistH lcpl = checked<PlistH>(H5Pcreate(H5P_LINK_CREATE), path, "cannot create a property list");
  check(H5Pset_create_intermediate_group(lcpl.get(), 1), path, "cannot create a property list");
  SpaceH space = checked<SpaceH>(
      dims.empty() ? H5Screate(H5S_SCALAR)
                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      path, "cannot create the dataspace of '" + name + "'");
  DatasetH ds = checked<DatasetH>(
      H5Dcreate2(loc, name.c_str(), file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
      path, "cannot create dataset '" + name + "'");
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (n > 0)
    check(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
          "cannot write dataset '" + name + "'");
}

void publish_file(FileH& file, const std::string& tmp, const std::string& path) {
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0 || file.reset() < 0) {
    file.reset();
    std::remove(tmp.c_str());
    fail_file(path, "cannot write the HDF5 file (disk full or I/O error); no file written");
  }
  // Data on disk before the rename publishes the file (see AtomicFile).
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail_file(path,
              std::string("cannot rename the temporary file into place: ") + std::strerror(err));
  }
}

std::vector<std::string> attribute_names(const std::string& path, hid_t object, H5_index_t order,
                                         const std::string& error) {
  H5O_info_t info;
  check(H5Oget_info2(object, &info, H5O_INFO_NUM_ATTRS), path, error);
  if (info.num_attrs > kMaxAttrCount)
    fail_file(path, error + ": " + std::to_string(info.num_attrs) + " attributes (damaged file?)");
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Aiterate2(object, order, H5_ITER_INC, &idx, collect_attr, &names), path, error);
  return names;
}

std::vector<std::string> link_names(const std::string& path, hid_t group, H5_index_t order,
                                    const std::string& error) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  check(H5Literate(group, order, H5_ITER_INC, &idx, collect_hard_link, &names), path, error);
  return names;
}

namespace {

// Exit codes of the parsing child (a crash or a sanitizer's exit is anything else).
constexpr int kChildOk = 0, kChildInputError = 65, kChildOutOfMemory = 66, kChildOtherError = 67;

void write_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<std::size_t>(w);
  }
}

// The data segment and private mappings this process has now (VmData), in bytes; 0 if unknown.
std::uintmax_t data_bytes_now() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long v[6] = {0, 0, 0, 0, 0, 0};
  const int n = std::fscanf(f, "%lu %lu %lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
  std::fclose(f);
  return n == 6 ? static_cast<std::uintmax_t>(v[5]) *
                      static_cast<std::uintmax_t>(::sysconf(_SC_PAGESIZE))
                : 0;
}

[[noreturn]] void run_child(int fd, pid_t parent, long cpu_s, std::uintmax_t file_bytes,
                            const std::function<void()>& parse) {
  // The parent's clean stop on SIGINT/SIGTERM is the parent's: the child just ends, and ends
  // with the parent (killed, or stopped by Slurm) instead of parsing on as an orphan.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(kChildOtherError);  // the parent died before prctl
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  // Memory: what the parent had, plus 2 GiB and 16 times the file (compressed volumes expand).
  // A size field crafted to make libhdf5 allocate gigabytes then fails here instead of taking
  // the machine's memory.
  if (const std::uintmax_t now = data_bytes_now()) {
    const std::uintmax_t limit = now + (std::uintmax_t{2} << 30) + 16 * file_bytes;
    const rlimit data{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
    ::setrlimit(RLIMIT_DATA, &data);
  }
  const rlimit cpu{static_cast<rlim_t>(cpu_s), static_cast<rlim_t>(cpu_s + 1)};
  ::setrlimit(RLIMIT_CPU, &cpu);
  // A crash in libhdf5 ends the child by its signal, with no handler of the parent's (a fuzzer's
  // or a sanitizer's) running in a process the library may have corrupted.
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::signal(sig, SIG_DFL);
#ifdef AET_CHILD_DROPS_DEATH_CALLBACK
  __sanitizer_set_death_callback(nullptr);
#endif
  // The library's diagnostics and a sanitizer's report of its crash are not the user's business.
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) ::dup2(null, STDERR_FILENO);
  int code = kChildOk;
  std::string message;
  try {
    parse();
  } catch (const InputError& e) {
    code = kChildInputError;
    message = e.what();
  } catch (const std::bad_alloc&) {
    code = kChildOutOfMemory;
  } catch (...) {
    code = kChildOtherError;
  }
  write_all(fd, message);
  ::_exit(code);  // no atexit handlers, no flushing of the parent's buffers or files
}

}  // namespace

void parse_in_child(const std::string& path, const std::string& noun,
                    const std::function<void()>& parse) {
  silence_hdf5();
  std::error_code ec;
  const std::uintmax_t size = fs::is_regular_file(path, ec) ? fs::file_size(path, ec) : 0;
  long cpu_s = 5 + static_cast<long>((ec ? 0 : size) >> 24);
  if (const char* env = std::getenv("AET_HDF5_CPU_LIMIT")) {
    const long v = std::atol(env);
    if (v > 0) cpu_s = v;
  }
  const long wall_s = 4 * cpu_s + 30;

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw InternalError(path + ": cannot create a pipe: " + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw InternalError(path + ": cannot start a process to read the file: " + std::strerror(err));
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(fds[1], parent, cpu_s, ec ? 0 : size, parse);
  }
  ::close(fds[1]);

  // The child's message, until it closes the pipe (exits) or the wall-clock limit passes.
  std::string message;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wall_s);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (message.size() < 65536) message.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  const std::string invalid = "not a valid " + noun + " (";
  if (timed_out)
    fail_file(path, invalid + "reading it did not finish in " + std::to_string(wall_s) +
                        " s; a damaged or hostile HDF5 file?)");
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case kChildOk:
      case kChildOtherError:  // not the file's fault: the parse here reports it as it is
        return;
      case kChildInputError:
        throw InputError(message);
      case kChildOutOfMemory:
        fail_file(path, invalid + "reading it ran out of memory)");
      default:
        fail_file(path, invalid + "the HDF5 library failed on it, exit status " +
                            std::to_string(WEXITSTATUS(status)) + ")");
    }
  }
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  if (sig == SIGXCPU)
    fail_file(path, invalid + "reading it took more than " + std::to_string(cpu_s) +
                        " s of CPU; a damaged or hostile HDF5 file?)");
  if (sig == SIGKILL)
    fail_file(path, invalid + "the process reading it was killed; out of memory?)");
  fail_file(path, invalid + "the HDF5 library crashed on it: " +
                      (sig ? std::string(strsignal(sig)) : std::string("unknown status")) + ")");
}

}  // namespace aet::hdf5
