#include "xgrad/framework/threading.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "openmp_pool.h"

// OpenBLAS's own controls, declared here because cblas.h clashes with xtensor-blas.
extern "C" {
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);  // 0: single-threaded build, 1: pthreads, 2: OpenMP
}

namespace xgrad {
namespace {

// Whether OpenBLAS's threads are OpenMP's, so that parallel_for can use them without
// starting a second pool. Decided by the library loaded at run time, not the one linked.
bool blas_shares_openmp_pool() {
#ifdef _OPENMP
  static const bool shared = openblas_get_parallel() == 2;
  return shared;
#else
  return false;
#endif
}

void use_threads(int threads) {
  openblas_set_num_threads(threads);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

// Busy cores. A fork-join region ends when its last thread does; when another process holds
// one of the cores, the scheduler takes one of the pool's threads off it for a whole time
// slice (milliseconds, against regions of tens of microseconds), and every region waits for
// it: classifier training at two threads ran at 0.20x its one-thread speed beside a busy
// loop, batch-1 decoding at 0.48x (bench/README.md). So the pool follows the machine: every
// `period`, at the next parallel_for or matrix product, it reads how much of the cores this
// process may run on other processes took since the last look (the kernel's per-CPU times
// less this process's own), and uses one thread fewer than asked for each core's worth they
// took (half a core and more counting as one). A look costs about 30 us (0.03% of a period).
class LoadFollower {
 public:
  static constexpr std::chrono::milliseconds period{100};

  void set_requested(int threads) {
    requested_.store(threads, std::memory_order_relaxed);
    effective_ = threads;
    use_threads(threads);
  }
  int requested() const { return requested_.load(std::memory_order_relaxed); }
  void set_enabled(bool enabled) {
    enabled_.store(enabled, std::memory_order_relaxed);
    if (!enabled) set_requested(requested());
  }

  void follow() {
    const int asked = requested();
    if (asked <= 1 || !enabled_.load(std::memory_order_relaxed)) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_look_.load(std::memory_order_relaxed)) return;
    if (busy_.test_and_set(std::memory_order_acquire)) return;  // another thread is looking
    next_look_.store(now + period, std::memory_order_relaxed);
    const Sample sample = take_sample(now);
    if (sample.valid && last_.valid) {
      const double seconds = std::chrono::duration<double>(sample.time - last_.time).count();
      const double others = std::max(0.0, (sample.busy_seconds - last_.busy_seconds) -
                                              (sample.own_seconds - last_.own_seconds)) / seconds;
      // Half a core and more counts as a core: below that the kernel's tick-based times (10 ms)
      // and short-lived processes (0.1 to 0.2 of a core on a quiet machine) are noise.
      const int free_cores = sample.cores - static_cast<int>(std::floor(others + 0.5));
      const int threads = std::clamp(free_cores, 1, asked);
      if (threads != effective_) {
        effective_ = threads;
        use_threads(threads);
      }
    }
    last_ = sample;
    busy_.clear(std::memory_order_release);
  }

 private:
  struct Sample {
    bool valid = false;
    std::chrono::steady_clock::time_point time;
    int cores = 0;
    double busy_seconds = 0;  // non-idle time of the cores this process may use
    double own_seconds = 0;   // this process's CPU time
  };

  static Sample take_sample(std::chrono::steady_clock::time_point now) {
    Sample sample;
    sample.time = now;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return sample;
    char text[16384];
    const int file = ::open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (file < 0) return sample;
    const ssize_t length = ::read(file, text, sizeof text - 1);
    ::close(file);
    if (length <= 0) return sample;
    static const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    // Lines "cpuN user nice system idle iowait irq softirq steal ...", in ticks; steal is
    // time the hypervisor gave the core to someone else, as good as busy.
    std::string_view rest(text, static_cast<std::size_t>(length));
    while (rest.starts_with("cpu")) {
      const std::string_view line = rest.substr(0, rest.find('\n'));
      rest.remove_prefix(std::min(rest.size(), line.size() + 1));
      char* end = nullptr;
      const long cpu = std::strtol(line.data() + 3, &end, 10);
      if (end == line.data() + 3 || cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) continue;
      unsigned long long fields[8] = {};
      const char* cursor = end;
      for (auto& field : fields) field = std::strtoull(cursor, const_cast<char**>(&cursor), 10);
      const unsigned long long idle = fields[3] + fields[4];
      const unsigned long long all = fields[0] + fields[1] + fields[2] + fields[3] + fields[4] + fields[5] + fields[6] +
                                     fields[7];
      sample.busy_seconds += static_cast<double>(all - idle) * tick;
      ++sample.cores;
    }
    rusage usage{};
    if (sample.cores == 0 || getrusage(RUSAGE_SELF, &usage) != 0) return sample;
    sample.own_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
    sample.valid = true;
    return sample;
  }

  std::atomic<int> requested_{openblas_get_num_threads()};
  std::atomic<bool> enabled_{true};
  std::atomic<std::chrono::steady_clock::time_point> next_look_{};
  std::atomic_flag busy_;
  int effective_ = openblas_get_num_threads();
  Sample last_;
};

LoadFollower& load_follower() {
  static LoadFollower follower;
  return follower;
}

}  // namespace

void set_num_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  load_follower().set_requested(threads);
}

int num_threads() { return openblas_get_num_threads(); }

int requested_threads() { return load_follower().requested(); }

void set_follow_busy_cores(bool enabled) { load_follower().set_enabled(enabled); }

bool detail::shares_openmp_pool() { return blas_shares_openmp_pool(); }

void detail::follow_busy_cores() {
#ifdef _OPENMP
  if (omp_in_parallel() != 0) return;
#endif
  load_follower().follow();
}

void parallel_for(std::size_t count, std::size_t grain, RangeBody body) {
  detail::follow_busy_cores();
  const std::size_t ranges =
      blas_shares_openmp_pool() ? std::min<std::size_t>(num_threads(), count / std::max<std::size_t>(grain, 1)) : 1;
#ifdef _OPENMP
  if (ranges > 1 && omp_in_parallel() == 0) {
#pragma omp parallel num_threads(static_cast<int>(ranges))
    {
      const auto thread = static_cast<std::size_t>(omp_get_thread_num());
      const auto threads = static_cast<std::size_t>(omp_get_num_threads());
      body(count * thread / threads, count * (thread + 1) / threads);
    }
    return;
  }
#endif
  if (count > 0) body(0, count);
}

}  // namespace xgrad
