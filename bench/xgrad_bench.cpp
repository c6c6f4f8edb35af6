// xgrad-bench: runs one named workload and prints one JSON line with its speed.
//
//   xgrad-bench --workload NAME [--threads N] [--data DIR] [--steps N] [--export DIR] [--sum-after-backward]
//
// Workloads: seq2seq-train (the classic Multi30K RNNsearch model, batch 128, Adam, clip 1),
// classifier-train (bi-LSTM 256 with additive attention pooling on SST-2, batch 64),
// decode-greedy-1 and decode-greedy-64 (greedy decoding of Multi30K validation sentences
// with batch 1 and 64), transformer-train (a 3+3-layer Transformer, d_model 256, 4 heads,
// feed-forward 1024, on the same batches as seq2seq-train), transformer-decode-1 (its batch-1
// greedy decoding over the key/value cache), image-train (xgrad-images' model on
// Fashion-MNIST, batch 64), read-bound (a read of the weights batch-1 decoding multiplies per
// token: its memory roofline), graph-overhead (10^6 tiny ops forward and backward), gemm
// (single-precision matrix product peak), and the machine's own limits: fma-peak (float32
// multiply-adds in registers at the widest vector width) and read-bandwidth (sustained reads
// from memory).
//
// With --export DIR the model workloads write their initial weights and the exact batches
// they run to DIR, so that bench/pytorch_bench.py can run the identical model on identical
// batches. Both sides print check_loss, the loss of the first batch without dropout, which
// agrees when the two compute the same thing.

#include <sys/resource.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <xgrad/framework.h>
#include <xgrad/models/batching.h>
#include <xgrad/models/classification_data.h>
#include <xgrad/models/classifier.h>
#include <xgrad/models/image_classifier.h>
#include <xgrad/models/image_data.h>
#include <xgrad/models/seq2seq.h>
#include <xgrad/models/transformer_translator.h>
#include <xgrad/models/translation_data.h>
#include <xgrad/training/distributed.h>

#include "cli.h"

namespace {

using namespace xgrad;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string workload;
  std::size_t threads = 1, steps = 10, warmup = 2;
  fs::path data, export_dir;
  bool sum_after_backward = false;
};

