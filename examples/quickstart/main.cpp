// xgrad-quickstart: a question-type classifier for TREC built from framework operations
// only (no layers), trained with plain SGD. It shows the whole loop a user writes:
// parameters as leaf tensors, a forward pass, a loss, backward and an update.
//
//   xgrad-quickstart --data DIR [--epochs N] [--seed S]
//
// DIR holds trec/train.tsv (header `question<TAB>label<TAB>fine_label`). 90% of it trains,
// the other 10% is held out and reported after each epoch.

#include <xgrad/framework.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace xgrad;

struct Example {
  std::vector<std::int64_t> tokens;
  std::int64_t label;
};

struct Options {
  std::string data;
  int epochs = 20;
  std::uint64_t seed = 1;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "xgrad-quickstart: " << message << "\n"
            << "usage: xgrad-quickstart --data DIR [--epochs N] [--seed S]\n";
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << "usage: xgrad-quickstart --data DIR [--epochs N] [--seed S]\n"
                << "Trains a bag-of-embeddings question classifier on DIR/trec/train.tsv.\n";
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("missing value for " + flag);
    const std::string value = argv[++i];
    try {
      std::size_t used = 0;
      if (flag == "--data") {
        options.data = value;
      } else if (flag == "--epochs") {
        options.epochs = std::stoi(value, &used);
        if (used != value.size() || options.epochs < 1) throw std::invalid_argument(value);
      } else if (flag == "--seed") {
        options.seed = std::stoull(value, &used);
        if (used != value.size()) throw std::invalid_argument(value);
      } else {
        usage_error("unknown flag " + flag);
      }
    } catch (const std::logic_error&) {
      usage_error("bad value '" + value + "' for " + flag);
    }
  }
  if (options.data.empty()) usage_error("--data is required");
  return options;
}

// Reads question/label pairs, giving each new word and label the next id.
std::vector<Example> read_trec(const std::string& path, std::map<std::string, std::int64_t>& words,
                               std::map<std::string, std::int64_t>& labels) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Example> examples;
  std::string line;
  std::getline(in, line);  // header
  for (int number = 2; std::getline(in, line); ++number) {
    const auto tab = line.find('\t');
    const auto second_tab = line.find('\t', tab + 1);
    if (tab == std::string::npos || second_tab == std::string::npos) {
      throw std::runtime_error(path + ":" + std::to_string(number) + ": expected 3 tab-separated columns");
    }
    Example example;
    std::istringstream question(line.substr(0, tab));
    for (std::string word; question >> word;) {
      std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
      example.tokens.push_back(words.emplace(word, std::ssize(words)).first->second);
    }
    if (example.tokens.empty()) throw std::runtime_error(path + ":" + std::to_string(number) + ": empty question");
    example.label = labels.emplace(line.substr(tab + 1, second_tab - tab - 1), std::ssize(labels)).first->second;
    examples.push_back(std::move(example));
  }
  return examples;
}

// What padded positions hold: any word's id does, since their averaging weight is 0.
constexpr std::int64_t padding_id = 0;

// Token ids padded to the longest example, a [B, T, 1] weight of 1/length on real tokens
// (so that summing over time averages), and the labels.
struct Batch {
  Indices tokens;
  Tensor<float> averaging;
  Indices labels;
};

Batch make_batch(const std::vector<Example>& examples, std::size_t begin, std::size_t end) {
  std::size_t longest = 0;
  for (std::size_t i = begin; i < end; ++i) longest = std::max(longest, examples[i].tokens.size());
  Batch batch{Indices(Shape{end - begin, longest}, padding_id), Tensor<float>::zeros({end - begin, longest, 1}),
              Indices::from_shape({end - begin})};
  for (std::size_t i = begin; i < end; ++i) {
    const Example& example = examples[i];
    for (std::size_t t = 0; t < example.tokens.size(); ++t) {
      batch.tokens(i - begin, t) = example.tokens[t];
      batch.averaging.mutable_value()(i - begin, t, 0) = 1.0f / static_cast<float>(example.tokens.size());
    }
    batch.labels(i - begin) = example.label;
  }
  return batch;
}

