// index_select (embedding lookup), gather, masked_fill, where, and Indices built from values.
#define BOOST_TEST_MODULE indexing
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using xgrad::testing::shaped;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(index_select_is_an_embedding_lookup) {
  Tensor<double> table(Array<double>{{0.0, 0.5}, {1.0, 1.5}, {2.0, 2.5}}, true);
  const Indices ids{{2, 0}, {2, 2}};  // [2, 2] token ids
  Tensor<double> embedded = index_select(table, 0, ids);
  check_close(embedded.value(), Array<double>{{{2.0, 2.5}, {0.0, 0.5}}, {{2.0, 2.5}, {2.0, 2.5}}});
  sum(embedded).backward();
  check_close(table.grad(), Array<double>{{1.0, 1.0}, {0.0, 0.0}, {3.0, 3.0}});  // repeated ids add up
}

BOOST_AUTO_TEST_CASE(index_select_along_an_inner_axis) {
  Tensor<double> x(Array<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  check_close(index_select(x, 1, Indices{2, 0}).value(), Array<double>{{3.0, 1.0}, {6.0, 4.0}});
}

BOOST_AUTO_TEST_CASE(gather_picks_along_an_axis) {
  Tensor<double> x(Array<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  check_close(gather(x, 1, shaped({2, 1}, {2, 0})).value(), shaped<Array<double>>({2, 1}, {3.0, 4.0}));
  check_close(gather(x, 0, Indices{{1, 0, 1}}).value(), Array<double>{{4.0, 2.0, 6.0}});
}

BOOST_AUTO_TEST_CASE(masked_fill_and_where_values) {
  Tensor<double> x(Array<double>{{1.0, 2.0}, {3.0, 4.0}});
  const Mask row_mask{false, true};  // broadcast over rows
  check_close(masked_fill(x, row_mask, -9.0).value(), Array<double>{{1.0, -9.0}, {3.0, -9.0}});
  Tensor<double> other(Array<double>{10.0, 20.0});
  check_close(xgrad::where(Mask{{true, false}, {false, true}}, x, other).value(), Array<double>{{1.0, 20.0}, {10.0, 4.0}});
}

BOOST_AUTO_TEST_CASE(gradients) {
  Tensor<double> x = random_tensor({4, 3, 2}, 1);
  check_gradients([](const Inputs& v) { return index_select(v[0], 0, Indices{{3, 1}, {1, 0}}); }, {x});
  check_gradients([](const Inputs& v) { return index_select(v[0], 1, Indices{2, 2, 0}); }, {x});
  check_gradients([](const Inputs& v) { return gather(v[0], 1, Indices{{{2, 0}}, {{1, 1}}, {{0, 2}}, {{1, 0}}}); }, {x});
  Mask mask{{true, false}, {false, false}, {true, true}};  // [3, 2], broadcast over axis 0
  check_gradients([mask](const Inputs& v) { return masked_fill(v[0], mask, 0.5); }, {x});
  Tensor<double> y = random_tensor({3, 1}, 2);
  check_gradients([mask](const Inputs& v) { return xgrad::where(mask, v[0], v[1]); }, {x, y});
}

BOOST_AUTO_TEST_CASE(out_of_range_indices_name_the_index_and_position) {
  Tensor<double> table = random_tensor({5, 2}, 3);
  try {
    index_select(table, 0, Indices{{1, 2}, {7, 0}});
    BOOST_FAIL("an id outside the table must throw");
  } catch (const index_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("index 7") != std::string::npos, message);
    BOOST_TEST(message.find("[1, 0]") != std::string::npos, message);
    BOOST_TEST(message.find("extent 5") != std::string::npos, message);
  }
  BOOST_CHECK_THROW(index_select(table, 0, Indices{-1}), index_error);
  BOOST_CHECK_THROW(gather(table, 1, shaped({1, 1}, {2})), index_error);
  BOOST_CHECK_THROW(gather(table, 1, Indices{1, 0}), shape_error);
  BOOST_CHECK_THROW(masked_fill(table, Mask{true, false, true}, 0.0), shape_error);
  BOOST_CHECK_THROW(xgrad::where(Mask{true, false, true}, table, table), shape_error);
}

BOOST_AUTO_TEST_CASE(embedding_padding_row_gets_no_gradient) {
  Tensor<double> table = random_tensor({4, 3}, 10);
  const Indices ids{{1, 0, 0}, {3, 1, 0}};  // 0 is padding
  Tensor<double> looked_up = embedding(table, ids, std::int64_t{0});
  check_close(xt::view(looked_up.value(), 1, 0), xt::view(table.value(), 3));
  sum(looked_up * 2.0).backward();
  check_close(xt::view(table.grad(), 0), Array<double>{0.0, 0.0, 0.0});
  check_close(xt::view(table.grad(), 1), Array<double>{4.0, 4.0, 4.0});
  check_gradients([&ids](const Inputs& v) { return embedding(v[0], ids); }, {random_tensor({4, 3}, 11)});
  BOOST_CHECK_THROW(embedding(random_tensor({4}, 12), ids), shape_error);
  BOOST_CHECK_THROW(embedding(table, Indices{4}), index_error);
}

BOOST_AUTO_TEST_CASE(indices_are_built_from_a_vector_with_or_without_a_shape) {
  const std::vector<std::int64_t> ids{3, 1, 4, 1, 5, 9};
  const Indices flat = indices_from(ids);
  BOOST_TEST(to_string(flat.shape()) == "[6]");
  BOOST_TEST(std::equal(ids.begin(), ids.end(), flat.begin()));
  const Indices rows = indices_from(ids, {2, 3});
  BOOST_TEST(to_string(rows.shape()) == "[2, 3]");
  BOOST_TEST(rows(1, 0) == 1);
  BOOST_TEST(rows(1, 2) == 9);
  BOOST_TEST(to_string(indices_from({7}, {}).shape()) == "[]");
  BOOST_TEST(indices_from({}).size() == 0u);
  // Usable wherever Indices are: an embedding lookup.
  const Tensor<double> table = random_tensor({10, 2}, 5);
  BOOST_TEST(to_string(embedding(table, indices_from({2, 0, 2}, {1, 3})).shape()) == "[1, 3, 2]");
}

BOOST_AUTO_TEST_CASE(indices_whose_count_does_not_fill_the_shape_are_refused) {
  try {
    indices_from({1, 2, 3}, {2, 2});
    BOOST_FAIL("no shape_error");
  } catch (const shape_error& e) {
    BOOST_TEST(std::string(e.what()) == "indices_from: 3 values cannot fill shape [2, 2] (4 elements)");
  }
  BOOST_CHECK_THROW(indices_from({1}, {0}), shape_error);
}
