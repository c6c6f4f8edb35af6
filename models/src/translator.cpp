#include "xgrad/models/translator.h"

#include <algorithm>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"

namespace xgrad::models {

void check_source_batch(const char* model, const PaddedBatch& source) {
  const Shape& shape = source.ids.shape();
  if (shape.size() != 2 || source.lengths.size() != shape[0]) {
    throw shape_error(detail::message(model, ": source tokens of shape ", shape, " with ", source.lengths.size(),
                                      " lengths; expected tokens [B, S] and B lengths"));
  }
  for (std::size_t b = 0; b < source.lengths.size(); ++b) {
    if (source.lengths[b] == 0 || source.lengths[b] > shape[1]) {
      throw shape_error(detail::message(model, ": source length ", source.lengths[b], " of sentence ", b,
                                        " is outside [1, ", shape[1], "]"));
    }
  }
}

void check_target_batch(const char* model, const PaddedBatch& source, const TargetBatch& target) {
  const Shape& in = target.inputs.shape();
  if (in.size() != 2 || in != target.outputs.shape() || in[0] != source.ids.shape()[0] || in[1] == 0) {
    throw shape_error(detail::message(model, ": target inputs of shape ", in, " and outputs of shape ",
                                      target.outputs.shape(), " for a source batch of shape ", source.ids.shape(),
                                      "; expected both [B, T] with the source's B and T >= 1"));
  }
}

std::pair<Indices, Indices> real_target_positions(const Indices& outputs, std::int64_t pad_id) {
  std::vector<std::int64_t> rows, tokens;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (outputs.data()[i] == pad_id) continue;
    rows.push_back(static_cast<std::int64_t>(i));
    tokens.push_back(outputs.data()[i]);
  }
  return {indices_from(rows), indices_from(tokens)};
}

template <class T>
Tensor<T> repeat_sentence_rows(const Tensor<T>& rows, std::size_t sentences, std::size_t copies) {
  if (!rows.defined()) return rows;
  const std::size_t block = rows.shape()[0] / sentences;
  Indices picked = Indices::from_shape({sentences * copies * block});
  for (std::size_t r = 0; r < picked.size(); ++r) {
    picked(r) = static_cast<std::int64_t>((r / (copies * block)) * block + r % block);
  }
  return index_select(rows, 0, picked);
}

Mask repeat_sentence_rows(const Mask& rows, std::size_t copies) {
  const std::size_t sentences = rows.shape()[0], width = rows.shape()[1];
  Mask repeated = Mask::from_shape({sentences * copies, width});
  for (std::size_t r = 0; r < sentences * copies; ++r) {
    std::copy_n(rows.data() + (r / copies) * width, width, repeated.data() + r * width);
  }
  return repeated;
}

template <class T>
std::pair<double, std::size_t> Translator<T>::evaluate_loss(const PaddedBatch& source, const TargetBatch& target) const {
  NoGradGuard no_graph;
  const Tensor<T> mean_loss = loss(source, target);
  const auto [rows, tokens] = real_target_positions(target.outputs, pad_id());
  return {static_cast<double>(mean_loss.item()) * static_cast<double>(tokens.size()), tokens.size()};
}

template <class T>
std::vector<Translation> Translator<T>::translate(const PaddedBatch& source, const SearchOptions& options) const {
  return options.beam_size == 1 ? greedy(source, options) : beam_search(source, options);
}

template <class T>
std::vector<Translation> Translator<T>::greedy(const PaddedBatch& source, const SearchOptions& options) const {
  return greedy_search(*step_decoder(), source, options);
}

template <class T>
std::vector<Translation> Translator<T>::beam_search(const PaddedBatch& source, const SearchOptions& options) const {
  return models::beam_search(*step_decoder(), source, options);
}

template <class T>
std::vector<std::vector<Translation>> Translator<T>::translate_n_best(const PaddedBatch& source,
                                                                      const SearchOptions& options) const {
  if (options.beam_size > 1 || options.n_best > 1) return models::beam_search_n_best(*step_decoder(), source, options);
  std::vector<std::vector<Translation>> lists;
  for (Translation& t : greedy(source, options)) lists.push_back({std::move(t)});
  return lists;
}

template class Translator<float>;
template class Translator<double>;
template Tensor<float> repeat_sentence_rows(const Tensor<float>&, std::size_t, std::size_t);
template Tensor<double> repeat_sentence_rows(const Tensor<double>&, std::size_t, std::size_t);

}  // namespace xgrad::models
