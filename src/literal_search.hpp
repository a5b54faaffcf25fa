// Whether a message holds one of a few literal byte strings: the prefilter's last test.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cpu_features.hpp"

namespace diskfault {

// Whether a message holds one of a rule's literals. The lines that reach this test are mostly
// noise that starts like a rule's message ("XFS (sdb1): Mounting V5 Filesystem" is tried for
// xfs-error's fourteen literals). A search per literal finds each hit on the literal's first
// byte with memchr() and compares there, and first bytes are often common ones (the 'e' of
// "etadata I/O ", the ' ' of nvme's " timeout"). With AVX2, a literal's possible starts are
// tried 32 at a time on its first and last bytes together (W. Mula, "SIMD-friendly algorithms
// for substring searching"), and the bytes between are compared only where both match.
class LiteralSearch {
 public:
  LiteralSearch() = default;  // no literals: every message passes
  explicit LiteralSearch(std::vector<std::string> literals);

  // True when there are no literals or `message` contains one of them.
  bool found_in(std::string_view message) const {
    if (literals_.empty()) return true;
#if DISKFAULT_AVX2
    if (avx2() && message.size() >= kWindow) return found_avx2(message);
#endif
    return found_portably(message);
  }

  // Whether found_in() may use AVX2 where the processor has it (the default); tests turn it off
  // to compare both ways.
  static void allow_avx2(bool allowed) noexcept { avx2_allowed_ = allowed; }

 private:
  // The bytes one AVX2 step looks at: each literal's possible starts at 32 places.
  static constexpr std::size_t kWindow = 32;

  bool found_portably(std::string_view message) const;
#if DISKFAULT_AVX2
  bool found_avx2(std::string_view message) const;
  static bool avx2() noexcept { return cpu_has_avx2() && avx2_allowed_; }
#endif
  static inline bool avx2_allowed_ = true;

  std::vector<std::string> literals_;  // none empty
};

}  // namespace diskfault
