// A cheap first look at a message that rules out most lines, and most rules, before any RE2 runs.
#pragma once

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "literal_search.hpp"

namespace diskfault {

// Answers "which of these patterns could match at the start of this message?" cheaply, before
// any regex runs. It is conservative by construction: each pattern is read into the byte sets
// its matches must start with (a sound over-approximation: repetitions, wide classes and
// anything the analysis does not follow only widen the sets), and into literals one of which
// every match must contain; a message that a pattern matches always passes for that pattern.
// A pattern whose syntax the analysis does not understand passes every message: slower, never
// wrong.
class RulePrefilter {
 public:
  // How many leading bytes the filter looks at.
  static constexpr std::size_t kDepth = 8;

  struct Analysis;
  using Analyser = Analysis (*)(std::string_view pattern);
  // `patterns` are RE2 patterns (case-sensitive) matched anchored at the start of the message,
  // as RuleSet matches them. `analysis_of` gives each one's Analysis: analyse_pattern(), or
  // RuleSet's, which takes a built-in pattern's from the build.
  explicit RulePrefilter(const std::vector<std::string>& patterns,
                         Analyser analysis_of = &RulePrefilter::analyse_pattern);

  // False only if no pattern can match `message` anchored at its start.
  bool may_match(std::string_view message) const {
    return may_start(message) && any_candidate(message);
  }

  // may_match()'s first look, by the first two bytes: false if no pattern can start so. Most
  // noise is turned away here, inline, before the walk in find_candidate() (which looks again,
  // for its other callers). The walk is a call: inlined into the fast lane's loop, it left too
  // few registers for the loop's own values.
  bool may_start(std::string_view message) const {
    return message.size() < 2 ||
           second_[static_cast<unsigned char>(message[0])][static_cast<unsigned char>(message[1])];
  }

