#include "moses_text.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/utf8.h"
#include "xgrad/models/python_text.h"

namespace xgrad::models::moses {
namespace {

// ---- Characters as Moses' Perl regular expressions class them ----

bool is_alpha(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC); }  // \p{IsAlpha}
bool is_number(char32_t c) {                                                                           // \p{IsN}
  const std::int8_t type = u_charType(static_cast<UChar32>(c));
  return type == U_DECIMAL_DIGIT_NUMBER || type == U_LETTER_NUMBER || type == U_OTHER_NUMBER;
}
bool is_alnum(char32_t c) {  // \p{IsAlnum}: alphabetic or a decimal digit
  return is_alpha(c) || u_charType(static_cast<UChar32>(c)) == U_DECIMAL_DIGIT_NUMBER;
}
bool is_lower(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_LOWERCASE); }  // \p{IsLower}
bool is_ascii_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_one_of(char32_t c, std::u32string_view characters) { return characters.find(c) != std::u32string_view::npos; }

std::u32string decoded(std::string_view text) {
  std::u32string code_points;
  code_points.reserve(text.size());
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
  const auto length = static_cast<std::int32_t>(text.size());
  for (std::int32_t i = 0; i < length;) {
    UChar32 c = 0;
    U8_NEXT(bytes, i, length, c);  // checked to be UTF-8 by corpus_form and ordinary_text
    code_points.push_back(static_cast<char32_t>(c));
  }
  return code_points;
}

std::string encoded(std::u32string_view code_points) {
  std::string text;
  text.reserve(code_points.size());
  for (const char32_t c : code_points) {
    std::array<std::uint8_t, U8_MAX_LENGTH> bytes{};
    std::int32_t length = 0;
    U8_APPEND_UNSAFE(bytes.data(), length, static_cast<UChar32>(c));
    text.append(reinterpret_cast<const char*>(bytes.data()), static_cast<std::size_t>(length));
  }
  return text;
}

void require_utf8_text(std::string_view text, const char* function) {
  if (const std::optional<std::size_t> offset = invalid_utf8_offset(text)) {
    throw std::invalid_argument(detail::message(function, ": the text is not UTF-8 at byte ", *offset));
  }
}

// ---- Moses' escapes (tokenizer.perl's last step) ----

struct Escape {
  char32_t character;
  std::u32string_view entity;
};
// In tokenizer.perl's order: "&" first, so that the others' "&" is not escaped again.
constexpr std::array<Escape, 8> escapes{{{U'&', U"&amp;"},
                                         {U'|', U"&#124;"},
                                         {U'<', U"&lt;"},
                                         {U'>', U"&gt;"},
                                         {U'\'', U"&apos;"},
                                         {U'"', U"&quot;"},
                                         {U'[', U"&#91;"},
                                         {U']', U"&#93;"}}};

std::u32string escaped(std::u32string_view token) {
  std::u32string out;
  for (const char32_t c : token) {
    const auto* escape = std::find_if(escapes.begin(), escapes.end(), [&](const Escape& e) { return e.character == c; });
    if (escape == escapes.end()) {
      out.push_back(c);
    } else {
      out += escape->entity;
    }
  }
  return out;
}

// Every escape read back in one pass from the left, so "&amp;apos;" is "&apos;" (what
// tokenizer.perl made of a literal "&apos;"), not "'".
std::u32string unescaped(std::u32string_view text) {
  std::u32string out;
  for (std::size_t i = 0; i < text.size();) {
    const auto* escape = text[i] != U'&' ? escapes.end()
                                         : std::find_if(escapes.begin(), escapes.end(), [&](const Escape& e) {
                                             return text.substr(i, e.entity.size()) == e.entity;
                                           });
    if (escape == escapes.end()) {
      out.push_back(text[i++]);
    } else {
      out.push_back(escape->character);
      i += escape->entity.size();
    }
  }
  return out;
}

// ---- normalize-punctuation.perl: the quotes, dashes and apostrophes ----

