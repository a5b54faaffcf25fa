// A cheap first look at a message's leading bytes that rules out most lines before the RE2::Set.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace diskfault {

// Answers "could any of these patterns match at the start of this message?" from the message's
// first few bytes. It is conservative by construction: each pattern is read into the byte sets
// its matches must start with (a sound over-approximation: repetitions, wide classes and
// anything the analysis does not follow only widen the sets), so a message that a pattern
// matches always passes. A pattern whose syntax the analysis does not understand makes the
// filter admit every message: slower, never wrong.
class RulePrefilter {
 public:
  // How many leading bytes the filter looks at.
  static constexpr std::size_t kDepth = 8;

  // `patterns` are RE2 patterns (default options: case-sensitive, UTF-8) matched anchored at
  // the start of the message, as RuleSet matches them.
  explicit RulePrefilter(const std::vector<std::string>& patterns);

  // False only if no pattern can match `message` anchored at its start.
  bool may_match(std::string_view message) const {
    if (admits_everything_) return true;
    if (message.empty()) return false;  // every path needs at least one byte
    // Most noise is turned away here, by its first two bytes, before any path is walked.
    if (message.size() >= 2 && !second_[static_cast<unsigned char>(message[0])].test(
                                   static_cast<unsigned char>(message[1]))) {
      return false;
    }
    for (std::uint32_t index : by_first_[static_cast<unsigned char>(message[0])]) {
      const Path& path = paths_[index];
      if (message.size() < path.size()) continue;
      bool ok = true;
      for (std::size_t i = 1; i < path.size(); ++i) {
        if (!path[i].test(static_cast<unsigned char>(message[i]))) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }

  // True when the analysis gave up on some pattern (or one can match without leading bytes).
  bool admits_everything() const { return admits_everything_; }

  using ByteSet = std::bitset<256>;
  // The byte sets one way through a pattern must consume first, position by position.
  using Path = std::vector<ByteSet>;

  // The leading-byte paths of one pattern, or false if the analysis does not follow it.
  static bool analyse(std::string_view pattern, std::vector<Path>* paths);

 private:
  bool admits_everything_ = false;
  std::vector<Path> paths_;
  std::array<std::vector<std::uint32_t>, 256> by_first_;
  // second_[a] holds every byte that may follow a leading `a` on some path (all bytes where a
  // one-byte path starts with `a`).
  std::array<ByteSet, 256> second_;
};

}  // namespace diskfault
