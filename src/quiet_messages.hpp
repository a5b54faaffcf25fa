// Kernel messages that no kernel rule matches, remembered for the matcher's fast lane.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "rules.hpp"

namespace diskfault {

// Kernel messages that no kernel rule matches, as the prefilter or RE2 found, kept so that the
// fast lane knows a message met again without the prefilter's walk (about 960 instructions for a
// message past its first look, mostly literal searches) or a trip down the full path. Logs repeat
// their noise: a mount or a link line at every boot, a driver's notice every few seconds; of the
// 18 060 lines of the 100 MiB generated log that pass the first look, 371 messages are distinct.
// A message is kept whole and compared whole, so every answer is the rules' own.
//
// The fast lane asks RuleSet::kernel_may_start() first, inline, and this table only past it. The
// lane writes the two calls out where it asks: the same test as an inlined function of its own
// compiled into the dmesg lane's loop with about six more instructions a line (callgrind, 100 MiB
// log: 130.7 million in all against 126.4).
class QuietMessages {
 public:
  // 2^slot_bits slots. With 256, 87% of the lookups of quiet messages found them on the 100 MiB
  // log (the first misses included); tests use one, so that every message meets every other.
  explicit QuietMessages(int slot_bits = 8) : slot_bits_(slot_bits) {
    if (slot_bits < 0 || slot_bits > 16) throw std::invalid_argument("QuietMessages: slot_bits");
  }

  // RuleSet::kernel_may_match_started(), unless `message` is known to be quiet; a message the
  // walk turns away is remembered. A call, not inlined: the fast lane's loop keeps its registers
  // for its own values.
  [[gnu::noinline]] bool kernel_may_match_started(const RuleSet& rules, std::string_view message) {
    Slot* slot = slot_for(message);
    if (slot != nullptr && slot->holds(message)) return false;
    if (rules.kernel_may_match_started(message)) return true;
    if (slot != nullptr) slot->keep(message);
    return false;
  }

  // Notes that no kernel rule matches `message`.
  void add(std::string_view message) {
    if (Slot* slot = slot_for(message)) slot->keep(message);
  }

 private:
  // The longest message kept: a slot is then two cache lines.
  static constexpr std::size_t kLongest = 124;
  struct alignas(64) Slot {
    std::uint32_t size = 0;  // 0 while empty: an empty message is never kept
    std::array<char, kLongest> bytes;
    bool holds(std::string_view message) const {
      return size == message.size() && std::memcmp(bytes.data(), message.data(), size) == 0;
    }
    void keep(std::string_view message) {
      size = static_cast<std::uint32_t>(message.size());
      std::memcpy(bytes.data(), message.data(), message.size());
    }
  };
  static_assert(sizeof(Slot) == 128);

  // The slot `message` belongs in (the last message hashed there stays), or null for a message
  // that is not kept. The table is made on first use: a log none of whose lines pass the
  // prefilter's first look never needs it.
  Slot* slot_for(std::string_view message) {
    const std::size_t size = message.size();
    if (size == 0 || size > kLongest) return nullptr;
    if (!slots_) slots_ = std::make_unique<Slot[]>(std::size_t{1} << slot_bits_);
    // Every byte goes into the hash: messages that differ only in a device name or a number
    // would otherwise share a slot and push each other out.
    constexpr std::uint64_t kMix = 0x9e3779b97f4a7c15;
    auto word_at = [&](std::size_t at) {
      std::uint64_t word;
      std::memcpy(&word, message.data() + at, sizeof word);
      return word;
    };
    std::uint64_t hash = size;
    if (size >= 8) {
      for (std::size_t at = 0; at + 8 <= size; at += 8) hash = (hash ^ word_at(at)) * kMix;
      hash = (hash ^ word_at(size - 8)) * kMix;  // the last bytes, overlapping the word before
    } else {
      for (char c : message) hash = (hash ^ static_cast<unsigned char>(c)) * kMix;
    }
    // The top slot_bits bits, in two shifts: one of 64 would be undefined for a single slot.
    return &slots_[(((hash ^ (hash >> 29)) * kMix) >> (63 - slot_bits_)) >> 1];
  }

  int slot_bits_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace diskfault
