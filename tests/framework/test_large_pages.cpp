// Large-page advice: it never changes an array's values, declines arrays without a whole 2 MB
// page, and where it reports success the kernel's own accounting shows the array on 2 MB pages.
#define BOOST_TEST_MODULE large_pages
#include "xgrad_test.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "xgrad/framework/large_pages.h"

using namespace xgrad;

namespace {

Array<float> counting(std::size_t size) {
  Array<float> array = Array<float>::from_shape({size});
  for (std::size_t i = 0; i < size; ++i) array(i) = static_cast<float>(i % 100003);
  return array;
}

bool still_counting(const Array<float>& array) {
  for (std::size_t i = 0; i < array.size(); ++i) {
    if (array(i) != static_cast<float>(i % 100003)) return false;
  }
  return true;
}

// The AnonHugePages of the mapping that holds `address`, from /proc/self/smaps, in kB.
std::size_t huge_kilobytes_around(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  BOOST_REQUIRE_MESSAGE(smaps, "cannot read /proc/self/smaps");
  const auto wanted = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= wanted && wanted < end;
    } else if (inside && line.starts_with("AnonHugePages:")) {
      return std::stoul(line.substr(line.find_first_of("0123456789")));
    }
  }
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_array_without_a_whole_large_page_is_declined_and_unchanged) {
  Array<float> small = counting(1000);
  BOOST_TEST(!advise_large_pages(small));
  BOOST_TEST(still_counting(small));
}

BOOST_AUTO_TEST_CASE(a_large_array_keeps_its_values_and_is_on_large_pages_when_advice_is_taken) {
  Array<float> large = counting(std::size_t(3) << 20);  // 12 MB: at least five whole 2 MB pages
  const bool taken = advise_large_pages(large);
  BOOST_TEST(still_counting(large));
#if defined(__linux__)
  if (taken) {
    BOOST_TEST(huge_kilobytes_around(large.data() + large.size() / 2) >= 5 * 2048u);
  } else {
    BOOST_TEST_MESSAGE("this system declined large pages (THP off, or a kernel before 6.1)");
  }
#endif
}
