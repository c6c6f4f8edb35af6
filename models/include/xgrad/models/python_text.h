#pragma once
// Python's str.split() and str.lower() on UTF-8 text. sacreBLEU is written in Python, and
// its tokens and its lower case are these two methods' (bleu.h, chrf.h), so a score agrees
// with sacreBLEU's only if they are reproduced exactly, for every script, not only ASCII.
// Text that is not UTF-8 is std::invalid_argument naming the function, the byte offset and
// the byte.

#include <string>
#include <string_view>

#include "xgrad/models/corpus.h"

namespace xgrad::models {

// Python's whitespace (str.isspace): ASCII tab to carriage return, U+001C..U+001F, space,
// U+0085, no-break space U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
bool is_python_whitespace(char32_t code_point);

// The characters of a Python str (what len() counts): the code points of the UTF-8 text.
std::u32string python_characters(std::string_view text);

// str.split(): the runs of text between Python whitespace.
Tokens python_split(std::string_view text);
// str.split() then " ".join(): the tokens separated by single spaces, no space at either end.
std::string python_collapse_whitespace(std::string_view text);
// str.rstrip(): without the Python whitespace at the end.
std::string python_rstrip(std::string_view text);

// str.lower() as Python 3.11 computes it (Unicode 14.0): every code point to its lower case,
// U+0130 (capital I with dot) to "i" and a combining dot, and a capital sigma to the final
// form at the end of a word (scripts/make-python-case-tables.py writes the tables).
std::string python_lower(std::string_view text);

}  // namespace xgrad::models
