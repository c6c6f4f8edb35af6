// The threading policy: parallel_for covers every index once, runs on the matrix products'
// own OpenMP threads where the build links OpenBLAS for OpenMP, and the kernels split by it
// (optimizer updates, gradient clipping) give the same bits with one thread and with two;
// beside a busy core the pool runs one thread fewer.
#define BOOST_TEST_MODULE threading
#include "xgrad_test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

using namespace xgrad;
using xgrad::testing::random_tensor;
using xgrad::testing::ScopedThreads;
using xgrad::testing::sum_error_bound;

namespace {

struct Range {
  std::size_t begin, end;
  std::thread::id thread;
};

std::vector<Range> ranges_of(std::size_t count, std::size_t grain) {
  std::mutex mutex;
  std::vector<Range> ranges;
  parallel_for(count, grain, [&](std::size_t begin, std::size_t end) {
    const std::lock_guard lock(mutex);
    ranges.push_back({begin, end, std::this_thread::get_id()});
  });
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  return ranges;
}

Tensor<float> parameter_with_gradient(std::size_t size, std::uint64_t seed) {
  Tensor<float> parameter(xt::cast<float>(random_tensor({size}, seed).value()), true);
  sum(parameter * Tensor<float>(xt::cast<float>(random_tensor({size}, seed + 1).value()))).backward();
  return parameter;
}

}  // namespace

BOOST_AUTO_TEST_CASE(parallel_for_covers_every_index_once_in_ranges_of_at_least_the_grain) {
  const ScopedThreads threads(2);
  const std::size_t grain = 1000;
  for (const std::size_t count : {0UL, 1UL, 999UL, 1000UL, 1999UL, 2000UL, 2001UL, 123457UL}) {
    const std::vector<Range> ranges = ranges_of(count, grain);
    std::size_t next = 0;
    for (const Range& range : ranges) {
      BOOST_TEST(range.begin == next);
      BOOST_TEST(range.end > range.begin);
      if (count >= grain) BOOST_TEST(range.end - range.begin >= grain);
      next = range.end;
    }
    BOOST_TEST(next == count, "count " << count);
    BOOST_TEST(ranges.size() <= 2U);
    if (count < 2 * grain) BOOST_TEST(ranges.size() == (count == 0 ? 0U : 1U));
  }
}

BOOST_AUTO_TEST_CASE(parallel_for_runs_on_the_blas_threads_and_only_as_many) {
  std::set<std::thread::id> used;
  {
    const ScopedThreads threads(2);
    for (const Range& range : ranges_of(1 << 20, 1)) used.insert(range.thread);
  }
  // The Makefile's build links the OpenMP variant of OpenBLAS, so two threads split the loop;
  // failing here means the process loaded another OpenBLAS than the one xgrad was built for.
  BOOST_TEST(used.size() == (XGRAD_EXPECT_PARALLEL_LOOPS ? 2U : 1U));
  BOOST_TEST(num_threads() == 1);
  BOOST_TEST(ranges_of(1 << 20, 1).size() == 1U);  // one thread: the calling one alone
}

BOOST_AUTO_TEST_CASE(updates_and_clipping_give_the_same_bits_with_one_and_two_threads) {
  const std::size_t size = 5 * elementwise_grain + 123;  // several ranges, an uneven tail
  auto train = [&](int threads) {
    const ScopedThreads scoped(threads);
    Tensor<float> parameter = parameter_with_gradient(size, 7);
    const double norm = optim::clip_grad_norm(std::vector<Tensor<float>>{parameter}, 0.5);
    optim::Adam<float> adam({parameter}, {.lr = 0.01, .weight_decay = 0.1});
    adam.step();
    adam.step();
    return std::pair(norm, Array<float>(parameter.value()));
  };
  const auto [norm_one, value_one] = train(1);
  const auto [norm_two, value_two] = train(2);
  BOOST_TEST(norm_one == norm_two);
  BOOST_TEST(norm_one > 0.5);  // clipping took place
  BOOST_TEST(xt::all(xt::equal(value_one, value_two)));
}

