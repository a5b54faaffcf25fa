// One of a few literals in a message: AVX2 first-and-last-byte screening, or a search per literal.
#include "literal_search.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace diskfault {

LiteralSearch::LiteralSearch(std::vector<std::string> literals) : literals_(std::move(literals)) {
  // An empty literal is in every message: then so is one of the set.
  if (std::any_of(literals_.begin(), literals_.end(), [](const auto& l) { return l.empty(); })) {
    literals_.clear();
  }
}

bool LiteralSearch::found_portably(std::string_view message) const {
  return std::any_of(literals_.begin(), literals_.end(), [&](const std::string& literal) {
    return message.find(literal) != std::string_view::npos;
  });
}

#if DISKFAULT_AVX2
// Needs message.size() >= kWindow. No load reads past the message.
[[gnu::target("avx2")]] bool LiteralSearch::found_avx2(std::string_view message) const {
  const char* const text = message.data();
  for (const std::string& literal : literals_) {
    const std::size_t n = literal.size();
    if (message.size() < kWindow + n - 1) {  // too short for one window of this literal's starts
      if (message.find(literal) != std::string_view::npos) return true;
      continue;
    }
    const __m256i first = _mm256_set1_epi8(literal.front());
    const __m256i last = _mm256_set1_epi8(literal.back());
    // The literal may start at 0 .. size - n. The last window ends there, overlapping the one
    // before it rather than reading past the message.
    const std::size_t last_window = message.size() - n + 1 - kWindow;
    for (std::size_t at = 0;; at += kWindow) {
      at = std::min(at, last_window);
      const __m256i starts = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(text + at));
      const __m256i ends = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(text + at + n - 1));
      auto both = static_cast<std::uint32_t>(_mm256_movemask_epi8(
          _mm256_and_si256(_mm256_cmpeq_epi8(starts, first), _mm256_cmpeq_epi8(ends, last))));
      while (both != 0) {
        const std::size_t start = at + static_cast<std::size_t>(std::countr_zero(both));
        if (n <= 2 || std::memcmp(text + start + 1, literal.data() + 1, n - 2) == 0) return true;
        both &= both - 1;
      }
      if (at == last_window) break;
    }
  }
  return false;
}
#endif

}  // namespace diskfault
