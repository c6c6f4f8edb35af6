// gemm-candidates: single-precision matrix products of the shapes xgrad's workloads run, timed
// on each candidate library, to choose the one blas::gemm calls (bench/README.md, "Matrix
// products: the measurements that decided").
//
//   gemm-candidates --library openblas|dnnl|blis|xgrad --threads N [--seconds S] [--only PREFIX]
//
// Prints one row per shape: GFLOP/s median, minimum and maximum over 7 rounds of calls (each
// round about S / 7 seconds, default S = 0.7), and the median of GFLOP per CPU second of the
// process (all its threads). Which kernels a library picks is set by its own
// environment: OPENBLAS_CORETYPE (read once when OpenBLAS loads), DNNL_MAX_CPU_ISA,
// BLIS_ARCH_TYPE; XGRAD_MAX_ISA for --library xgrad (blas::gemm as the framework runs it).
// BLIS is opened with dlopen, so that its BLAS symbols never meet OpenBLAS's and the program
// runs where BLIS is not installed. Only this program includes cblas.h: it does not include
// xtensor-blas, whose declarations clash with it.

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <xgrad/framework/blas.h>
#include <xgrad/framework/isa.h>
#include <xgrad/framework/threading.h>

namespace {

struct Shape {
  const char* name;
  bool transpose_a, transpose_b;
  std::size_t m, n, k;
  float beta;
};

// seq2seq-train: batch 128, GRU 512 (3 gates: 1536), attention 1024-wide encoder states, a
// target vocabulary of about 9,000 words over about 3,000 target tokens per batch.
// classifier-train: batch 64, embeddings 128, bi-LSTM 256 (4 gates: 1024), ~20 tokens.
const Shape shapes[] = {
    {"square 2048^3 NN", false, false, 2048, 2048, 2048, 0},
    {"s2s vocab fwd x W^T", false, true, 3000, 9000, 512, 0},
    {"s2s vocab bwd dX = dY W", false, false, 3000, 512, 9000, 0},
    {"s2s vocab bwd dW += dY^T X", true, false, 9000, 512, 3000, 1},
    {"s2s gates fwd x W^T", false, true, 3000, 1536, 1024, 0},
    {"s2s gates bwd dW += dY^T X", true, false, 1536, 1024, 3000, 1},
    {"s2s step 128 x W^T", false, true, 128, 1536, 512, 0},
    {"clf gates fwd x W^T", false, true, 1280, 1024, 128, 0},
    {"clf gates bwd dX = dY W", false, false, 1280, 128, 1024, 1},
    {"clf gates bwd dW += dY^T X", true, false, 1024, 128, 1280, 1},
    {"batch-1 vocab x W^T", false, true, 1, 9000, 512, 0},
    {"batch-1 gates x W^T", false, true, 1, 1536, 512, 0},
};

using Gemm = void (*)(const Shape&, const float*, const float*, float*);

void openblas_gemm(const Shape& s, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, s.transpose_a ? CblasTrans : CblasNoTrans, s.transpose_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.0f, a,
              static_cast<int>(s.transpose_a ? s.m : s.k), b, static_cast<int>(s.transpose_b ? s.k : s.n), s.beta, c,
              static_cast<int>(s.n));
}

void onednn_gemm(const Shape& s, const float* a, const float* b, float* c) {
  const auto m = static_cast<dnnl_dim_t>(s.m), n = static_cast<dnnl_dim_t>(s.n), k = static_cast<dnnl_dim_t>(s.k);
  if (dnnl_sgemm(s.transpose_a ? 'T' : 'N', s.transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, s.transpose_a ? m : k, b,
                 s.transpose_b ? k : n, s.beta, c, n) != dnnl_success) {
    throw std::runtime_error("dnnl_sgemm failed");
  }
}

void xgrad_gemm(const Shape& s, const float* a, const float* b, float* c) {
  xgrad::blas::gemm(s.transpose_a, s.transpose_b, s.m, s.n, s.k, 1.0f, a, b, s.beta, c);
}

// BLIS's typed API, with strides standing for the transposes (trans_t 0: no transpose).
using BliSgemm = void (*)(int, int, long, long, long, const float*, const float*, long, long, const float*, long, long,
                          const float*, float*, long, long);
BliSgemm bli_sgemm = nullptr;

void blis_gemm(const Shape& s, const float* a, const float* b, float* c) {
  const auto m = static_cast<long>(s.m), n = static_cast<long>(s.n), k = static_cast<long>(s.k);
  const float one = 1.0f;
  bli_sgemm(0, 0, m, n, k, &one, a, s.transpose_a ? 1 : k, s.transpose_a ? m : 1, b, s.transpose_b ? 1 : n,
            s.transpose_b ? k : 1, &s.beta, c, n, 1);
}