struct Result {
  double tokens_per_second = 0;
  double ms_per_step = 0;
  double gflop_per_step = 0;
  double check_loss = 0;
  std::size_t steps = 0;
  // Under mpirun: the gradient's size, and the time of its allreduce per step, within the
  // training steps (waits for the slowest rank included) and alone, all ranks ready.
  double gradient_mb = 0, allreduce_ms_in_step = 0, allreduce_ms_alone = 0;
  double bytes_per_token = 0;  // memory one token (one pass) reads, for workloads bound by bytes
  std::string_view isa;        // the instruction set of a workload's own vector loop
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

void print(const Flags& flags, const Result& r) {
  const int ranks = distributed::world().size();
  std::printf(
      "{\"impl\": \"xgrad\", \"workload\": \"%s\", \"threads\": %zu, \"tokens_per_s\": %.1f, \"ms_per_step\": %.3f, "
      "\"peak_rss_mb\": %.1f, \"gflop_per_step\": %.4f, \"steps\": %zu, \"check_loss\": %.6f",
      flags.workload.c_str(), flags.threads, r.tokens_per_second, r.ms_per_step, peak_rss_mb(), r.gflop_per_step, r.steps,
      r.check_loss);
  if (ranks > 1) {
    std::printf(", \"ranks\": %d, \"allreduce\": \"%s\", \"gradient_mb\": %.2f, \"allreduce_ms_in_step\": %.3f, "
                "\"allreduce_ms_alone\": %.3f",
                ranks, flags.sum_after_backward ? "after backward" : "overlapped", r.gradient_mb, r.allreduce_ms_in_step,
                r.allreduce_ms_alone);
  }
  if (r.gflop_per_step > 0) std::printf(", \"gflop_per_s\": %.2f", r.gflop_per_step / (r.ms_per_step / 1000.0));
  if (r.bytes_per_token > 0) {
    std::printf(", \"bytes_per_token\": %.0f, \"gb_per_s\": %.2f", r.bytes_per_token,
                r.bytes_per_token * r.tokens_per_second / 1e9);
  }
  if (!r.isa.empty()) std::printf(", \"isa\": \"%.*s\"", static_cast<int>(r.isa.size()), r.isa.data());
  std::printf("}\n");
}

// Times `steps` calls of step() after `warmup` untimed ones; step(i) returns its token count.
template <class Step>
Result timed(std::size_t warmup, std::size_t steps, Step&& step) {
  for (std::size_t i = 0; i < warmup; ++i) step(i);
  const std::uint64_t flops_before = blas::flop_count();
  std::size_t tokens = 0;
  const Clock::time_point start = Clock::now();
  for (std::size_t i = warmup; i < warmup + steps; ++i) tokens += step(i);
  const double seconds = seconds_since(start);
  Result result;
  result.steps = steps;
  result.tokens_per_second = double(tokens) / seconds;
  result.ms_per_step = 1000.0 * seconds / double(steps);
  result.gflop_per_step = double(blas::flop_count() - flops_before) / 1e9 / double(steps);
  return result;
}

// The first `count` batches of an epoch; under mpirun, this rank's share of each, as the
// programs' training loop gives it (models::rank_share).
std::vector<models::Batch> first_batches(const std::vector<std::size_t>& lengths, std::size_t batch_size, std::size_t count) {
  Generator order(1);
  std::vector<models::Batch> batches = models::BucketBatchSampler(lengths, {.batch_size = batch_size}).epoch(order);
  if (batches.size() < count) throw std::invalid_argument("the corpus has too few batches for this many steps");
  batches.resize(count);
  const distributed::ProcessGroup& group = distributed::world();
  const auto rank = static_cast<std::size_t>(group.rank()), size = static_cast<std::size_t>(group.size());
  for (models::Batch& rows : batches) {
    rows = models::rank_share(rows, rank, size);
    if (rows.empty()) throw std::invalid_argument("a batch has fewer examples than there are ranks");
  }
  return batches;
}

void export_indices(safetensors::Writer& writer, const std::string& name, const std::vector<std::size_t>& values) {
  Indices array = Indices::from_shape({values.size()});
  for (std::size_t i = 0; i < values.size(); ++i) array(i) = static_cast<std::int64_t>(values[i]);
  writer.add(name, array);
}

// The loss of batch 0 in evaluation mode (check_loss, which both sides print), then timed Adam
// steps (rate 1e-3) with the gradient norm clipped at `clip`: loss_of(i) is batch i's loss, a
// mean over mean_over(i) terms, and count_of(i) what the speed counts. Under mpirun each rank
// has its share of every batch: its loss is weighted by its share of the terms and the
// gradients are summed (distributed::GradientReducer), as in training::Trainer.
template <class Model, class LossOf, class MeanOver, class CountOf>
Result timed_training(const Flags& flags, Model& model, double clip, LossOf&& loss_of, MeanOver&& mean_over,
                      CountOf&& count_of) {
  distributed::ProcessGroup& group = distributed::world();
  const bool parallel = group.size() > 1;
  const auto weighted_loss = [&](std::size_t i) {
    Tensor<float> loss = loss_of(i);
    if (!parallel) return loss;
    std::array<double, 1> total{static_cast<double>(mean_over(i))};
    group.sum(std::span<double>(total));
    return loss * static_cast<float>(static_cast<double>(mean_over(i)) / total[0]);
  };
  model.eval();
  std::array<double, 1> check_loss{weighted_loss(0).item()};
  group.sum(std::span<double>(check_loss));
  model.train();
  distributed::broadcast_state(model, group);
  distributed::GradientReducer reducer(model.parameters(), group, {.overlap = !flags.sum_after_backward});
  optim::Adam<float> optimizer(model.named_parameters(), {.lr = 1e-3});
  double allreduce_seconds = 0;
  const auto sum_gradients = [&] {
    const Clock::time_point start = Clock::now();
    reducer.sum();
    return seconds_since(start);
  };
  Result result = timed(flags.warmup, flags.steps, [&](std::size_t i) {
    Tensor<float> loss = weighted_loss(i);
    reducer.prepare_for_backward();
    loss.backward();
    if (parallel) {
      const double seconds = sum_gradients();
      if (i >= flags.warmup) allreduce_seconds += seconds;
    }
    optim::clip_grad_norm(model.parameters(), clip);
    optimizer.step();
    optimizer.zero_grad();
    return count_of(i);
  });
  result.check_loss = check_loss[0];
  if (parallel) {
    std::array<double, 1> tokens{result.tokens_per_second};  // every rank timed the same steps
    group.sum(std::span<double>(tokens));
    result.tokens_per_second = tokens[0];
    result.allreduce_ms_in_step = 1000 * allreduce_seconds / double(flags.steps);
    std::size_t gradient_floats = 0;
    for (const Tensor<float>& parameter : model.parameters()) gradient_floats += parameter.size();
    result.gradient_mb = double(gradient_floats * sizeof(float)) / 1e6;
    weighted_loss(0).backward();  // a gradient in every parameter, then allreduces with nothing else running
    const std::size_t repeats = 10;
    sum_gradients();
    double alone_seconds = 0;
    for (std::size_t r = 0; r < repeats; ++r) alone_seconds += sum_gradients();
    result.allreduce_ms_alone = 1000 * alone_seconds / double(repeats);
  }
  return result;
}

// Multi30K's training corpus and its vocabularies (words seen at least twice, as
// xgrad-translate builds them), which fix the translation workloads' model sizes.
struct Multi30k {
  models::ParallelCorpus train;
  models::Vocabulary source, target;

