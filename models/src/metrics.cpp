#include "xgrad/models/metrics.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "xgrad/framework/errors.h"

namespace xgrad::models {
namespace {

double ratio_or_zero(std::size_t numerator, std::size_t denominator) {
  return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

// One row of the report: the name right-aligned in `width`, then four columns of 10.
std::string report_row(int width, const std::string& name, const std::string& precision, const std::string& recall,
                       const std::string& f1, const std::string& support) {
  char row[512];
  std::snprintf(row, sizeof row, "%*s %10s %10s %10s %10s\n", width, name.c_str(), precision.c_str(), recall.c_str(),
                f1.c_str(), support.c_str());
  return row;
}

std::string fixed3(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", value);
  return text;
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(std::size_t classes) : classes_(classes), counts_(classes * classes, 0) {
  if (classes == 0) throw std::invalid_argument("ConfusionMatrix: the number of classes must be at least 1, got 0");
}

std::size_t ConfusionMatrix::index(std::int64_t label, const char* what) const {
  if (label < 0 || static_cast<std::size_t>(label) >= classes_) {
    throw index_error(detail::message("ConfusionMatrix: ", what, " class ", label, " is outside [0, ", classes_, ")"));
  }
  return static_cast<std::size_t>(label);
}

void ConfusionMatrix::add(std::int64_t truth, std::int64_t prediction) {
  ++counts_[index(truth, "true") * classes_ + index(prediction, "predicted")];
  ++total_;
}

void ConfusionMatrix::add(std::span<const std::int64_t> truths, std::span<const std::int64_t> predictions) {
  if (truths.size() != predictions.size()) {
    throw std::invalid_argument(detail::message("ConfusionMatrix::add: ", truths.size(), " true classes but ",
                                                predictions.size(), " predictions"));
  }
  for (std::size_t i = 0; i < truths.size(); ++i) add(truths[i], predictions[i]);
}

std::size_t ConfusionMatrix::count(std::int64_t truth, std::int64_t prediction) const {
  return counts_[index(truth, "true") * classes_ + index(prediction, "predicted")];
}

double ConfusionMatrix::accuracy() const {
  std::size_t correct = 0;
  for (std::size_t c = 0; c < classes_; ++c) correct += counts_[c * classes_ + c];
  return ratio_or_zero(correct, total_);
}

std::size_t ConfusionMatrix::predicted_count(std::size_t c) const {
  std::size_t predicted = 0;
  for (std::size_t truth = 0; truth < classes_; ++truth) predicted += counts_[truth * classes_ + c];
  return predicted;
}

std::size_t ConfusionMatrix::support_count(std::size_t c) const {
  std::size_t support = 0;
  for (std::size_t prediction = 0; prediction < classes_; ++prediction) support += counts_[c * classes_ + prediction];
  return support;
}

ClassScores ConfusionMatrix::class_scores(std::int64_t label) const {
  const std::size_t c = index(label, "requested");
  const std::size_t predicted = predicted_count(c);
  const std::size_t support = support_count(c);
  const std::size_t true_positives = counts_[c * classes_ + c];
  // F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (support + predicted), as scikit-learn computes it.
  return {.precision = ratio_or_zero(true_positives, predicted),
          .recall = ratio_or_zero(true_positives, support),
          .f1 = ratio_or_zero(2 * true_positives, support + predicted),
          .support = support};
}

ClassScores ConfusionMatrix::macro_average() const {
  ClassScores average;
  std::size_t present = 0;
  for (std::size_t c = 0; c < classes_; ++c) {
    if (support_count(c) == 0 && predicted_count(c) == 0) continue;
    const ClassScores scores = class_scores(static_cast<std::int64_t>(c));
    average.precision += scores.precision;
    average.recall += scores.recall;
    average.f1 += scores.f1;
    ++present;
  }
  if (present > 0) {
    average.precision /= static_cast<double>(present);
    average.recall /= static_cast<double>(present);
    average.f1 /= static_cast<double>(present);
  }
  average.support = total_;
  return average;
}

std::string ConfusionMatrix::report(const std::vector<std::string>& label_names) const {
  if (label_names.size() != classes_) {
    throw std::invalid_argument(detail::message("ConfusionMatrix::report: ", label_names.size(), " label names for ",
                                                classes_, " classes"));
  }
  const std::string macro_name = "macro avg";
  std::size_t width = macro_name.size();
  for (const std::string& name : label_names) width = std::max(width, name.size());
  const int w = static_cast<int>(width);

  std::string text = report_row(w, "", "precision", "recall", "f1-score", "support") + "\n";
  for (std::size_t c = 0; c < classes_; ++c) {
    const ClassScores scores = class_scores(static_cast<std::int64_t>(c));
    text += report_row(w, label_names[c], fixed3(scores.precision), fixed3(scores.recall), fixed3(scores.f1),
                       std::to_string(scores.support));
  }
  const ClassScores macro = macro_average();
  text += '\n';
  text += report_row(w, "accuracy", "", "", fixed3(accuracy()), std::to_string(total_));
  text += report_row(w, macro_name, fixed3(macro.precision), fixed3(macro.recall), fixed3(macro.f1),
                     std::to_string(macro.support));
  return text;
}

}  // namespace xgrad::models