void open_blis(int threads) {
  void* library = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (library == nullptr) throw std::runtime_error(std::string("cannot open BLIS: ") + dlerror());
  bli_sgemm = reinterpret_cast<BliSgemm>(dlsym(library, "bli_sgemm"));
  auto set_threads = reinterpret_cast<void (*)(long)>(dlsym(library, "bli_thread_set_num_threads"));
  auto arch_id = reinterpret_cast<int (*)()>(dlsym(library, "bli_arch_query_id"));
  auto arch_name = reinterpret_cast<const char* (*)(int)>(dlsym(library, "bli_arch_string"));
  if (bli_sgemm == nullptr || set_threads == nullptr) throw std::runtime_error("BLIS lacks bli_sgemm");
  set_threads(threads);
  if (arch_id != nullptr && arch_name != nullptr) std::printf("# BLIS configuration: %s\n", arch_name(arch_id()));
}

// CPU seconds of all the process's threads: GFLOP per CPU second stays near the kernels' own
// speed when other processes share the cores (as the wall-clock rate does not).
double process_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return double(now.tv_sec) + 1e-9 * double(now.tv_nsec);
}

struct Buffer {
  std::unique_ptr<float[]> data;
  explicit Buffer(std::size_t size, std::mt19937& random) : data(new float[size]) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (std::size_t i = 0; i < size; ++i) data[i] = uniform(random);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string library = "openblas";
  int threads = 1;
  double seconds = 0.7;
  std::string only;  // shapes whose names start so
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--library") library = argv[i + 1];
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (flag == "--only") only = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s --library openblas|dnnl|blis|xgrad --threads N [--seconds S] [--only PREFIX]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    // xgrad's pool sets OpenBLAS's and OpenMP's counts (oneDNN reads omp_get_max_threads).
    xgrad::set_follow_busy_cores(false);
    xgrad::set_num_threads(threads);
    Gemm gemm = openblas_gemm;
    if (library == "dnnl") gemm = onednn_gemm;
    else if (library == "xgrad") gemm = xgrad_gemm;
    else if (library == "blis") {
      open_blis(threads);
      gemm = blis_gemm;
    } else if (library != "openblas") throw std::invalid_argument("--library: unknown " + library);
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("# library %s, threads %d, OpenBLAS core %s (OPENBLAS_CORETYPE %s), oneDNN isa 0x%x, xgrad isa %s\n",
                library.c_str(), threads, openblas_get_corename(), coretype == nullptr ? "unset" : coretype,
                static_cast<unsigned>(dnnl_get_effective_cpu_isa()),
                std::string(xgrad::isa_name(xgrad::active_isa())).c_str());
    std::printf("%-28s %10s %10s %10s %10s\n", "shape (m x n x k)", "median", "min", "max", "per-cpu-s");
    std::mt19937 random(1);
    for (const Shape& shape : shapes) {
      if (!std::string_view(shape.name).starts_with(only)) continue;
      Buffer a(shape.m * shape.k, random), b(shape.k * shape.n, random), c(shape.m * shape.n, random);
      const double flop = 2.0 * double(shape.m) * double(shape.n) * double(shape.k);
      using Clock = std::chrono::steady_clock;
      // Calls per round: about seconds / 7 of work, from one warm-up call.
      auto start = Clock::now();
      gemm(shape, a.data.get(), b.data.get(), c.data.get());
      const double first = std::chrono::duration<double>(Clock::now() - start).count();
      const int calls = std::max(1, static_cast<int>(seconds / 7 / std::max(first, 1e-7)));
      std::vector<double> rates, cpu_rates;
      for (int round = 0; round < 7; ++round) {
        const double cpu_start = process_cpu_seconds();
        start = Clock::now();
        for (int call = 0; call < calls; ++call) gemm(shape, a.data.get(), b.data.get(), c.data.get());
        rates.push_back(flop * calls / std::chrono::duration<double>(Clock::now() - start).count() * 1e-9);
        cpu_rates.push_back(flop * calls / (process_cpu_seconds() - cpu_start) * 1e-9);
      }
      std::sort(rates.begin(), rates.end());
      std::sort(cpu_rates.begin(), cpu_rates.end());
      std::printf("%-28s %10.1f %10.1f %10.1f %10.1f   (%zu x %zu x %zu)\n", shape.name, rates[3], rates.front(),
                  rates.back(), cpu_rates[3], shape.m, shape.n, shape.k);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "gemm-candidates: %s\n", error.what());
    return 1;
  }
  return 0;
}