Tensor<float> uniform(const Shape& shape, float scale, Generator& generator) {
  Array<float> values = Array<float>::from_shape(shape);
  for (float& v : values) v = static_cast<float>(generator.uniform(-scale, scale));
  return Tensor<float>(std::move(values), true);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  std::map<std::string, std::int64_t> words, labels;
  std::vector<Example> examples;
  try {
    examples = read_trec(options.data + "/trec/train.tsv", words, labels);
  } catch (const std::exception& e) {
    std::cerr << "xgrad-quickstart: " << e.what() << "\n";
    return 1;
  }
  Generator generator(options.seed);
  std::shuffle(examples.begin(), examples.end(), std::mt19937_64(options.seed));
  const std::size_t held_out = examples.size() / 10;
  const std::size_t train_size = examples.size() - held_out;

  // Parameters: embeddings, one hidden layer, the output layer.
  const std::size_t dim = 64, hidden = 64, classes = labels.size();
  Tensor<float> embeddings = uniform({words.size(), dim}, 0.1f, generator);
  Tensor<float> w1 = uniform({dim, hidden}, 1.0f / std::sqrt(float(dim)), generator);
  Tensor<float> b1 = Tensor<float>::zeros({hidden}, true);
  Tensor<float> w2 = uniform({hidden, classes}, 1.0f / std::sqrt(float(hidden)), generator);
  Tensor<float> b2 = Tensor<float>::zeros({classes}, true);
  std::vector<Tensor<float>> parameters{embeddings, w1, b1, w2, b2};

  auto forward = [&](const Batch& batch) {
    Tensor<float> embedded = index_select(embeddings, 0, batch.tokens);  // [B, T, dim]
    Tensor<float> average = sum(embedded * batch.averaging, {1});       // [B, dim]
    return matmul(tanh(matmul(average, w1) + b1), w2) + b2;             // [B, classes]
  };
  auto accuracy = [&](std::size_t begin, std::size_t end) {
    NoGradGuard no_grad;
    std::size_t correct = 0;
    for (std::size_t start = begin; start < end; start += 256) {
      const Batch batch = make_batch(examples, start, std::min(end, start + 256));
      const Indices predicted = argmax(forward(batch), -1);
      for (std::size_t i = 0; i < predicted.size(); ++i) correct += predicted(i) == batch.labels(i);
    }
    return 100.0 * double(correct) / double(end - begin);
  };

  std::printf("TREC: %zu training and %zu held-out questions, %zu words, %zu classes\n", train_size, held_out,
              words.size(), classes);
  const std::size_t batch_size = 32;
  const float learning_rate = 0.2f;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start_time = std::chrono::steady_clock::now();
    std::shuffle(examples.begin(), examples.begin() + std::ptrdiff_t(train_size), std::mt19937_64(options.seed + epoch));
    double total_loss = 0;
    std::size_t batches = 0;
    for (std::size_t start = 0; start < train_size; start += batch_size, ++batches) {
      const Batch batch = make_batch(examples, start, std::min(train_size, start + batch_size));
      Tensor<float> loss = cross_entropy(forward(batch), batch.labels);
      loss.backward();
      total_loss += loss.item();
      NoGradGuard no_grad;
      for (Tensor<float>& p : parameters) {
        p.mutable_value() -= learning_rate * p.grad();
        p.zero_grad();
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    std::printf("epoch %2d  loss %.4f  train accuracy %5.1f%%  held-out accuracy %5.1f%%  (%.1f s)\n", epoch,
                total_loss / double(batches), accuracy(0, train_size), accuracy(train_size, examples.size()), seconds);
  }
  return 0;
}