// The typographic quotes and dashes as the ASCII ones the corpus holds. Its spacing rules
// (no space before ":" or "%", around brackets) are left out: the tokeniser puts a space
// around each of those characters whatever the input had, so they change no token; so is its
// rule joining digits separated by a space ("1 000" -> "1.000"), which would join the
// corpus's own tokens "2 3" and break the fixed point on the corpus.
std::u32string normalised_punctuation(std::u32string_view text, Language language, Style style) {
  std::u32string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    const bool between_letters = i > 0 && i + 1 < text.size() && is_ascii_letter(text[i - 1]) && is_ascii_letter(text[i + 1]);
    switch (c) {
      case U'„': case U'“': case U'”': case U'«': case U'»': case U'‚':
        out.push_back(U'"');
        break;
      case U'‘': case U'’':  // an apostrophe inside a word ("don’t"), a quote elsewhere
        if (between_letters) {
          out.push_back(U'\'');
        } else if (style == Style::penn) {
          out.push_back(c == U'‘' ? U'`' : U'\'');  // the Penn Treebank's single quotes
        } else {
          out.push_back(U'"');
        }
        break;
      case U'–':
        out.push_back(U'-');
        break;
      case U'—':
        out += style == Style::penn ? U" -- " : U" - ";
        break;
      case U'´':
        out.push_back(U'\'');
        break;
      default:
        out.push_back(c);
    }
  }
  // The Penn Treebank's quotes are `` and '' as they are; its periods stay where they were.
  if (style == Style::penn) return out;
  // '' (two apostrophes, also what ´´ became) is a double quote.
  std::u32string quotes;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool doubled = out[i] == U'\'' && i + 1 < out.size() && out[i + 1] == U'\'';
    quotes.push_back(doubled ? U'"' : out[i]);
    if (doubled) ++i;
  }
  out = std::move(quotes);
  // Where a period or comma goes beside a closing quote: English puts it inside ("said."),
  // German outside ("sagte".), except for the period that ends the text.
  std::u32string moved;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (language == Language::english && out[i] == U'"') {
      std::size_t end = i + 1;
      while (end < out.size() && (out[end] == U',' || out[end] == U'.')) ++end;
      moved.append(out, i + 1, end - i - 1);
      moved.push_back(U'"');
      i = end - 1;
    } else if (language == Language::german && out[i] == U',' && i + 1 < out.size() && out[i + 1] == U'"') {
      moved += U"\",";
      ++i;
    } else if (language == Language::german && out[i] == U'.') {
      std::size_t end = i;
      while (end < out.size() && out[end] == U'.') ++end;
      std::size_t after_quote = end + 1;
      while (after_quote < out.size() && out[after_quote] == U' ') ++after_quote;
      if (end < out.size() && out[end] == U'"' && after_quote < out.size() && out[after_quote] != U'<') {
        moved.push_back(U'"');
        moved.append(out, i, end - i);
        i = end;  // the quote is written
      } else {
        moved.append(out, i, end - i);
        i = end - 1;
      }
    } else {
      moved.push_back(out[i]);
    }
  }
  return moved;
}

// White space of any kind as one space, and no control characters (tokenizer.perl's
// "remove ASCII junk").
std::u32string collapsed_whitespace(std::u32string_view text) {
  std::u32string out;
  for (const char32_t c : text) {
    if (is_python_whitespace(c) || u_isUWhiteSpace(static_cast<UChar32>(c))) {
      if (!out.empty() && out.back() != U' ') out.push_back(U' ');
    } else if (c >= 0x20 && c != 0x7F) {
      out.push_back(c);
    }
  }
  if (!out.empty() && out.back() == U' ') out.pop_back();
  return out;
}

// ---- tokenizer.perl ----

// The abbreviations whose period does not end a sentence (nonbreaking_prefix.en and .de in
// part): with `numeric_only`, only before a number ("No. 5").
struct Abbreviations {
  std::unordered_set<std::u32string> always;
  std::unordered_set<std::u32string> numeric_only;
};