  models::Seq2SeqOptions model_options() const {
    return {.source_vocabulary = source.size(), .target_vocabulary = target.size()};
  }
  // The Transformer of the issue: 3+3 layers, d_model 256, 4 heads, feed-forward 1024,
  // pre-norm, tied output, dropout 0.1.
  models::TransformerTranslatorOptions transformer_options() const {
    return {.source_vocabulary = source.size(), .target_vocabulary = target.size()};
  }
};

Multi30k read_multi30k(const Flags& flags) {
  const fs::path corpus_dir = flags.data / "multi30k";
  models::ParallelCorpus train = models::read_parallel_corpus(corpus_dir / "train.de", corpus_dir / "train.en");
  const auto specials = models::translation_specials();
  models::Vocabulary source = models::Vocabulary::build(train.source, {.specials = specials, .min_frequency = 2});
  models::Vocabulary target = models::Vocabulary::build(train.target, {.specials = specials, .min_frequency = 2});
  return {std::move(train), std::move(source), std::move(target)};
}

// Trains `model` on the first Multi30K training batches (batch 128, label smoothing 0.1,
// Adam, clip 1); `name` prefixes the exported files.
Result translation_train(const Flags& flags, const Multi30k& multi30k, models::Translator<float>& model,
                         const std::string& name) {
  const models::EncodedPairs pairs = models::encode_pairs(multi30k.train, multi30k.source, multi30k.target);
  const std::vector<models::Batch> batches = first_batches(pairs.lengths, 128, flags.warmup + flags.steps);
  std::vector<models::TranslationBatch> prepared;
  for (const models::Batch& rows : batches) prepared.push_back(models::make_batch(pairs, rows));
  if (!flags.export_dir.empty()) {
    nn::save_state_dict(model, (flags.export_dir / (name + "-weights.safetensors")).string(),
                        {{"config", model.configuration()}});
    safetensors::Writer writer;
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      const std::string prefix = "batch." + std::to_string(i) + ".";
      writer.add(prefix + "source", prepared[i].source.ids);
      export_indices(writer, prefix + "lengths", prepared[i].source.lengths);
      writer.add(prefix + "target_inputs", prepared[i].target.inputs);
      writer.add(prefix + "target_outputs", prepared[i].target.outputs);
    }
    writer.write((flags.export_dir / (name + "-batches.safetensors")).string());
  }
  return timed_training(
      flags, model, 1.0,
      [&](std::size_t i) { return model.loss(prepared[i].source, prepared[i].target, {.label_smoothing = 0.1}); },
      [&](std::size_t i) { return prepared[i].target_tokens; }, [&](std::size_t i) { return prepared[i].target_tokens; });
}

