// Kernel messages that no kernel rule matches, remembered for the matcher's fast lane.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "rules.hpp"

namespace diskfault {

// Kernel messages that no kernel rule matches, as the prefilter or RE2 found, kept so that the
// fast lane knows a message met again without the prefilter's walk (about 960 instructions for a
// message past its first look, mostly literal searches) or a trip down the full path. Logs repeat
// their noise: a mount or a link line at every boot, a driver's notice every few seconds; of the
// 18 060 lines of the 100 MiB generated log that pass the first look, 371 messages are distinct. A
// message is kept whole and compared whole, so every answer is the rules' own.
class QuietMessages {
 public:
  // Whether a kernel rule may match `message`, which passed the prefilter's first look
  // (RuleSet::kernel_may_start()): RuleSet::kernel_may_match_started(), unless the message is
  // known. A call, not inlined: the fast lane's loop keeps its registers for its own values.
  [[gnu::noinline]] bool may_match(const RuleSet& rules, std::string_view message) {
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
  // One message to a slot, the last one kept there: a table of fixed size, made on first use,
  // with no allocation per message.
  static constexpr int kSlotBits = 8;
  static constexpr std::size_t kSlots = std::size_t{1} << kSlotBits;
  static constexpr std::size_t kLongest = 116;  // a longer message is not kept
  struct Slot {
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

  // The slot `message` belongs in, or null for a message that is not kept.
  Slot* slot_for(std::string_view message) {
    if (message.empty() || message.size() > kLongest) return nullptr;
    if (!slots_) slots_ = std::make_unique<Slot[]>(kSlots);
    // Every byte goes into the hash: messages that differ only in a device name or a number
    // would otherwise share a slot and push each other out.
    constexpr std::uint64_t kMix = 0x9e3779b97f4a7c15;
    std::uint64_t hash = message.size();
    std::size_t i = 0;
    for (; i + 8 <= message.size(); i += 8) {
      std::uint64_t word;
      std::memcpy(&word, message.data() + i, sizeof word);
      hash = (hash ^ word) * kMix;
    }
    for (; i < message.size(); ++i) hash = (hash ^ static_cast<unsigned char>(message[i])) * kMix;
    return &slots_[((hash ^ (hash >> 29)) * kMix) >> (64 - kSlotBits)];
  }

  std::unique_ptr<Slot[]> slots_;
};

}  // namespace diskfault
