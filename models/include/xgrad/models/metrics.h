#pragma once
// Classification metrics from a confusion matrix: accuracy, per-class precision, recall and
// F1, and their macro averages, with scikit-learn's conventions (zero_division=0).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace xgrad::models {

struct ClassScores {
  double precision = 0.0;  // 0 when the class is never predicted
  double recall = 0.0;     // 0 when the class never occurs
  double f1 = 0.0;         // 0 when precision + recall is 0
  std::size_t support = 0; // examples whose true class this is
};

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(std::size_t classes);

  // xgrad::index_error for a class outside [0, classes()).
  void add(std::int64_t truth, std::int64_t prediction);
  // Pairs truths[i], predictions[i]; different lengths are std::invalid_argument.
  void add(std::span<const std::int64_t> truths, std::span<const std::int64_t> predictions);

  std::size_t classes() const noexcept { return classes_; }
  // Examples of true class `truth` predicted as `prediction`.
  std::size_t count(std::int64_t truth, std::int64_t prediction) const;
  std::size_t total() const noexcept { return total_; }

  double accuracy() const;  // 0 for an empty matrix
  ClassScores class_scores(std::int64_t label) const;
  // Unweighted means over the classes that occur as truth or prediction (scikit-learn's
  // default label set); support is the total.
  ClassScores macro_average() const;
  double macro_f1() const { return macro_average().f1; }

  // A table like scikit-learn's classification_report: one row per class, then accuracy and
  // the macro average. `label_names` must have one name per class (std::invalid_argument).
  std::string report(const std::vector<std::string>& label_names) const;

 private:
  std::size_t index(std::int64_t label, const char* what) const;
  std::size_t predicted_count(std::size_t c) const;  // column sum
  std::size_t support_count(std::size_t c) const;    // row sum

  std::size_t classes_ = 0;
  std::vector<std::size_t> counts_;  // [truth][prediction], row-major
  std::size_t total_ = 0;
};

}  // namespace xgrad::models
