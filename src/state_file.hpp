// The health check's memory: what earlier runs reported, in a JSON file only diskfault writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "file_descriptor.hpp"

namespace diskfault {

inline constexpr int kStateSchemaVersion = 1;

// One drive (or one device whose errors cannot be tied to a drive) that a check has reported.
struct StateEntry {
  // Every identity it has been seen under ("serial:...", "bus:<boot>:<address>",
  // "device:<boot>:<names>", "unresolved:<boot>:<device>"), sorted, without duplicates.
  std::vector<std::string> keys;
  std::string label;         // how the last check described it, for a person reading
  std::uint64_t errors = 0;  // errors the log held for it at the last check that saw it
  std::string newest;        // fingerprint of its newest error line at that check
  // Fingerprints of the lines shown as its evidence at that check (its newest among them).
  std::vector<std::string> seen;
  std::int64_t first_reported = 0;  // seconds since the epoch
  std::int64_t last_seen = 0;       // the last check whose log still showed it

  bool operator==(const StateEntry&) const = default;
};

struct CheckState {
  std::vector<StateEntry> drives;
  std::vector<StateEntry> unresolved;

  bool operator==(const CheckState&) const = default;
};

// The state as the file holds it (JSON, schema kStateSchemaVersion), ending in a newline.
std::string serialize_state(const CheckState& state);

// Parses what serialize_state wrote. Returns nullopt and sets `*problem` (one line) when the text
// is not such a state: not JSON, truncated, another schema, a field of the wrong type. Never
// throws for any input.
std::optional<CheckState> parse_state(std::string_view text, std::string* problem);

struct LoadedState {
  CheckState state;
  bool existed = false;  // false: no state file yet, this is the first run
  std::string warning;   // non-empty: the file was corrupt and is ignored (one line, names it)
};

// Reads the state file at `path`. A missing file is a first run (empty state); a corrupt one
// gives an empty state and a warning, so the caller reports everything afresh and the next save
// rebuilds it. Throws std::system_error naming the path when the file exists but cannot be read
// (permissions, a directory in its way) or is a symbolic link (never followed: ELOOP).
LoadedState load_state(const std::string& path);

// Replaces the state file atomically (temporary file beside it, fsync, rename) with mode 0600.
// Refuses to write through or replace a symbolic link. Throws std::system_error naming the path.
void save_state(const std::string& path, const CheckState& state);

// An exclusive flock(2) on "<state path>.lock", held for the lifetime of the object, so that two
// overlapping checks (a slow run and the next cron tick) run one after the other instead of both
// reporting the same new fault. The lock file is created (0600) if needed and never removed:
// removing it would let two runs lock two different files.
class StateLock {
 public:
  // Waits up to `wait` for the lock. Throws std::system_error naming the lock file when it cannot
  // be created or opened (a missing directory, permissions, a symbolic link) or is still held by
  // another process after `wait`.
  static StateLock acquire(const std::string& state_path, std::chrono::milliseconds wait);

  // The lock file that guards `state_path`.
  static std::string lock_path(const std::string& state_path) { return state_path + ".lock"; }

 private:
  explicit StateLock(FileDescriptor fd) : fd_(std::move(fd)) {}
  FileDescriptor fd_;  // closing it releases the lock
};

}  // namespace diskfault