BOOST_AUTO_TEST_CASE(ops_split_over_threads_give_the_same_bits_with_one_and_two_threads) {
  // Large enough for every split op to use both threads: concat, reshape, cross-entropy rows,
  // dropout's mask, the zero-filled gradient buffers and linear's bias gradient. Linear's
  // output is checked apart: OpenBLAS promises no order of summation, and with another thread
  // count it may choose other kernels or blocks (it does with OPENBLAS_CORETYPE=Haswell), so
  // each element agrees only within the rounding bound of its sum of 257 terms.
  const std::size_t rows = 300, width = 256;
  auto run = [&](int threads) {
    const ScopedThreads scoped(threads);
    const Tensor<float> a(xt::cast<float>(random_tensor({rows, width}, 11).value()), true);
    const Tensor<float> b(xt::cast<float>(random_tensor({rows, width}, 12).value()), true);
    Indices targets = Indices::from_shape({rows / 2, 2});
    for (std::size_t i = 0; i < targets.size(); ++i) targets.data()[i] = static_cast<std::int64_t>((i * 37) % (2 * width));
    Generator generator(5);
    const Tensor<float> joined = concat(std::vector<Tensor<float>>{dropout(a, 0.3, true, generator), b * 2.0f}, 1);
    Tensor<float> loss = cross_entropy(reshape(joined, {static_cast<std::int64_t>(rows / 2), 2, -1}), targets);
    loss.backward();
    const Tensor<float> weight(xt::cast<float>(random_tensor({700, width}, 13).value()));
    const Tensor<float> bias(xt::cast<float>(random_tensor({700}, 14).value()), true);
    const Tensor<float> features(xt::cast<float>(random_tensor({rows, width}, 15).value()));
    const Tensor<float> projected = linear(features, weight, bias);
    sum(projected * Tensor<float>(xt::cast<float>(random_tensor({rows, 700}, 16).value()))).backward();
    // sum_k |x_ik w_jk| + |b_j|: the magnitudes behind each output element.
    Array<double> magnitudes = Array<double>::from_shape({rows, 700});
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t j = 0; j < 700; ++j) {
        double total = std::abs(bias.value()(j));
        for (std::size_t k = 0; k < width; ++k) total += std::abs(double(features.value()(i, k)) * weight.value()(j, k));
        magnitudes(i, j) = total;
      }
    }
    return std::tuple(std::vector<Array<float>>{loss.value(), a.grad(), b.grad(), bias.grad()},
                      Array<float>(projected.value()), magnitudes);
  };
  const auto [one, projected_one, magnitudes] = run(1);
  const auto [two, projected_two, unused] = run(2);
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST(xt::all(xt::equal(one[i], two[i])), "result " << i);
  // Each order may be that far from the exact sum, so two orders twice as far from each other.
  std::size_t outside = 0;
  for (std::size_t i = 0; i < projected_one.size(); ++i) {
    const double bound = 2 * sum_error_bound<float>(width + 1, magnitudes.data()[i]);
    outside += std::abs(double(projected_one.data()[i]) - double(projected_two.data()[i])) > bound;
  }
  BOOST_TEST(outside == 0U, outside << " of " << projected_one.size() << " outputs differ by more than their bound");
}

BOOST_AUTO_TEST_CASE(the_pool_runs_one_thread_fewer_while_another_process_holds_a_core) {
  set_num_threads(2);
  BOOST_TEST_REQUIRE(requested_threads() == 2);
  const pid_t spinner = fork();
  BOOST_TEST_REQUIRE(spinner >= 0);
  if (spinner == 0) {
    for (;;) asm volatile("" ::: "memory");  // busy until the parent's SIGKILL
  }
  // Four looks, 100 ms apart, with the spinner on a core all along.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(450);
  while (std::chrono::steady_clock::now() < until) parallel_for(1, 1, [](std::size_t, std::size_t) {});
  const int threads_beside_the_spinner = num_threads();
  kill(spinner, SIGKILL);
  waitpid(spinner, nullptr, 0);
  BOOST_TEST(threads_beside_the_spinner == 1);
  BOOST_TEST(requested_threads() == 2);  // what was asked for stays
  set_num_threads(1);
}