  // Calls `visit(i)` for each pattern i, in increasing order, that may match `message`, until a
  // call returns true; returns whether one did.
  template <class Visit>
  bool find_candidate(std::string_view message, Visit&& visit) const {
    if (message.empty()) {
      for (std::uint32_t pattern : wildcards_) {
        if (literals_[pattern].found_in(message) && visit(std::size_t{pattern})) return true;
      }
      return false;
    }
    const auto first = static_cast<unsigned char>(message[0]);
    // Most noise is turned away here, by its first two bytes, before any path is walked.
    if (message.size() >= 2 && !second_[first][static_cast<unsigned char>(message[1])]) {
      return false;
    }
    std::uint32_t done = kNone;  // the last pattern looked at: its other paths add nothing
    for (const Entry& entry : by_first_[first]) {
      if (entry.pattern == done) continue;
      const Path& path = paths_[entry.path];
      if (message.size() < path.size()) continue;
      bool ok = true;
      for (std::size_t i = 1; i < path.size(); ++i) {
        if (!path[i][static_cast<unsigned char>(message[i])]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      done = entry.pattern;
      if (!literals_[entry.pattern].found_in(message) || !confirmed(entry.pattern, message)) {
        continue;
      }
      if (visit(std::size_t{entry.pattern})) return true;
    }
    return false;
  }

  // find_candidate() with a visitor that takes the first candidate.
  [[gnu::noinline]] bool any_candidate(std::string_view message) const;

  // True when the analysis gave up on some pattern (or one can match without leading bytes):
  // then every message may match.
  bool admits_everything() const { return !wildcards_.empty(); }

  using ByteSet = std::bitset<256>;
  // The byte sets one way through a pattern must consume first, position by position: at most
  // kDepth of them, kept in place (the analysis copies ways often, and runs at every start).
  class Path {
   public:
    Path() = default;
    explicit Path(const ByteSet& first) { push_back(first); }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    const ByteSet& operator[](std::size_t i) const { return sets_[i]; }
    ByteSet& operator[](std::size_t i) { return sets_[i]; }
    const ByteSet* begin() const { return sets_.data(); }
    const ByteSet* end() const { return sets_.data() + size_; }
    void push_back(const ByteSet& set) { sets_[size_++] = set; }
    // The first `n` sets, the ones past the old size empty.
    void resize(std::size_t n) {
      for (std::size_t i = size_; i < n; ++i) sets_[i].reset();
      size_ = n;
    }
    bool operator==(const Path& other) const {
      return size_ == other.size_ && std::equal(begin(), end(), other.begin());
    }

   private:
    std::array<ByteSet, kDepth> sets_;
    std::size_t size_ = 0;
  };

  // The leading-byte paths of one pattern, or false if the analysis does not follow it.
  static bool analyse(std::string_view pattern, std::vector<Path>* paths);
  // Literal byte strings one of which every match of `pattern` contains: the most telling such
  // set found (a run of literal bytes, or one string per alternative of a group); empty if none
  // is found, or the pattern uses syntax the analysis does not follow.
  static std::vector<std::string> required_literals(std::string_view pattern);

  // A literal run that a match holding required literal number `literal` holds too: another run
  // of the same alternative.
  struct Companion {
    std::uint32_t literal;
    std::string text;
    bool operator==(const Companion&) const = default;
  };
  // All the filter needs of one pattern.
  struct Analysis {
    bool followed = false;    // analyse() follows the pattern; if not, it passes every message
    std::vector<Path> paths;  // analyse()'s paths
    std::vector<std::string> literals;  // required_literals()
    std::vector<Companion> companions;  // in the order of their literals
    bool operator==(const Analysis&) const = default;
  };
  static Analysis analyse_pattern(std::string_view pattern);

  // An Analysis as constant data. The build writes the built-in rules' analyses so
  // (scripts/embed_prefilter.cpp): analysing them at every start cost 0.9 of the 1.8 million
  // instructions of a run on an empty log, and about 0.2 ms.
  using Words = std::array<std::uint64_t, 4>;  // a ByteSet, bytes 0-63 in the first word
  struct EmbeddedPath {
    std::size_t size;
    std::array<Words, kDepth> sets;
  };
  struct EmbeddedCompanion {
    std::uint32_t literal;
    std::string_view text;
  };
  struct EmbeddedAnalysis {
    std::string_view pattern;
    bool followed;
    std::span<const EmbeddedPath> paths;
    std::span<const std::string_view> literals;
    std::span<const EmbeddedCompanion> companions;
  };
  static Analysis from_embedded(const EmbeddedAnalysis& embedded);
  static Words words_of(const ByteSet& set);

 private:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  struct Entry {
    std::uint32_t path;
    std::uint32_t pattern;
  };
  // Whether `message`, which holds one of `pattern`'s literals, holds one together with all its
  // companions. A second look, for the few lines LiteralSearch lets through.
  bool confirmed(std::uint32_t pattern, std::string_view message) const;

  std::vector<Path> paths_;              // an empty path passes every message
  std::vector<LiteralSearch> literals_;  // per pattern: its required_literals()
  struct Conjunction {
    std::string literal;
    std::vector<std::string> others;  // its companions
  };
  // Per pattern: each literal with its companions; empty where none has any.
  std::vector<std::vector<Conjunction>> companions_;
  // by_first_[b]: the paths that may start with byte b, in pattern order.
  std::array<std::vector<Entry>, 256> by_first_;
  // second_[a] holds every byte that may follow a leading `a` on some path (all bytes where a
  // path is shorter than two bytes).
  std::array<ByteSet, 256> second_;
  std::vector<std::uint32_t> wildcards_;  // patterns that pass every message, the empty one too
};

// The built-in rules' analyses, from the build (default_prefilter.cpp).
extern const std::span<const RulePrefilter::EmbeddedAnalysis> kEmbeddedAnalyses;

// The end of the character class that opens at pattern[open] ('['), or npos where it uses syntax
// not followed here (a POSIX class such as [:alpha:]) or does not close.
std::size_t class_end(std::string_view pattern, std::size_t open);

}  // namespace diskfault
