// The follower's memory of the current boot: its matched lines, resolved by the batch correlator.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "correlator.hpp"
#include "report.hpp"
#include "rules.hpp"

namespace diskfault {

// One matched line of the current boot, owned (a Match only views the matcher's buffers).
struct RetainedMatch {
  // The rules the line matched; shared so that a rules reload (SIGHUP) leaves the rule alive
  // for the lines it matched.
  std::shared_ptr<const RuleSet> rules;
  std::size_t rule = 0;  // index into rules->rules()
  std::array<std::string, kFieldCount> captures;
  std::uint64_t number = 0;  // line number in the followed stream
  std::uint64_t lines = 1;   // this line and the older ones alike that were let go
  std::string time;
  std::string text;
};

// What the retention cap counts by: the rule's name and the captures (one error kind on one
// device, one fact about one address).
std::string entity_key(const RetainedMatch& match);

// Keeps the matched lines of the boot in force and answers, whenever asked, what the batch
// correlator (BootCorrelator: the one copy of the identity semantics) makes of them: it replays
// them newest first into a fresh BootCorrelator. Matched lines are rare next to the noise, so
// the copy is small; to bound it when a drive floods the log, at most kKeepPerEntity lines are
// kept per rule and set of captures (one error kind on one device): older ones go, counted on
// the oldest line kept, so a flooding drive's totals stay exact and every identity fact stays
// in force (its first_seen moves up to that line).
class FollowCorrelator {
 public:
  static constexpr std::size_t kKeepPerEntity = 64;

  FollowCorrelator(std::string source_name, std::string format_name);

  // A new boot starts at a line whose text is `boot_key` ("" when unknown): the device names
  // and addresses of the old boot no longer hold, so everything retained goes.
  void start_boot(std::string boot_key);
  // Keeps one match of the current boot (never a boot boundary). Matches come in file order.
  void retain(RetainedMatch match);

  // The fold key (see fold_key()) of what the newest retained match, an error, belongs to, or
  // nullopt when the correlator keeps no record of it (a name it ignores). Answers for an error
  // whose rule and captures were seen since the last identity line are remembered, so a flood
  // of one error costs a lookup, not a replay.
  std::optional<std::string> newest_error_key();

  // The current boot as the batch report would print it: `lines` is the stream's line count so
  // far (it numbers the positions), boots are counted from the one in force at start-up (1).
  Report report(std::uint64_t lines) const;

  // Names the boot in force at start-up by its first line, once learning has found it.
  void set_boot_key(std::string boot_key) { boot_key_ = std::move(boot_key); }

  std::uint32_t boot() const { return boot_; }
  std::size_t retained() const { return matches_.size(); }
  std::uint64_t let_go() const { return let_go_; }
  void set_format_name(std::string name) { format_name_ = std::move(name); }

 private:
  BootCorrelator::Result replay(std::uint64_t newest) const;

  std::string source_name_, format_name_;
  std::string boot_key_;
  std::uint32_t boot_ = 1;
  std::map<std::uint64_t, RetainedMatch> matches_;              // by line number
  std::map<std::string, std::deque<std::uint64_t>> by_entity_;  // entity -> its line numbers
  std::uint64_t let_go_ = 0;
  std::string newest_entity_;
  std::map<std::string, std::optional<std::string>> key_cache_;  // error entity -> fold key
};

// What the quiet period folds on: the drive's serial where the log states it (a drive keeps it
// across boots), else its address, device or port within the boot.
std::string fold_key(const Finding& finding, std::uint32_t boot);
std::string fold_key(const Unresolved& unresolved, std::uint32_t boot);

}  // namespace diskfault