const Abbreviations& abbreviations(Language language) {
  static const Abbreviations english{
      {U"Adj", U"Adm", U"Adv", U"Asst", U"Bart", U"Bldg", U"Brig", U"Bros", U"Capt", U"Cmdr", U"Col", U"Comdr",
       U"Con", U"Corp", U"Cpl", U"DR", U"Dr", U"Drs", U"Ens", U"Gen", U"Gov", U"Hon", U"Hr", U"Hosp", U"Insp",
       U"Lt", U"MM", U"MR", U"MRS", U"MS", U"Maj", U"Messrs", U"Mlle", U"Mme", U"Mr", U"Mrs", U"Ms", U"Msgr",
       U"Op", U"Ord", U"Pfc", U"Ph", U"Prof", U"Pvt", U"Rep", U"Reps", U"Res", U"Rev", U"Rt", U"Sen", U"Sens",
       U"Sfc", U"Sgt", U"Sr", U"St", U"Supt", U"Surg", U"v", U"vs", U"i.e", U"rev", U"e.g", U"Rs", U"Nos", U"Nr",
       U"Jan", U"Feb", U"Mar", U"Apr", U"Jun", U"Jul", U"Aug", U"Sep", U"Oct", U"Nov", U"Dec"},
      {U"No", U"Art", U"pp"}};
  static const Abbreviations german{
      {U"Abb", U"Abs", U"Abt", U"Adr", U"Bd", U"Bhf", U"Bsp", U"bzw", U"ca", U"Chr", U"Dr", U"dt", U"ebd", U"etc",
       U"evtl", U"Fa", U"ff", U"Fr", U"Frl", U"geb", U"gegr", U"ggf", U"Hbf", U"Hr", U"Hrn", U"Inh", U"inkl", U"Jh",
       U"Jhd", U"Kap", U"kath", U"lt", U"max", U"Mio", U"min", U"Mrd", U"Nr", U"Pkt", U"Prof", U"rd", U"Std",
       U"St", U"Str", U"Tel", U"usw", U"uvm", U"vgl", U"Wdh", U"zB", U"zz", U"zzgl", U"z.B", U"d.h", U"u.a",
       U"Jan", U"Feb", U"Mär", U"Apr", U"Jun", U"Jul", U"Aug", U"Sep", U"Sept", U"Okt", U"Nov", U"Dez"},
      {U"Art", U"Nr", U"S"}};
  return language == Language::english ? english : german;
}

// English clitics as tokenizer.perl leaves them ("dog 's", "don 't"): a word that is one of
// these is kept whole, so the corpus is a fixed point (tokenizer.perl itself would make
// "dog ' s" of its own "dog 's").
// Whether `word`, its ASCII letters in lower case, is one of `clitics`.
template <std::size_t N>
bool is_one_of_clitics(std::u32string_view word, const std::array<std::u32string_view, N>& clitics) {
  std::u32string lower;
  for (const char32_t c : word) lower.push_back(c >= U'A' && c <= U'Z' ? c + (U'a' - U'A') : c);
  return std::find(clitics.begin(), clitics.end(), lower) != clitics.end();
}

bool is_english_clitic(std::u32string_view word) {
  static constexpr std::array<std::u32string_view, 7> clitics{U"'s", U"'t", U"'re", U"'ve", U"'ll", U"'d", U"'m"};
  return is_one_of_clitics(word, clitics);
}

