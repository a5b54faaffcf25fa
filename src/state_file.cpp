// Loading, saving and locking the check's state file; the file's content is treated as untrusted.
#include "state_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <thread>

#include "atomic_file.hpp"

namespace diskfault {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// A state file is a few hundred bytes per drive; anything this big is not one of ours.
constexpr off_t kMaxStateBytes = 16 * 1024 * 1024;

ordered_json entry_json(const StateEntry& e) {
  ordered_json j;
  j["keys"] = e.keys;
  j["label"] = e.label;
  j["errors"] = e.errors;
  j["newest"] = e.newest;
  j["seen"] = e.seen;
  j["first_reported"] = e.first_reported;
  j["last_seen"] = e.last_seen;
  return j;
}

// Throws json::exception on a missing field or a wrong type; the caller turns that into a problem.
StateEntry entry_from(const json& j) {
  StateEntry e;
  for (const json& key : j.at("keys")) e.keys.push_back(key.get<std::string>());
  std::set<std::string> unique(e.keys.begin(), e.keys.end());
  e.keys.assign(unique.begin(), unique.end());
  e.label = j.at("label").get<std::string>();
  e.errors = j.at("errors").get<std::uint64_t>();
  e.newest = j.at("newest").get<std::string>();
  for (const json& fp : j.at("seen")) e.seen.push_back(fp.get<std::string>());
  e.first_reported = j.at("first_reported").get<std::int64_t>();
  e.last_seen = j.at("last_seen").get<std::int64_t>();
  if (e.keys.empty()) throw std::invalid_argument("an entry without keys");
  return e;
}

std::vector<StateEntry> entries_from(const json& doc, const char* name) {
  const json& list = doc.at(name);
  if (!list.is_array()) throw std::invalid_argument(std::string("'") + name + "' is not a list");
  std::vector<StateEntry> entries;
  for (const json& j : list) entries.push_back(entry_from(j));
  return entries;
}

std::string read_all(int fd, const std::string& path) {
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read the state file", path);
    }
    if (got == 0) return text;
    text.append(buffer, static_cast<std::size_t>(got));
  }
}

}  // namespace

std::string serialize_state(const CheckState& state) {
  ordered_json doc;
  doc["schema_version"] = kStateSchemaVersion;
  doc["about"] =
      "diskfault check's memory of what it has reported; safe to delete (it then "
      "reports everything in the log once more).";
  doc["drives"] = ordered_json::array();
  for (const StateEntry& e : state.drives) doc["drives"].push_back(entry_json(e));
  doc["unresolved"] = ordered_json::array();
  for (const StateEntry& e : state.unresolved) doc["unresolved"].push_back(entry_json(e));
  return doc.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

std::optional<CheckState> parse_state(std::string_view text, std::string* problem) {
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    *problem = text.empty() ? "it is empty" : "it is not valid JSON (truncated?)";
    return std::nullopt;
  }
  try {
    if (!doc.is_object()) throw std::invalid_argument("it is not a JSON object");
    int version = doc.at("schema_version").get<int>();
    if (version != kStateSchemaVersion) {
      throw std::invalid_argument("schema_version " + std::to_string(version) + " is not " +
                                  std::to_string(kStateSchemaVersion));
    }
    CheckState state;
    state.drives = entries_from(doc, "drives");
    state.unresolved = entries_from(doc, "unresolved");
    return state;
  } catch (const std::exception& e) {
    *problem = e.what();
    return std::nullopt;
  }
}

LoadedState load_state(const std::string& path) {
  LoadedState loaded;
  int raw = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (raw < 0) {
    if (errno == ENOENT) return loaded;
    if (errno == ELOOP) throw_errno("refusing to follow the symbolic link", path);
    throw_errno("cannot open the state file", path);
  }
  FileDescriptor fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat the state file", path);
  if (!S_ISREG(st.st_mode)) {
    throw std::system_error(EINVAL, std::generic_category(),
                            "the state file " + path + " is not a regular file");
  }
  loaded.existed = true;
  std::string problem;
  if (st.st_size > kMaxStateBytes) {
    problem = "it is larger than any state diskfault writes";
  } else if (auto state = parse_state(read_all(fd.get(), path), &problem)) {
    loaded.state = std::move(*state);
    return loaded;
  }
  loaded.warning = "state file " + path + " is corrupt (" + problem +
                   "); starting over, every finding in the log is reported as new";
  for (char& c : loaded.warning) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return loaded;
}

void save_state(const std::string& path, const CheckState& state) {
  write_file_atomically(path, serialize_state(state), 0600);
}

StateLock StateLock::acquire(const std::string& state_path, std::chrono::milliseconds wait) {
  const std::string path = lock_path(state_path);
  int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) {
    if (errno == ELOOP) throw_errno("refusing to follow the symbolic link", path);
    throw_errno("cannot open the lock file", path);
  }
  FileDescriptor fd(raw);
  // flock(2) cannot time out by itself; polling keeps a stuck run from piling up cron jobs
  // behind it forever, without signals.
  constexpr std::chrono::milliseconds kPoll(50);
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) return StateLock(std::move(fd));
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) throw_errno("cannot lock", path);
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      throw std::system_error(
          EWOULDBLOCK, std::generic_category(),
          "another diskfault check still holds " + path + " after " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count()) +
              " s");
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(kPoll, deadline - now));
  }
}

}  // namespace diskfault
