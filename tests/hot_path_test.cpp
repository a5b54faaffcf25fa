// Tests that the hot path's shortcuts give exactly the answers of the plain way.
#include <doctest/doctest.h>

#include <charconv>
#include <cstdio>
#include <random>
#include <string>

#include "line_format.hpp"

using namespace diskfault;

namespace {

// What the stamp inside "[...]" is worth when read by std::from_chars, or -1.
double plain_seconds(const std::string& stamp) {
  std::size_t first = stamp.find_first_not_of(' ');
  std::size_t last = stamp.find_last_not_of(' ');
  if (first == std::string::npos || stamp[first] < '0' || stamp[first] > '9') return -1;
  double value = -1;
  const char* begin = stamp.data() + first;
  const char* end = stamp.data() + last + 1;
  auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || stop != end) return -1;
  return value;
}

}  // namespace

TEST_CASE("dmesg stamps read by the fast path equal std::from_chars bit for bit") {
  std::mt19937_64 rng(3);
  char stamp[64];
  for (int i = 0; i < 200000; ++i) {
    unsigned long long seconds = rng() % (i % 2 ? 100000ULL : 100000000000ULL);
    unsigned long long fraction = rng() % 1000000;
    int width = 1 + static_cast<int>(rng() % 8);
    std::snprintf(stamp, sizeof stamp, "%*llu.%0*llu", 5, seconds, width,
                  fraction % (width >= 6 ? 1000000ULL : 1000ULL));
    Record r = parse_line(LogFormat::kDmesg, std::string("[") + stamp + "] sd 0:0:0:0: x");
    double expected = plain_seconds(stamp);
    CHECK_MESSAGE(r.monotonic == expected, stamp);
  }
  for (const std::string odd :
       {"1.", "0", "000000000001234.5", "1234567890123456.5", "1e3", "12.3.4", "  7.250000",
        "99999999999999.9", "9999999999999999", "0.000000000000001", "1.0000000000000001"}) {
    Record r = parse_line(LogFormat::kDmesg, "[" + odd + "] msg");
    CHECK_MESSAGE(r.monotonic == plain_seconds(odd), odd);
  }
}
