// Tests that the fast lane's memory of quiet messages answers as the rules do.
#include "quiet_messages.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace diskfault;

namespace {

// Kernel messages past the prefilter's first look: some that rules take, some that the
// prefilter or RE2 turns away, and variants of each that differ from it in one byte or in
// length, around the longest message a slot keeps (124 bytes).
std::vector<std::string> messages_past_first_look(const RuleSet& rules) {
  const std::vector<std::string> bases{
      "XFS (sdc1): metadata I/O error in \"xfs_imap_to_bp+0x5c/0xa0 [xfs]\" at daddr 0x1 len 32 "
      "error 5",
      "XFS (sdc1): Mounting V5 Filesystem",
      "sd 2:0:0:0: [sdc] Attached SCSI disk",
      "sd 2:0:0:0: [sdc] tag#3 Sense Key : Illegal Request [current]",
      "blk_update_request: I/O error, dev sdc, sector 1234 op 0x0:(READ) flags 0x0",
      "ata3: SATA link up 6.0 Gbps (SStatus 133 SControl 300)",
      "nvme nvme0: Shutdown timeout set to 8 seconds",
      "md/raid1:md0: Disk failure on sdc1, disabling device.",
      "EXT4-fs (dm-0): mounted filesystem with ordered data mode. Quota mode: none.",
      "EXT4-fs error (device sdc1): ext4_find_entry:1455: inode #2: comm ls: reading directory "
      "lblock 0",
  };
  std::mt19937 rng(21);
  std::vector<std::string> all;
  for (const std::string& base : bases) {
    all.push_back(base);
    for (std::size_t size : {1, 2, 7, 8, 9, 123, 124, 125, 140}) {
      std::string resized = base;
      resized.resize(size, "x 0:]"[rng() % 5]);
      all.push_back(resized);
    }
    for (std::size_t at = 0; at < base.size(); ++at) {
      std::string changed = base;
      changed[at] = "x 0:]"[rng() % 5];
      all.push_back(changed);
    }
    for (const std::string& other : bases) {  // a first byte that rules may start with too
      std::string changed = base;
      changed[0] = other[0];
      all.push_back(changed);
    }
  }
  // The shortest start of each message a rule takes, and that start with its last byte changed:
  // messages of one length that only their last byte tells apart, some of them far into the
  // message (a long device name).
  std::vector<std::string> starts = bases;
  starts.push_back("XFS (" + std::string(70, 'd') + "): metadata I/O error in \"xfs_imap_to_bp\"");
  for (const std::string& message : starts) {
    for (std::size_t size = 1; size <= message.size(); ++size) {
      std::string start = message.substr(0, size);
      if (!rules.match(start, {}, true)) continue;
      all.push_back(start);
      for (char c : {'x', ' ', '\x01'}) {
        start.back() = c;
        all.push_back(start);
      }
      break;
    }
  }
  // Longer than a slot keeps, of one length, alike for far longer than that: an error and the
  // noise of a filesystem whose device name is long.
  const std::string device = "XFS (" + std::string(120, 'd') + "): ";
  const std::string error = device + "metadata I/O error in \"xfs_imap_to_bp\" at daddr 0x1 len 32";
  std::string noise = device + "Mounting V5 Filesystem";
  noise.resize(error.size(), ' ');
  all.insert(all.end(), {error, noise});
  std::erase_if(all, [&](const std::string& m) { return !rules.kernel_may_start(m); });
  return all;
}

}  // namespace

TEST_CASE("messages known to be quiet are answered as the rules answer them") {
  const RuleSet& rules = test::default_rule_set();
  const std::vector<std::string> messages = messages_past_first_look(rules);
  std::size_t matched = 0, candidates = 0;
  for (const std::string& m : messages) {
    if (rules.match(m, {}, true)) ++matched;
    if (rules.kernel_may_match_started(m)) ++candidates;
  }
  // Both kinds, and messages the prefilter passes but RE2 turns away, or this proves nothing.
  REQUIRE(matched > 100);
  REQUIRE(messages.size() - candidates > 100);
  REQUIRE(candidates > matched);
  REQUIRE(rules.match(messages.back(), {}, true) == std::nullopt);
  REQUIRE(rules.match(messages[messages.size() - 2], {}, true) != std::nullopt);

  // With 256 slots as in use, and with one, where every message meets every other.
  for (int slot_bits : {8, 0}) {
    CAPTURE(slot_bits);
    QuietMessages known(slot_bits);
    std::mt19937 rng(22);
    std::size_t wrong = 0, said_quiet = 0, remembered = 0;
    std::string first_wrong;
    for (int i = 0; i < 60000; ++i) {
      const std::string& m = messages[rng() % messages.size()];
      const bool rule_matches = rules.match(m, {}, true).has_value();
      if (rng() % 4 == 0) {
        // The full path's way in: RE2 found no kernel rule for the message.
        if (!rule_matches) known.add(m);
        continue;
      }
      const bool may = known.kernel_may_match_started(rules, m);
      // Never quiet where a rule matches; never a candidate where the prefilter sees none.
      if ((!may && rule_matches) || (may && !rules.kernel_may_match(m))) {
        if (wrong++ == 0) first_wrong = m;
      }
      if (!may) ++said_quiet;
      // Quiet where the walk names a candidate: only RE2's answer, kept by add(), can say so.
      if (!may && rules.kernel_may_match_started(m)) ++remembered;
    }
    CAPTURE(first_wrong);
    CHECK(wrong == 0);
    CHECK(said_quiet > 10000);
    // 2 509 with 256 slots; 5 with one, where any other message pushes the kept one out.
    CHECK(remembered > (slot_bits == 8 ? 1000U : 0U));
  }
}

TEST_CASE("a message a rule matches is never taken for a quiet one of its length") {
  // Every pair: a quiet message kept, then a message of the same length that a rule matches,
  // asked of a table of one slot, where the first is the only one the second can meet.
  const RuleSet& rules = test::default_rule_set();
  const std::vector<std::string> messages = messages_past_first_look(rules);
  std::vector<const std::string*> quiet, matched;
  for (const std::string& m : messages) (rules.match(m, {}, true) ? matched : quiet).push_back(&m);
  std::size_t pairs = 0, wrong = 0;
  std::string first_wrong;
  for (const std::string* a : quiet) {
    for (const std::string* b : matched) {
      if (a->size() != b->size()) continue;
      ++pairs;
      QuietMessages known(0);
      known.add(*a);
      if (!known.kernel_may_match_started(rules, *b) && wrong++ == 0) first_wrong = *b;
    }
  }
  CAPTURE(first_wrong);
  CHECK(pairs > 1000);
  CHECK(wrong == 0);
}