// The classic configuration of the issue: bi-GRU 512 encoder, GRU 512 decoder, additive
// attention, embeddings 256, dropout 0.5.
Result seq2seq_train(const Flags& flags) {
  const Multi30k multi30k = read_multi30k(flags);
  manual_seed(1);
  models::Seq2Seq<float> model(multi30k.model_options());
  return translation_train(flags, multi30k, model, "seq2seq");
}

Result transformer_train(const Flags& flags) {
  const Multi30k multi30k = read_multi30k(flags);
  manual_seed(1);
  models::TransformerTranslator<float> model(multi30k.transformer_options());
  return translation_train(flags, multi30k, model, "transformer");
}

// The classifier of the issue: embeddings 128, bi-LSTM 256, additive attention pooling,
// dropout 0.5, batch 64, Adam, clip 5, on SST-2's training phrases.
Result classifier_train(const Flags& flags) {
  const models::LabelledTexts data = models::read_labelled_tsv(flags.data / "sst2" / "train.tsv");
  const models::Vocabulary vocabulary = models::Vocabulary::build(data.texts, {.specials = models::classification_specials()});
  const models::LabelSet labels = models::LabelSet::build(data.labels);
  const models::EncodedTexts texts = models::encode_texts(data, vocabulary, labels);
  const std::vector<models::Batch> batches = first_batches(texts.lengths, 64, flags.warmup + flags.steps);
  std::vector<std::pair<models::PaddedBatch, Indices>> prepared;
  for (const models::Batch& rows : batches) {
    Indices targets = Indices::from_shape({rows.size()});
    for (std::size_t i = 0; i < rows.size(); ++i) targets(i) = texts.labels[rows[i]];
    prepared.emplace_back(models::make_batch(texts, rows), targets);
  }
  manual_seed(1);
  models::SequenceClassifier<float> model({.vocabulary = vocabulary.size(), .classes = labels.size()});
  if (!flags.export_dir.empty()) {
    nn::save_state_dict(model, (flags.export_dir / "classifier-weights.safetensors").string(),
                        {{"config", models::to_json(model.options())}});
    safetensors::Writer writer;
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      const std::string prefix = "batch." + std::to_string(i) + ".";
      writer.add(prefix + "tokens", prepared[i].first.ids);
      export_indices(writer, prefix + "lengths", prepared[i].first.lengths);
      writer.add(prefix + "labels", prepared[i].second);
    }
    writer.write((flags.export_dir / "classifier-batches.safetensors").string());
  }
  return timed_training(
      flags, model, 5.0, [&](std::size_t i) { return model.loss(prepared[i].first, prepared[i].second); },
      [&](std::size_t i) { return prepared[i].second.size(); },
      [&](std::size_t i) {
        std::size_t tokens = 0;
        for (std::size_t length : prepared[i].first.lengths) tokens += length;
        return tokens;
      });
}

// The image classifier of examples/images/RESULTS.md (ImageClassifierOptions' defaults: two
// convolution stages with batch norm to a 7 x 7 grid of 64 channels, one self-attention layer
// over the regions, additive attention pooling, dropout 0.1) on Fashion-MNIST's training
// images, found as xgrad-images' users find them (models::find_fashion_mnist), batch 64, Adam,
// clip 5; images/s.
Result image_train(const Flags& flags) {
  const std::optional<models::FashionMnistFiles> files = models::find_fashion_mnist();
  if (!files) {
    throw file_error(detail::message("image-train: Fashion-MNIST is neither in $XGRAD_DATA/fashion-mnist nor in ",
                                     models::debian_fashion_mnist_directory, "; install dataset-fashion-mnist"));
  }
  const models::LabelledImages data = models::read_labelled_images(files->train_images, files->train_labels);
  const std::vector<models::Batch> batches =
      first_batches(std::vector<std::size_t>(data.size(), 1), 64, flags.warmup + flags.steps);
  std::vector<std::pair<Tensor<float>, Indices>> prepared;
  for (const models::Batch& rows : batches) {
    prepared.emplace_back(Tensor<float>(models::image_batch<float>(data, rows)), models::label_batch(data, rows));
  }
  manual_seed(1);
  models::ImageClassifier<float> model(models::ImageClassifierOptions{});
  if (!flags.export_dir.empty()) {
    nn::save_state_dict(model, (flags.export_dir / "image-weights.safetensors").string(),
                        {{"config", model.configuration()}});
    safetensors::Writer writer;
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      writer.add("batch." + std::to_string(i) + ".images", prepared[i].first.value());
      writer.add("batch." + std::to_string(i) + ".labels", prepared[i].second);
    }
    writer.write((flags.export_dir / "image-batches.safetensors").string());
  }
  return timed_training(
      flags, model, 5.0, [&](std::size_t i) { return model.loss(prepared[i].first, prepared[i].second); },
      [&](std::size_t i) { return prepared[i].second.size(); },
      [&](std::size_t i) { return prepared[i].second.size(); });
}

