// Printing tensors the way PyTorch 1.13's repr does (torch/_tensor_str.py with its default
// print options: precision 4, threshold 1000, edgeitems 3, linewidth 80), with the shape added.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/tensor.h"

namespace xgrad {
namespace {

constexpr std::size_t threshold = 1000;  // more elements than this: summarised
constexpr std::size_t edge_items = 3;    // kept at each end of a summarised axis
constexpr std::size_t line_width = 80;
constexpr int precision = 4;

std::string printf_double(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, precision, value);
  return buffer;
}

// Python's "{:.Ne}" / "{:.Nf}" for finite values; "inf", "-inf", "nan" otherwise.
std::string non_finite(double value) {
  if (std::isnan(value)) return "nan";
  return value < 0 ? "-inf" : "inf";
}

// torch._tensor_str._Formatter for floating tensors: one notation and width for all the
// elements shown, chosen from the non-zero finite ones.
class Formatter {
 public:
  explicit Formatter(const std::vector<double>& shown) {
    std::vector<double> values;
    for (double v : shown) {
      if (std::isfinite(v) && v != 0) values.push_back(v);
    }
    if (values.empty()) return;
    double smallest = INFINITY, largest = 0;
    for (double v : values) {
      smallest = std::min(smallest, std::abs(v));
      largest = std::max(largest, std::abs(v));
      if (v != std::ceil(v)) whole_ = false;
    }
    scientific_ = largest / smallest > 1000.0 || largest > 1e8 || (!whole_ && smallest < 1e-4);
    for (double v : values) {
      const std::size_t length = scientific_ ? printf_double("%.*e", v).size()
                                 : whole_    ? printf_double("%.*f", v).size() - precision  // "{:.0f}" and "."
                                             : printf_double("%.*f", v).size();
      width_ = std::max(width_, length);
    }
  }

  std::size_t width() const noexcept { return width_; }

  std::string format(double value) const {
    std::string text;
    if (!std::isfinite(value)) {
      text = non_finite(value);
    } else if (scientific_) {
      text = printf_double("%.*e", value);
    } else if (whole_) {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.0f.", value);
      text = buffer;
    } else {
      text = printf_double("%.*f", value);
    }
    if (text.size() < width_) text.insert(0, width_ - text.size(), ' ');
    return text;
  }

 private:
  bool whole_ = true;
  bool scientific_ = false;
  std::size_t width_ = 1;
};

template <class T>
class Printer {
 public:
  Printer(const Array<T>& value, bool summarize) : value_(value), shape_(value.shape()), summarize_(summarize) {
    strides_.assign(shape_.size(), 1);
    for (std::size_t d = shape_.size(); d-- > 1;) strides_[d - 1] = strides_[d] * shape_[d];
  }

  // The elements that will be shown (torch's get_summarized_data), for the formatter.
  std::vector<double> shown() const {
    std::vector<double> values;
    collect(0, 0, values);
    return values;
  }

  std::string text(const Formatter& formatter, std::size_t indent) const {
    if (shape_.empty()) return formatter.format(static_cast<double>(value_.data()[0]));
    return block(formatter, 0, 0, indent);
  }

 private:
  // The positions shown along axis d: all, or the first and last edge_items (npos: "...").
  std::vector<std::size_t> positions(std::size_t d) const {
    const std::size_t n = shape_[d];
    std::vector<std::size_t> kept;
    if (summarize_ && n > 2 * edge_items) {
      for (std::size_t i = 0; i < edge_items; ++i) kept.push_back(i);
      kept.push_back(std::string::npos);
      for (std::size_t i = n - edge_items; i < n; ++i) kept.push_back(i);
    } else {
      for (std::size_t i = 0; i < n; ++i) kept.push_back(i);
    }
    return kept;
  }

  void collect(std::size_t d, std::size_t offset, std::vector<double>& values) const {
    if (d == shape_.size()) {
      values.push_back(static_cast<double>(value_.data()[offset]));
      return;
    }
    for (std::size_t i : positions(d)) {
      if (i != std::string::npos) collect(d + 1, offset + i * strides_[d], values);
    }
  }

  // torch's _tensor_str_with_formatter and _vector_str.
  std::string block(const Formatter& formatter, std::size_t d, std::size_t offset, std::size_t indent) const {
    std::vector<std::string> parts;
    if (d + 1 == shape_.size()) {
      for (std::size_t i : positions(d)) {
        parts.push_back(i == std::string::npos ? " ..."
                                               : formatter.format(static_cast<double>(value_.data()[offset + i])));
      }
      const std::size_t element_length = formatter.width() + 2;
      const std::size_t per_line = std::max<std::size_t>(
          1, line_width > indent ? (line_width - indent) / element_length : 0);
      std::string result = "[";
      for (std::size_t k = 0; k < parts.size(); ++k) {
        if (k > 0) result += k % per_line == 0 ? ",\n" + std::string(indent + 1, ' ') : ", ";
        result += parts[k];
      }
      return result + "]";
    }
    for (std::size_t i : positions(d)) {
      parts.push_back(i == std::string::npos ? "..." : block(formatter, d + 1, offset + i * strides_[d], indent + 1));
    }
    const std::string separator = "," + std::string(shape_.size() - d - 1, '\n') + std::string(indent + 1, ' ');
    std::string result = "[";
    for (std::size_t k = 0; k < parts.size(); ++k) {
      if (k > 0) result += separator;
      result += parts[k];
    }
    return result + "]";
  }

  const Array<T>& value_;
  const Shape& shape_;
  std::vector<std::size_t> strides_;
  bool summarize_;
};

// torch's _add_suffixes: a suffix that would pass the line width goes on a line of its own.
std::string with_suffixes(std::string text, const std::vector<std::string>& suffixes, std::size_t indent) {
  const std::size_t newline = text.rfind('\n');
  // As torch counts it: len(text) - text.rfind('\n') + 1, rfind giving -1 for a single line.
  std::size_t last_line = newline == std::string::npos ? text.size() + 2 : text.size() - newline + 1;
  for (const std::string& suffix : suffixes) {
    if (last_line + suffix.size() + 2 > line_width) {
      text += ",\n" + std::string(indent, ' ') + suffix;
      last_line = indent + suffix.size();
    } else {
      text += ", " + suffix;
      last_line += suffix.size() + 2;
    }
  }
  return text + ")";
}

}  // namespace

template <class T>
std::string to_string(const Tensor<T>& tensor) {
  if (!tensor.defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const TensorImpl<T>& state = tensor.impl();
  std::string body;
  if (state.value_released()) {
    body = "<freed>";
  } else if (state.value.size() == 0) {
    body = "[]";
  } else {
    const Printer<T> printer(state.value, state.value.size() > threshold);
    body = printer.text(Formatter(printer.shown()), prefix.size());
  }
  std::vector<std::string> suffixes{"shape=" + to_string(tensor.shape())};
  if constexpr (std::is_same_v<T, double>) suffixes.push_back("dtype=double");
  if (state.grad_fn) {
    suffixes.push_back(std::string("grad_fn=<") + state.grad_fn->op() + ">");
  } else if (state.requires_grad) {
    suffixes.push_back("requires_grad=true");
  }
  return with_suffixes(prefix + body, suffixes, prefix.size());
}

template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& tensor) {
  return out << to_string(tensor);
}

template std::string to_string(const Tensor<float>&);
template std::string to_string(const Tensor<double>&);
template std::ostream& operator<<(std::ostream&, const Tensor<float>&);
template std::ostream& operator<<(std::ostream&, const Tensor<double>&);

}  // namespace xgrad
