#define BOOST_TEST_MODULE metrics
#include "xgrad_test.h"

#include <cmath>

#include "xgrad/models/metrics.h"

using namespace xgrad;
using namespace xgrad::models;

namespace {

void check_near(double actual, double expected) {
  BOOST_TEST(std::abs(actual - expected) <= 1e-12, actual << " != expected " << expected);
}

// Rows are true classes, columns predictions:
//   truth 0: 3 1 0      predicted 0: 4 times, 1: 3 times, 2: 3 times
//   truth 1: 1 2 1
//   truth 2: 0 0 2
ConfusionMatrix three_classes() {
  ConfusionMatrix matrix(3);
  const std::vector<std::int64_t> truths = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2};
  const std::vector<std::int64_t> predictions = {0, 0, 0, 1, 0, 1, 1, 2, 2, 2};
  matrix.add(truths, predictions);
  return matrix;
}

}  // namespace

BOOST_AUTO_TEST_CASE(counts_and_accuracy) {
  const ConfusionMatrix matrix = three_classes();
  BOOST_TEST(matrix.total() == 10u);
  BOOST_TEST(matrix.count(0, 0) == 3u);
  BOOST_TEST(matrix.count(0, 1) == 1u);
  BOOST_TEST(matrix.count(1, 0) == 1u);
  BOOST_TEST(matrix.count(1, 2) == 1u);
  BOOST_TEST(matrix.count(2, 0) == 0u);
  check_near(matrix.accuracy(), 0.7);
  BOOST_TEST(ConfusionMatrix(2).accuracy() == 0.0);
}

BOOST_AUTO_TEST_CASE(per_class_precision_recall_and_f1) {
  const ConfusionMatrix matrix = three_classes();
  const ClassScores first = matrix.class_scores(0);
  check_near(first.precision, 3.0 / 4.0);
  check_near(first.recall, 3.0 / 4.0);
  check_near(first.f1, 0.75);
  BOOST_TEST(first.support == 4u);
  const ClassScores second = matrix.class_scores(1);
  check_near(second.precision, 2.0 / 3.0);
  check_near(second.recall, 2.0 / 4.0);
  check_near(second.f1, 4.0 / 7.0);  // 2 tp / (support 4 + predicted 3)
  const ClassScores third = matrix.class_scores(2);
  check_near(third.precision, 2.0 / 3.0);
  check_near(third.recall, 1.0);
  check_near(third.f1, 0.8);
  BOOST_TEST(third.support == 2u);

  const ClassScores macro = matrix.macro_average();
  check_near(macro.precision, (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0);
  check_near(macro.recall, (0.75 + 0.5 + 1.0) / 3.0);
  check_near(matrix.macro_f1(), (0.75 + 4.0 / 7.0 + 0.8) / 3.0);
  BOOST_TEST(macro.support == 10u);
}

BOOST_AUTO_TEST_CASE(undefined_scores_are_zero_like_zero_division_0) {
  // Class 1 occurs but is never predicted; class 2 is predicted but never occurs; class 3
  // does neither and is left out of the macro average (scikit-learn's label set).
  ConfusionMatrix matrix(4);
  matrix.add(std::vector<std::int64_t>{0, 0, 1, 1}, std::vector<std::int64_t>{0, 2, 0, 0});
  const ClassScores first = matrix.class_scores(0);
  check_near(first.precision, 1.0 / 3.0);
  check_near(first.recall, 0.5);
  check_near(first.f1, 0.4);
  for (const std::int64_t label : {1, 2, 3}) {
    const ClassScores scores = matrix.class_scores(label);
    BOOST_TEST(scores.precision == 0.0);
    BOOST_TEST(scores.recall == 0.0);
    BOOST_TEST(scores.f1 == 0.0);
  }
  check_near(matrix.macro_f1(), 0.4 / 3.0);
  check_near(matrix.macro_average().precision, (1.0 / 3.0) / 3.0);
  check_near(matrix.accuracy(), 0.25);
}

BOOST_AUTO_TEST_CASE(bad_classes_are_rejected) {
  ConfusionMatrix matrix(3);
  BOOST_CHECK_THROW(matrix.add(3, 0), index_error);
  BOOST_CHECK_THROW(matrix.add(0, -1), index_error);
  BOOST_CHECK_THROW(matrix.count(0, 5), index_error);
  BOOST_CHECK_THROW(matrix.class_scores(3), index_error);
  BOOST_CHECK_THROW(matrix.add(std::vector<std::int64_t>{0, 1}, std::vector<std::int64_t>{0}), std::invalid_argument);
  BOOST_CHECK_THROW(ConfusionMatrix(0), std::invalid_argument);
  BOOST_TEST(matrix.total() == 0u);
}

BOOST_AUTO_TEST_CASE(report_lists_every_class_accuracy_and_macro_average) {
  const std::string report = three_classes().report({"DESC", "HUM", "LOC"});
  const std::string expected =
      "           precision     recall   f1-score    support\n"
      "\n"
      "     DESC      0.750      0.750      0.750          4\n"
      "      HUM      0.667      0.500      0.571          4\n"
      "      LOC      0.667      1.000      0.800          2\n"
      "\n"
      " accuracy                            0.700         10\n"
      "macro avg      0.694      0.750      0.707         10\n";
  BOOST_TEST(report == expected);
  BOOST_CHECK_THROW(three_classes().report({"DESC", "HUM"}), std::invalid_argument);
}