// Greedy decoding of validation sentences in order, `batch_size` at a time, with a model's
// initial weights (exported, so that both sides emit the same tokens); `name` prefixes the
// exported files.
Result decode_greedy(const Flags& flags, const Multi30k& multi30k, models::Translator<float>& model, std::size_t batch_size,
                     const std::string& name) {
  const fs::path corpus_dir = flags.data / "multi30k";
  const models::ParallelCorpus valid = models::read_parallel_corpus(corpus_dir / "val.de", corpus_dir / "val.en");
  const models::EncodedPairs pairs = models::encode_pairs(valid, multi30k.source, multi30k.target);
  model.eval();
  std::vector<models::PaddedBatch> prepared;
  for (std::size_t i = 0; i < flags.warmup + flags.steps; ++i) {
    models::Batch rows;
    for (std::size_t k = 0; k < batch_size; ++k) rows.push_back((i * batch_size + k) % pairs.source.size());
    prepared.push_back(models::source_batch(pairs, rows));
  }
  if (!flags.export_dir.empty()) {
    nn::save_state_dict(model, (flags.export_dir / (name + "-weights.safetensors")).string(),
                        {{"config", model.configuration()}});
    safetensors::Writer writer;
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      writer.add("batch." + std::to_string(i) + ".source", prepared[i].ids);
      export_indices(writer, "batch." + std::to_string(i) + ".lengths", prepared[i].lengths);
    }
    writer.write((flags.export_dir / (name + "-batches.safetensors")).string());
  }
  // The search stops at <eos> or after 2 S + 10 steps, as the PyTorch side does.
  return timed(flags.warmup, flags.steps, [&](std::size_t i) {
    std::size_t tokens = 0;
    for (const models::Translation& t : model.greedy(prepared[i], {.max_length_ratio = 2.0, .max_length_extra = 10})) {
      tokens += t.attention.shape()[0];  // decoder steps taken, <eos> included
    }
    return tokens;
  });
}

// `format`: the weights rounded to int8 or bf16 (PyTorch's side quantises decode-greedy-1's
// float32 export itself).
Result seq2seq_decode(const Flags& flags, std::size_t batch_size, WeightFormat format = WeightFormat::float32) {
  const Multi30k multi30k = read_multi30k(flags);
  manual_seed(1);
  models::Seq2Seq<float> model(multi30k.model_options());
  if (format != WeightFormat::float32) model.set_weight_format(format);
  return decode_greedy(flags, multi30k, model, batch_size, "decode-" + std::to_string(batch_size));
}

Result transformer_decode(const Flags& flags) {
  const Multi30k multi30k = read_multi30k(flags);
  manual_seed(1);
  models::TransformerTranslator<float> model(multi30k.transformer_options());
  return decode_greedy(flags, multi30k, model, 1, "transformer-decode-1");
}

