#include "data_checks.h"

#include <cstdio>

#include <xgrad/framework/errors.h>

namespace xgrad::cli {
namespace {

std::string reasons(const SkippedLines& skipped, std::size_t max_length) {
  std::string text;
  if (skipped.empty > 0) text += detail::message(skipped.empty, " with an empty side");
  if (skipped.too_long > 0) {
    text += detail::message(text.empty() ? "" : " and ", skipped.too_long, " longer than --max-length ", max_length, " tokens");
  }
  return text;
}

}  // namespace

void report_skipped(const std::string& files, const SkippedLines& skipped, std::size_t max_length) {
  if (skipped.empty + skipped.too_long == 0) return;
  std::printf("%s: skipped %zu lines: %s\n", files.c_str(), skipped.empty + skipped.too_long,
              reasons(skipped, max_length).c_str());
}

void require_examples(std::size_t kept, const std::string& files, const SkippedLines& skipped, std::size_t max_length) {
  if (kept > 0) return;
  if (skipped.empty + skipped.too_long == 0) throw file_error(files + ": no data (the file holds no examples)");
  throw file_error(detail::message(files, ": no data left: all ", skipped.empty + skipped.too_long, " lines were skipped, ",
                                   reasons(skipped, max_length)));
}

}  // namespace xgrad::cli
