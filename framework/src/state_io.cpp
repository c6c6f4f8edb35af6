#include "xgrad/framework/state_io.h"

#include <charconv>
#include <system_error>

#include "xgrad/framework/errors.h"

namespace xgrad::optim {

namespace {

// Shortest text that parses back to the same double ("0.1", "1e-08", "inf").
std::string format_real(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// Parses all of `text` as a number; false when text is empty, partial or out of range.
template <class Number>
bool parse_number(const std::string& text, Number& value) {
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  return result.ec == std::errc() && result.ptr == end;
}

}  // namespace

void StateWriter::text(const std::string& key, const std::string& value) { writer_.set_metadata(prefix_ + key, value); }
void StateWriter::real(const std::string& key, double value) { text(key, format_real(value)); }
void StateWriter::integer(const std::string& key, std::int64_t value) { text(key, std::to_string(value)); }
void StateWriter::boolean(const std::string& key, bool value) { text(key, value ? "true" : "false"); }

const std::string& StateReader::metadata(const std::string& key) {
  const std::string full = full_key(key);
  const auto it = file_.metadata().find(full);
  if (it == file_.metadata().end()) throw file_error(detail::message(file_.label(), ": has no metadata '", full, "'"));
  read_.insert(full);
  return it->second;
}

std::string StateReader::text(const std::string& key) { return metadata(key); }

double StateReader::real(const std::string& key) {
  const std::string& text = metadata(key);
  double value = 0;
  if (!parse_number(text, value)) {
    throw file_error(detail::message(file_.label(), ": metadata '", full_key(key), "' = '", text, "' is not a number"));
  }
  return value;
}

std::int64_t StateReader::integer(const std::string& key) {
  const std::string& text = metadata(key);
  std::int64_t value = 0;
  if (!parse_number(text, value)) {
    throw file_error(
        detail::message(file_.label(), ": metadata '", full_key(key), "' = '", text, "' is not an integer"));
  }
  return value;
}

std::int64_t StateReader::count(const std::string& key) {
  const std::int64_t value = integer(key);
  if (value < 0) {
    throw file_error(detail::message(file_.label(), ": metadata '", full_key(key), "' = ", value, " is negative"));
  }
  return value;
}

bool StateReader::boolean(const std::string& key) {
  const std::string& text = metadata(key);
  if (text != "true" && text != "false") {
    throw file_error(
        detail::message(file_.label(), ": metadata '", full_key(key), "' = '", text, "' is neither true nor false"));
  }
  return text == "true";
}

void StateReader::expect_type(const std::string& type, const char* kind) {
  const std::string saved = text("type");
  if (saved != type) {
    throw file_error(detail::message(file_.label(), ": metadata '", full_key("type"), "' = '", saved,
                                     "' but the state is being loaded into a ", type, " ", kind));
  }
}

std::vector<std::string> StateReader::check_tensors(const std::vector<safetensors::ExpectedTensor>& expected,
                                                   const std::string& loader) {
  for (const std::string& name : file_.names()) {
    if (name.starts_with(prefix_)) read_.insert(name);
  }
  return safetensors::tensor_mismatches(file_, prefix_, expected, {.loader = loader, .unexpected = "unknown key"});
}

void StateReader::validate(const std::function<void()>& check) const {
  try {
    check();
  } catch (const std::invalid_argument& e) {
    throw file_error(
        detail::message(file_.label(), ": the saved options under '", prefix_, "' are invalid: ", e.what()));
  }
}

std::vector<std::string> StateReader::unread_keys() const {
  std::vector<std::string> unread;
  auto collect = [&](const std::string& key) {
    if (key.starts_with(prefix_) && read_.count(key) == 0) unread.push_back(key);
  };
  for (const std::string& name : file_.names()) collect(name);
  for (const auto& [key, value] : file_.metadata()) collect(key);
  return unread;
}

void StateReader::refuse_unread_keys() const {
  const std::vector<std::string> unread = unread_keys();
  if (unread.empty()) return;
  std::string message = file_.label() + ": unknown keys under '" + prefix_ + "':";
  for (const std::string& key : unread) message += " '" + key + "'";
  throw file_error(message);
}

}  // namespace xgrad::optim