// The memory roofline of decode-greedy-1: a read of as many floats as batch-1 greedy decoding
// multiplies per generated token (the decoder cell, the attention's query side and the output
// layer), on 2 MB pages like the parameters and split over the threads like the products. A
// pass counts as a token, a step is 100 passes: a decoder that did nothing but read its
// weights once per token would run about this fast.
Result read_bound(const Flags& flags) {
  const models::Seq2Seq<float> model(read_multi30k(flags).model_options());
  std::size_t floats_per_token = 0;
  for (const auto& [name, parameter] : model.named_parameters()) {
    for (const char* per_token : {"decoder.", "output.", "attention.query_projection.", "attention.score."}) {
      if (name.starts_with(per_token)) floats_per_token += parameter.size();
    }
  }
  Array<float> weights = Array<float>::from_shape({floats_per_token});
  advise_large_pages(weights);
  std::fill(weights.begin(), weights.end(), 1.0f);
  const float* data = weights.data();
  std::atomic<std::uint32_t> checksum = 0;  // where the sums go, so that the reads are not optimised away
  const std::size_t passes_per_step = 100;
  Result result = timed(flags.warmup, flags.steps, [&](std::size_t) {
    for (std::size_t pass = 0; pass < passes_per_step; ++pass) {
      parallel_for(floats_per_token, elementwise_grain, [&](std::size_t begin, std::size_t end) {
        std::uint32_t sum = 0;  // integer, so that the compiler may reorder the additions into vectors
        for (std::size_t i = begin; i < end; ++i) sum += std::bit_cast<std::uint32_t>(data[i]);
        checksum.fetch_add(sum, std::memory_order_relaxed);
      });
    }
    return passes_per_step;
  });
  result.bytes_per_token = double(floats_per_token * sizeof(float));
  return result;
}

// A chain of 10^6 scalar multiplications on a one-element tensor, then its backward: the
// cost of recording, running and freeing a node, with no arithmetic to hide behind.
Result graph_overhead(const Flags& flags) {
  const std::size_t ops = 1000000;
  Tensor<float> x = Tensor<float>::from({1.0f}, {1}, true);
  return timed(1, flags.steps, [&](std::size_t) {
    Tensor<float> y = x;
    for (std::size_t i = 0; i < ops; ++i) y = y * 1.0000001f;
    y.backward();
    x.zero_grad();
    return ops;
  });
}

// Single-precision GEMM of 2048 x 2048 matrices: the peak the roofline divides by.
Result gemm_peak(const Flags& flags) {
  const std::size_t n = 2048;
  Array<float> a = Array<float>::from_shape({n, n}), b = Array<float>::from_shape({n, n}), c = Array<float>::from_shape({n, n});
  Generator generator(1);
  for (float& v : a) v = static_cast<float>(generator.uniform());
  for (float& v : b) v = static_cast<float>(generator.uniform());
  return timed(1, flags.steps, [&](std::size_t) {
    blas::gemm<float>(false, false, n, n, n, 1.0f, a.data(), b.data(), 0.0f, c.data());
    return std::size_t{0};
  });
}

// The machine's own roofline, which no kernel of any library passes: the cores' float32
// multiply-add peak and memory's sustained read bandwidth. Both loops are kernels over Isa, at
// the widest instruction set the CPU supports (XGRAD_MAX_ISA caps it; the line names it), and
// run on exactly --threads threads, each on its own share: the pool does not follow busy cores
// here, since a peak measured on fewer threads than its line says would be no peak.

// Vectors of `Element` as wide as `isa`'s registers (GCC's vector extension).
template <Isa isa, class Element>
struct Vectors {
  static constexpr std::size_t bytes = isa == Isa::avx512 ? 64 : (isa == Isa::avx2 ? 32 : 16);
  static constexpr std::size_t lanes = bytes / sizeof(Element);
  typedef Element Vector __attribute__((vector_size(bytes)));

  // The sum of every lane of every vector in `vectors`.
  template <std::size_t count>
  XGRAD_KERNEL static Element lane_sum(const Vector (&vectors)[count]) {
    Element total = 0;
    for (const Vector& vector : vectors) {
      for (std::size_t lane = 0; lane < lanes; ++lane) total += vector[lane];
    }
    return total;
  }
};