// Each character `splits` chooses gets a space on either side, judged on the text as it was
// before this pass, as a global Perl substitution mostly sees it. `before` and `after` give
// its neighbours; none at the ends of the text.
template <class Splits>
std::u32string spaced(std::u32string_view text, Splits splits) {
  std::u32string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::optional<char32_t> before = i > 0 ? std::optional(text[i - 1]) : std::nullopt;
    const std::optional<char32_t> after = i + 1 < text.size() ? std::optional(text[i + 1]) : std::nullopt;
    if (splits(text[i], before, after)) {
      out.push_back(U' ');
      out.push_back(text[i]);
      out.push_back(U' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

bool is_url_start(std::u32string_view word) {
  return word.starts_with(U"http://") || word.starts_with(U"https://") || word.starts_with(U"www.");
}

std::vector<std::u32string> split_at_spaces(std::u32string_view text) {
  std::vector<std::u32string> words;
  std::u32string word;
  for (const char32_t c : text) {
    if (c == U' ') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

// A comma stands alone but between two numbers ("1,000"); a number's comma at the end too.
std::u32string split_commas(std::u32string_view text) {
  return spaced(text, [](char32_t c, std::optional<char32_t> before, std::optional<char32_t> after) {
    if (c != U',') return false;
    return (before && !is_number(*before)) || (after && !is_number(*after)) || (before && !after);
  });
}

// Every run of at least `shortest` characters `c` stands alone ("...", "--", "``").
std::u32string runs_stand_alone(std::u32string_view text, char32_t c, std::size_t shortest) {
  std::u32string out;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t end = i;
    while (end < text.size() && text[end] == c) ++end;
    if (end - i >= shortest) {
      out.push_back(U' ');
      out.append(text.substr(i, end - i));
      out.push_back(U' ');
      i = end;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// The Penn Treebank's clitics, its closing quote '', and "'em" and "'n'", which SST-2 keeps whole.
bool is_penn_clitic(std::u32string_view word) {
  static constexpr std::array<std::u32string_view, 10> clitics{U"'s",  U"'m",  U"'d",  U"'ll", U"'re",
                                                               U"'ve", U"n't", U"''",  U"'em", U"'n'"};
  return is_one_of_clitics(word, clitics);
}

// The Penn Treebank's apostrophes in one word: "n't" and "'s", "'m", "'d", "'ll", "'re", "'ve"
// split off ("does n't", "it 's"), an opening quote is ` and a closing one ' on its own;
// apostrophes inside a word ("o'fallon") and before a number ("'70s") stay.
void append_penn_word(std::u32string word, std::vector<std::u32string>& out) {
  std::vector<std::u32string> after;  // what came off the end, last first
  while (!word.empty() && !is_penn_clitic(word)) {
    const std::size_t apostrophe = word.rfind(U'\'');
    if (word.size() > 3 && is_penn_clitic(word.substr(word.size() - 3))) {  // "n't", "'ll", "'re", "'ve"
      after.push_back(word.substr(word.size() - 3));
      word.resize(word.size() - 3);
    } else if (apostrophe != std::u32string::npos && apostrophe > 0 && is_penn_clitic(word.substr(apostrophe))) {
      after.push_back(word.substr(apostrophe));
      word.resize(apostrophe);
    } else if (word.size() > 1 && word.back() == U'\'') {
      after.emplace_back(U"'");
      word.pop_back();
    } else if (word.size() > 1 && word.front() == U'\'' && !is_ascii_digit(word[1])) {
      out.emplace_back(U"`");
      word.erase(0, 1);
    } else {
      break;
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  out.insert(out.end(), after.rbegin(), after.rend());
}

// The Penn Treebank's conventions, as SST-2 and TREC are tokenised, over a stretch of text
// without URLs: a double quote is `` where it opens and '' where it closes; the special
// characters, "...", "--" and commas as tokenizer.perl splits them; apostrophes by
// append_penn_word.
std::u32string penn_tokenised_stretch(std::u32string_view text) {
  std::u32string quotes;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != U'"') {
      quotes.push_back(text[i]);
      continue;
    }
    const bool opens = quotes.empty() || is_one_of(quotes.back(), U" ([{<");
    quotes += opens ? U" `` " : U" '' ";
  }
  std::u32string out = spaced(quotes, [](char32_t c, auto, auto) {
    return !(is_alnum(c) || c == U' ' || c == U'.' || c == U'\'' || c == U'`' || c == U',' || c == U'-' || c == U'/');
  });
  out = split_commas(runs_stand_alone(runs_stand_alone(runs_stand_alone(out, U'.', 2), U'-', 2), U'`', 1));
  std::vector<std::u32string> words;
  for (std::u32string& word : split_at_spaces(out)) append_penn_word(std::move(word), words);
  std::u32string joined;
  for (const std::u32string& word : words) joined += (joined.empty() ? U"" : U" ") + word;
  return joined;
}

// tokenizer.perl's passes over a stretch of text without URLs: special characters, runs of
// periods, commas, apostrophes.
std::u32string tokenised_stretch(std::u32string_view text, Language language, Style style) {
  if (style == Style::penn) return penn_tokenised_stretch(text);
  // Everything but letters, digits, white space and . ' ` , - stands alone.
  std::u32string out = spaced(text, [](char32_t c, auto, auto) {
    return !(is_alnum(c) || c == U' ' || c == U'.' || c == U'\'' || c == U'`' || c == U',' || c == U'-');
  });
  // A run of two or more periods ("...") stands alone, and commas as split_commas says.
  out = split_commas(runs_stand_alone(out, U'.', 2));
  if (language == Language::german) {
    return spaced(out, [](char32_t c, auto, auto) { return c == U'\''; });
  }
  // English: the apostrophe stays on the letters after it when it follows a letter ("don
  // 't") or a number before "s" ("1990 's"), and stands alone otherwise; a word that is
  // already a clitic ("'s" after a space) is left as it is.
  std::u32string english;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char32_t c = out[i];
    if (c != U'\'' || i == 0 || i + 1 == out.size()) {
      english.push_back(c);
      continue;
    }
    const char32_t before = out[i - 1], after = out[i + 1];
    const std::size_t word_end = std::min(out.find(U' ', i), out.size());
    if (before == U' ' && is_english_clitic(std::u32string_view(out).substr(i, word_end - i))) {
      english.push_back(c);
    } else if ((is_alpha(before) && is_alpha(after)) || (is_number(before) && after == U's')) {
      english += U" '";
    } else if (is_number(before) && is_alpha(after)) {
      english.push_back(c);
    } else {
      english += U" ' ";
    }
  }
  return english;
}

// The words of the text: URLs (from "http://", "https://" or "www." to the last character
// that is not closing punctuation) kept whole, everything else through tokenised_stretch.
std::vector<std::u32string> tokenised_words(std::u32string_view text, Language language, Style style) {
  std::vector<std::u32string> words;
  std::u32string stretch;
  const auto flush = [&] {
    for (std::u32string& word : split_at_spaces(tokenised_stretch(stretch, language, style))) words.push_back(std::move(word));
    stretch.clear();
  };
  for (const std::u32string& word : split_at_spaces(text)) {
    if (!is_url_start(word)) {
      stretch += U' ' + word;
      continue;
    }
    std::size_t end = word.size();
    while (end > 0 && std::u32string_view(U".,;:!?)]}\"'").find(word[end - 1]) != std::u32string_view::npos) --end;
    flush();
    words.push_back(word.substr(0, end));
    stretch = word.substr(end);
  }
  flush();
  return words;
}

// A word's final period stands alone, unless the word is an abbreviation: one with another
// period and a letter ("U.S."), a known one, an initial ("F."), or one followed by a
// lower-case word; the last word's period always stands alone. Then ".'" at the end of the text is split.
std::vector<std::u32string> split_final_periods(std::vector<std::u32string> words, Language language) {
  const Abbreviations& known = abbreviations(language);
  std::vector<std::u32string> out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::u32string& word = words[i];
    const bool ends_in_period = word.size() >= 2 && word.back() == U'.' &&
                                word.find_first_not_of(U'.') != std::u32string::npos;
    if (!ends_in_period) {
      out.push_back(word);
      continue;
    }
    const std::u32string prefix = word.substr(0, word.size() - 1);
    const bool last = i + 1 == words.size();
    const bool keeps_period =
        !last && ((prefix.find(U'.') != std::u32string::npos && std::any_of(prefix.begin(), prefix.end(), is_alpha)) ||
                  known.always.contains(prefix) || is_lower(words[i + 1].front()) ||
                  // An initial ("John F. Kennedy").
                  (prefix.size() == 1 && u_isupper(static_cast<UChar32>(prefix.front()))) ||
                  (known.numeric_only.contains(prefix) && is_ascii_digit(words[i + 1].front())) ||
                  // A German ordinal number ("am 3. Oktober").
                  (language == Language::german && std::all_of(prefix.begin(), prefix.end(), is_ascii_digit)));
    if (keeps_period) {
      out.push_back(word);
    } else {
      out.push_back(prefix);
      out.emplace_back(U".");
    }
  }
  if (!out.empty() && out.back().size() >= 3 && out.back().ends_with(U".'")) {
    std::u32string word = out.back();
    out.pop_back();
    out.push_back(word.substr(0, word.size() - 2));
    out.emplace_back(U".");
    out.emplace_back(U"'");
  }
  return out;
}

std::string nfkc(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFKCInstance(status);
  std::string out;
  if (U_SUCCESS(status)) {
    icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
    normalizer->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr,
                              status);
  }
  if (U_FAILURE(status)) throw std::runtime_error(detail::message("NFKC normalisation failed: ", u_errorName(status)));
  return out;
}

// ---- detokenizer.perl ----

bool is_currency(char32_t c) { return u_charType(static_cast<UChar32>(c)) == U_CURRENCY_SYMBOL; }

}  // namespace

std::string corpus_form(std::string_view line, Language language, Style style) {
  require_utf8_text(line, "corpus_form");
  const bool moses = style == Style::moses;
  const std::string compatible = nfkc(moses ? encoded(unescaped(decoded(line))) : std::string(line));
  const std::u32string text = collapsed_whitespace(normalised_punctuation(decoded(compatible), language, style));
  std::string out;
  for (const std::u32string& word : split_final_periods(tokenised_words(text, language, style), language)) {
    if (!out.empty()) out.push_back(' ');
    out += encoded(moses ? escaped(word) : word);
  }
  // Lower case last: the abbreviations and "followed by a lower-case word" are judged on the
  // text as written, as tokenizer.perl judged them.
  return python_lower(out);
}

std::string ordinary_text(const Tokens& tokens, Language language, Style style) {
  std::vector<std::u32string> words;
  for (const std::string& token : tokens) {
    require_utf8_text(token, "ordinary_text");
    words.push_back(style == Style::moses ? unescaped(decoded(token)) : decoded(token));
  }
  std::u32string text;
  bool space_before = false;  // whether the next word is separated from the text so far
  const auto append = [&](std::u32string_view word, bool attached_left, bool attached_right) {
    if (space_before && !attached_left) text.push_back(U' ');
    text += word;
    space_before = !attached_right;
  };
  std::size_t double_quotes = 0, single_quotes = 0;
  const auto follows_alnum = [&](std::size_t i) { return i > 0 && !words[i - 1].empty() && is_alnum(words[i - 1].back()); };
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::u32string& word = words[i];
    if (std::all_of(word.begin(), word.end(), [](char32_t c) { return is_currency(c) || is_one_of(c, U"([{¿¡"); })) {
      append(word, false, true);
    } else if (std::all_of(word.begin(), word.end(), [](char32_t c) { return is_one_of(c, U",.?!:;\\%}])"); })) {
      append(word, true, false);
    } else if (language == Language::english && follows_alnum(i) &&
               ((word.size() >= 2 && word[0] == U'\'' && is_alpha(word[1])) || (style == Style::penn && word == U"n't"))) {
      append(word, true, false);  // "dog 's" -> "dog's", "does n't" -> "doesn't"
    } else if (style == Style::penn && (word == U"``" || word == U"''")) {
      append(U"\"", word == U"''", word == U"``");  // the Penn Treebank's opening and closing quotes
    } else if (language == Language::german && word == U"'" && follows_alnum(i) && i + 1 < words.size() &&
               words[i + 1] == U"s") {
      append(U"'s", true, false);  // the German corpus splits the genitive's apostrophe off: "mcdonald ' s"
      ++i;
    } else if (word == U"\"" || word == U"'" || word == U"`") {
      std::size_t& count = word == U"\"" ? double_quotes : single_quotes;
      const bool plural_possessive = language == Language::english && word == U"'" && i > 0 && words[i - 1].ends_with(U's');
      if (count % 2 == 0 && !plural_possessive) {
        append(style == Style::penn && word == U"`" ? U"'" : word, false, true);  // an opening quote
        ++count;
      } else {
        append(word, true, false);  // a closing quote, or the apostrophe of "the dogs' bowls"
        if (count % 2 == 1) ++count;
      }
    } else {
      append(word, false, false);
    }
  }
  // The recaser: the first letter capitalised, nothing else (the corpus lost the case of
  // names); not when the first word is <unk>, which is no word to capitalise.
  const auto first_word = std::find_if(words.begin(), words.end(),
                                       [](const std::u32string& word) { return std::any_of(word.begin(), word.end(), is_alpha); });
  const auto first_letter = std::find_if(text.begin(), text.end(), is_alpha);
  if (first_letter != text.end() && *first_word != U"<unk>") {
    *first_letter = static_cast<char32_t>(u_totitle(static_cast<UChar32>(*first_letter)));
  }
  return encoded(text);
}

}  // namespace xgrad::models::moses