// `iterations` rounds of one multiply-add on each of `chains` independent vectors held in
// registers, so that the FMA units never wait for a result: Zen 4 and 5 and recent Intel cores
// issue two FMAs a cycle with a latency of 4 cycles, 8 in flight; 12 chains leave slack and
// fit AVX2's 16 registers beside the two operands. Each chain converges to 1 (x <- 0.9 x +
// 0.1), never to a denormal; their sum goes to `total`, so that no round is dead code.
// Returns the floating-point operations done (a multiply-add counts two).
template <Isa isa>
struct MultiplyAddChains {
  using Floats = Vectors<isa, float>;
  using Vector = typename Floats::Vector;
  static constexpr std::size_t chains = 12;

  XGRAD_KERNEL static std::size_t run(std::size_t iterations, float scale, float offset, float* total) {
    Vector sum[chains];
    for (std::size_t c = 0; c < chains; ++c) sum[c] = Vector{} + float(c);
    const Vector scales = Vector{} + scale, offsets = Vector{} + offset;
    for (std::size_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
      for (std::size_t c = 0; c < chains; ++c) sum[c] = sum[c] * scales + offsets;
    }
    *total = Floats::lane_sum(sum);
    return 2 * iterations * chains * Floats::lanes;
  }
};

// float32 GFLOP/s of MultiplyAddChains: 2^26 rounds per thread and step (about 0.1 s).
Result fma_peak(const Flags& flags) {
  set_follow_busy_cores(false);
  const Isa isa = active_isa();
  const std::size_t iterations = std::size_t(1) << 26;
  std::atomic<std::size_t> flops = 0;
  std::atomic<float> checksum = 0;  // where the chains' sums go, so that the loop is not optimised away
  Result result = timed(flags.warmup, flags.steps, [&](std::size_t) {
    parallel_for(flags.threads, 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t thread = begin; thread < end; ++thread) {
        float total = 0;
        flops.fetch_add(dispatch_to<MultiplyAddChains>(isa, iterations, 0.9f, 0.1f, &total), std::memory_order_relaxed);
        checksum.store(total, std::memory_order_relaxed);
      }
    });
    return std::size_t{0};
  });
  result.gflop_per_step = double(flops.load()) / 1e9 / double(flags.warmup + flags.steps);
  result.isa = isa_name(isa);
  return result;
}

// The wrapping sum of the bits of values[0 .. count), count a multiple of 64, read with
// vector loads into 4 independent sums (integer: one cycle each, so the loads set the pace).
template <Isa isa>
struct SumBits {
  using Words = Vectors<isa, std::uint32_t>;
  using Vector = typename Words::Vector;
  static constexpr std::size_t chains = 4;

  XGRAD_KERNEL static std::uint32_t run(const float* values, std::size_t count) {
    Vector sum[chains] = {};
    for (std::size_t i = 0; i < count; i += chains * Words::lanes) {
#pragma GCC unroll 4
      for (std::size_t c = 0; c < chains; ++c) {
        Vector loaded;
        std::memcpy(&loaded, values + i + c * Words::lanes, sizeof loaded);
        sum[c] += loaded;
      }
    }
    return Words::lane_sum(sum);
  }
};

// Sustained read bandwidth: 4 passes per step over 1 GiB (32 times the development machine's
// 32 MB L3, so that no pass finds the previous one in cache), on 2 MB pages like read-bound,
// split over the threads in chunks of 16 KiB. A pass counts as a token.
Result read_bandwidth(const Flags& flags) {
  set_follow_busy_cores(false);
  const Isa isa = active_isa();
  const std::size_t chunk = 4096, floats = std::size_t(1) << 28, passes_per_step = 4;
  Array<float> buffer = Array<float>::from_shape({floats});
  advise_large_pages(buffer);
  std::fill(buffer.begin(), buffer.end(), 1.0f);
  const float* data = buffer.data();
  std::atomic<std::uint32_t> checksum = 0;  // where the sums go, so that the reads are not optimised away
  Result result = timed(flags.warmup, flags.steps, [&](std::size_t) {
    for (std::size_t pass = 0; pass < passes_per_step; ++pass) {
      parallel_for(floats / chunk, 1, [&](std::size_t begin, std::size_t end) {
        checksum.fetch_add(dispatch_to<SumBits>(isa, data + begin * chunk, (end - begin) * chunk),
                           std::memory_order_relaxed);
      });
    }
    return passes_per_step;
  });
  result.bytes_per_token = double(floats * sizeof(float));
  result.isa = isa_name(isa);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  cli::Program program("xgrad-bench", "Runs one benchmark workload and prints its speed as one JSON line.");
  Flags flags;
  program.choice("--workload", flags.workload,
                 {"seq2seq-train", "classifier-train", "decode-greedy-1", "decode-greedy-1-int8", "decode-greedy-1-bf16",
                  "decode-greedy-64", "transformer-train", "seq2seq-train-bf16", "classifier-train-bf16",
                  "transformer-train-bf16",
                  "transformer-decode-1", "image-train", "read-bound", "graph-overhead", "gemm", "fma-peak",
                  "read-bandwidth"},
                 "what to run").required();
  program.size("--threads", flags.threads, "N", "threads for matrix products").range(1, 256);
  program.size("--steps", flags.steps, "N", "timed steps (after the warm-up)").range(1, 100000);
  program.size("--warmup", flags.warmup, "N", "untimed steps first").range(0, 1000);
  program.path("--data", flags.data, "DIR", "directory holding multi30k/ and sst2/ (image-train finds Fashion-MNIST itself)");
  program.path("--export", flags.export_dir, "DIR", "write the initial weights and the batches here for pytorch_bench.py");
  program.flag("--sum-after-backward", flags.sum_after_backward,
               "under mpirun: sum the gradients after backward instead of while it goes on");
  return cli::run_main(program, argc, argv, [&](const std::string&) {
    set_num_threads(static_cast<int>(flags.threads));
    keep_freed_heap_memory();  // as the example programs' training loop does
    const bool needs_data = flags.workload != "graph-overhead" && flags.workload != "gemm" && flags.workload != "image-train" &&
                            flags.workload != "fma-peak" && flags.workload != "read-bandwidth";
    if (needs_data && flags.data.empty()) throw cli::UsageError("--data is required for " + flags.workload);
    if (distributed::world().size() > 1) {  // data parallelism is for training
      if (!flags.workload.ends_with("-train")) throw cli::UsageError(flags.workload + " runs in one process, not under mpirun");
      if (!flags.export_dir.empty()) throw cli::UsageError("--export writes the global batches: run it in one process");
    }
    // The rounded workloads are their float32 workload's model and batches in another format.
    if ((flags.workload.ends_with("-int8") || flags.workload.ends_with("-bf16")) && !flags.export_dir.empty()) {
      const std::string float32_workload = flags.workload.substr(0, flags.workload.find_last_of('-'));
      throw cli::UsageError(flags.workload + " has no export: PyTorch's side reads " + float32_workload + "'s");
    }
    // Mixed-precision training: the same steps with bf16 products (blas.h).
    if (flags.workload.ends_with("-train-bf16")) blas::set_float_products(blas::FloatProducts::bf16);
    if (!flags.export_dir.empty()) fs::create_directories(flags.export_dir);
    Result result;
    if (flags.workload.starts_with("seq2seq-train")) result = seq2seq_train(flags);
    if (flags.workload.starts_with("classifier-train")) result = classifier_train(flags);
    if (flags.workload == "decode-greedy-1") result = seq2seq_decode(flags, 1);
    if (flags.workload == "decode-greedy-1-int8") result = seq2seq_decode(flags, 1, WeightFormat::int8);
    if (flags.workload == "decode-greedy-1-bf16") result = seq2seq_decode(flags, 1, WeightFormat::bf16);
    if (flags.workload == "decode-greedy-64") result = seq2seq_decode(flags, 64);
    if (flags.workload.starts_with("transformer-train")) result = transformer_train(flags);
    if (flags.workload == "transformer-decode-1") result = transformer_decode(flags);
    if (flags.workload == "image-train") result = image_train(flags);
    if (flags.workload == "read-bound") result = read_bound(flags);
    if (flags.workload == "graph-overhead") result = graph_overhead(flags);
    if (flags.workload == "gemm") result = gemm_peak(flags);
    if (flags.workload == "fma-peak") result = fma_peak(flags);
    if (flags.workload == "read-bandwidth") result = read_bandwidth(flags);
    print(flags, result);
    return 0;
  });
}
