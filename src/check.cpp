// The health check: identity keys, the comparison with the state, the Nagios output, the run.
#include "check.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "atomic_file.hpp"
#include "diagnose.hpp"
#include "file_descriptor.hpp"
#include "line_format.hpp"
#include "report_printers.hpp"
#include "source.hpp"
#include "utf8.hpp"

namespace diskfault {
namespace {

constexpr std::string_view kSerialKey = "serial:";

// FNV-1a, 64 bits: stable across builds and machines (std::hash is neither), which a file that
// outlives the binary needs. Collisions only matter between lines of the same drive.
std::string fingerprint(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::string newest_line(const ErrorTally& errors) {
  auto evidence = errors.evidence();
  return evidence.empty() ? std::string() : evidence.back().text;
}

std::string join(const std::vector<std::string>& items, std::string_view separator = ",") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += separator;
    out += s;
  }
  return out;
}

// One line of output from log text: valid UTF-8, no control bytes, and no '|', which would start
// the performance data in a Nagios plugin's output (U+00A6 BROKEN BAR looks the same to a person).
std::string printable(std::string_view text) {
  std::string out;
  for (char c : valid_utf8(text)) {
    if (c == '|') {
      out += "\xC2\xA6";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

// The boot a finding belongs to, as it will read the same in every later run.
std::string boot_identity(const Report& report, std::size_t source, const std::string& boot_key,
                          const CheckContext& context) {
  if (report.sources[source].path == kKernelLogPath && !context.live_boot_id.empty()) {
    return "id-" + valid_utf8(context.live_boot_id);
  }
  // "" is a boot whose first line is not in the log (it starts mid-boot). All such boots share
  // one identity, so a serial-less drive there can be taken for an earlier one at the same
  // address; it is still reported (as worse) when it has errors that run did not see, since its
  // newest error line differs.
  return boot_key.empty() ? "unknown" : "line-" + fingerprint(boot_key);
}

std::optional<std::string> bus_of(const Finding& f) {
  if (f.hctl) return *f.hctl;
  if (f.controller) return *f.controller;
  if (f.port) return *f.port;
  return std::nullopt;
}

// Strongest first: the serial, the bus address within the boot, the disk names within the boot.
std::vector<std::string> drive_keys(const Finding& f, const std::string& boot) {
  std::vector<std::string> keys;
  if (f.serial) keys.push_back(std::string(kSerialKey) + valid_utf8(f.serial->value));
  if (auto bus = bus_of(f)) keys.push_back("bus:" + boot + ":" + valid_utf8(*bus));
  if (!f.devices.empty()) keys.push_back("device:" + boot + ":" + valid_utf8(join(f.devices)));
  return keys;
}

std::string drive_label(const Finding& f) {
  std::vector<std::string> details;
  std::string head;
  auto bus = bus_of(f);
  if (f.serial) {
    head = "serial " + f.serial->value;
    if (!f.devices.empty()) details.push_back(join(f.devices));
    if (bus) details.push_back(*bus);
  } else if (!f.devices.empty()) {
    head = join(f.devices);
    if (bus) details.push_back(*bus);
  } else if (bus) {
    head = "drive at " + *bus;
  } else {
    head = "unidentified drive";
  }
  if (f.model) details.push_back(f.model->value);
  if (!details.empty()) head += " (" + join(details, ", ") + ")";
  return printable(head);
}

void add_keys(StateEntry& e, const std::vector<std::string>& keys) {
  std::set<std::string> all(e.keys.begin(), e.keys.end());
  all.insert(keys.begin(), keys.end());
  e.keys.assign(all.begin(), all.end());
}

// What a finding offers for matching with the previous run's entries.
struct Candidate {
  std::vector<std::string> keys;  // strongest first
  std::string newest;             // fingerprint of the newest error line
  bool has_serial = false;        // keys.front() is its serial key
};

// Pairs each candidate with at most one of `entries` (and each entry with at most one candidate):
// first by an unchanged newest error line, which only that drive's finding can hold even after
// rotation changed every key; then by key, strongest first, candidates with a serial before the
// others (after a swap within a boot, the old drive's entry goes to the old drive, not to the
// newcomer at its address). Two serials are two drives: a candidate with a serial never takes an
// entry that has another one. Returns, per candidate, the index of its entry.
std::vector<std::optional<std::size_t>> pair_up(const std::vector<Candidate>& candidates,
                                                const std::vector<StateEntry>& entries) {
  std::multimap<std::string, std::size_t> by_key, by_newest;
  for (std::size_t e = 0; e < entries.size(); ++e) {
    for (const auto& key : entries[e].keys) by_key.emplace(key, e);
    by_newest.emplace(entries[e].newest, e);
  }
  std::vector<bool> taken(entries.size(), false);
  std::vector<std::optional<std::size_t>> paired(candidates.size());
  auto compatible = [&](const Candidate& c, std::size_t e) {
    const auto& keys = entries[e].keys;
    bool entry_serial = std::any_of(keys.begin(), keys.end(),
                                    [](const std::string& k) { return k.starts_with(kSerialKey); });
    return !c.has_serial || !entry_serial ||
           std::find(keys.begin(), keys.end(), c.keys.front()) != keys.end();
  };
  auto take = [&](std::size_t i, const std::multimap<std::string, std::size_t>& index,
                  const std::string& key) {
    auto [from, to] = index.equal_range(key);
    for (auto it = from; it != to; ++it) {
      if (!taken[it->second] && compatible(candidates[i], it->second)) {
        taken[it->second] = true;
        paired[i] = it->second;
        return true;
      }
    }
    return false;
  };
  for (std::size_t i = 0; i < candidates.size(); ++i) take(i, by_newest, candidates[i].newest);
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].has_serial) order.push_back(i);
  }
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!candidates[i].has_serial) order.push_back(i);
  }
  for (std::size_t i : order) {
    for (const auto& key : candidates[i].keys) {
      if (paired[i] || take(i, by_key, key)) break;
    }
  }
  return paired;
}

std::vector<std::string> evidence_fingerprints(const ErrorTally& errors) {
  std::set<std::string> fps;
  for (const Evidence& e : errors.evidence()) fps.insert(fingerprint(e.text));
  return {fps.begin(), fps.end()};
}

// Decides new/worse/known for one finding, given the entry it was paired with (if any) and
// whether the previous check already saw its newest error line, and returns what to remember.
// A paired finding is worse when its count grew (the only sign of new errors in a log whose
// lines have no time stamps and repeat word for word) or its newest line is unseen.
StateEntry remember(const std::optional<StateEntry>& previous, const std::vector<std::string>& keys,
                    const std::string& label, const ErrorTally& errors, bool seen, std::int64_t now,
                    Compared& compared) {
  StateEntry next;
  if (previous) {
    next = *previous;
    compared.errors_before = previous->errors;
    compared.change = errors.total() > previous->errors || !seen ? Change::kWorse : Change::kKnown;
  } else {
    next.first_reported = now;
    compared.change = seen ? Change::kKnown : Change::kNew;
  }
  add_keys(next, keys);
  next.label = label;
  next.errors = errors.total();
  next.newest = fingerprint(newest_line(errors));
  next.seen = evidence_fingerprints(errors);
  next.last_seen = now;
  compared.label = label;
  return next;
}

// Which error lines the previous check saw. Logs grow at the end and lose lines only at the
// start (rotation, a wrapping ring buffer), so every line older than a line the previous check
// saw was in its log too. The newest such line per source is found among the current findings'
// evidence; only time-stamped lines count, since a line without a stamp can repeat word for word
// and a repeat is no proof of having been seen. A rotation that takes away the lines tying some
// errors to a drive splits its finding in two; the part without a key of its own is recognised
// this way instead of being replayed as new.
class SeenLines {
 public:
  SeenLines(const CheckState& previous, const Report& report) {
    for (const auto* list : {&previous.drives, &previous.unresolved}) {
      for (const StateEntry& e : *list) {
        fingerprints_.insert(e.newest);
        fingerprints_.insert(e.seen.begin(), e.seen.end());
      }
    }
    auto mark = [&](const ErrorTally& errors) {
      for (const Evidence& e : errors.evidence()) {
        if (e.at.time.empty() || !fingerprints_.contains(fingerprint(e.text))) continue;
        auto [it, fresh] = watermark_.emplace(e.at.source, e.at);
        if (!fresh && it->second.older_than(e.at)) it->second = e.at;
      }
    };
    for (const Finding& f : report.drives) mark(f.errors);
    for (const Unresolved& u : report.unresolved) mark(u.errors);
  }

  // Whether the previous check saw every error of `errors`: it saw the newest one.
  bool saw(const ErrorTally& errors) const {
    if (fingerprints_.contains(fingerprint(newest_line(errors)))) return true;
    auto it = watermark_.find(errors.last().source);
    return it != watermark_.end() && !it->second.older_than(errors.last());
  }

 private:
  std::set<std::string> fingerprints_;
  std::map<std::size_t, Position> watermark_;  // per source
};

// Entries no finding took: kept while young enough, so a log that shows them again later
// (another rotation, an older file passed again) does not report them as new.
void keep_unpaired(const std::vector<StateEntry>& entries,
                   const std::vector<std::optional<std::size_t>>& paired,
                   std::vector<StateEntry>& into, const CheckContext& context,
                   std::size_t& forgotten) {
  std::vector<bool> taken(entries.size(), false);
  for (const auto& e : paired) {
    if (e) taken[*e] = true;
  }
  for (std::size_t e = 0; e < entries.size(); ++e) {
    if (taken[e]) continue;
    if (context.now - entries[e].last_seen > context.forget_after) {
      ++forgotten;
    } else {
      into.push_back(entries[e]);
    }
  }
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string kinds(const ErrorTally& t) {
  std::string out;
  for (const auto& [kind, n] : t.by_kind()) {
    out += (out.empty() ? "" : " ") + kind + ":" + std::to_string(n);
  }
  return out;
}

std::string where(const Report& report, const Position& at) {
  std::string out = "line " + std::to_string(at.line) + " of " + report.sources[at.source].path;
  if (!at.time.empty()) out += " [" + at.time + "]";
  return out;
}

std::string change_text(const Compared& c, const ErrorTally& errors) {
  std::string total = plural(errors.total(), "error", "errors");
  switch (c.change) {
    case Change::kNew:
      return total;
    case Change::kWorse:
      if (errors.total() > c.errors_before) {
        return "errors increased from " + std::to_string(c.errors_before) + " to " +
               std::to_string(errors.total());
      }
      return "new errors since the last check (" + std::to_string(errors.total()) +
             " in the log now, " + std::to_string(c.errors_before) + " before)";
    case Change::kKnown:
      return total;
  }
  return total;
}

std::string_view change_name(Change change) {
  switch (change) {
    case Change::kNew:
      return "new";
    case Change::kWorse:
      return "worse";
    case Change::kKnown:
      return "known";
  }
  return "?";
}

std::string detail(const Report& report, const Compared& c, const std::string& what,
                   const ErrorTally& errors) {
  std::string out = printable(std::string(change_name(c.change)) + ": " + what + ": " +
                              change_text(c, errors) + " (" + kinds(errors) + ")" +
                              (c.change == Change::kKnown ? ", reported before" : "") +
                              ", last on " + where(report, errors.last()));
  return out + "\n  " + printable(newest_line(errors)) + "\n";
}

std::string labels(const std::vector<Compared>& list, Change change) {
  std::vector<std::string> names;
  for (const Compared& c : list) {
    if (c.change == change) names.push_back(c.label);
  }
  return join(names, ", ");
}

std::string read_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!(in >> id)) return "";
  return id;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

void emit(const std::string& text) {
  write_all(STDOUT_FILENO, text.data(), text.size(), "standard output");
}

}  // namespace

int exit_code(CheckStatus status, ExitStyle style) {
  if (style == ExitStyle::kNagios) return static_cast<int>(status);
  switch (status) {
    case CheckStatus::kOk:
      return 0;
    case CheckStatus::kWarning:
    case CheckStatus::kCritical:
      return 1;
    case CheckStatus::kUnknown:
      return 2;
  }
  return 2;
}

std::string_view status_name(CheckStatus status) {
  switch (status) {
    case CheckStatus::kOk:
      return "OK";
    case CheckStatus::kWarning:
      return "WARNING";
    case CheckStatus::kCritical:
      return "CRITICAL";
    case CheckStatus::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

std::size_t CheckOutcome::count(const std::vector<Compared>& list, Change change) const {
  return static_cast<std::size_t>(std::count_if(
      list.begin(), list.end(), [&](const Compared& c) { return c.change == change; }));
}

CheckOutcome compare_with_state(const Report& report, const CheckState& previous,
                                const CheckContext& context) {
  CheckOutcome outcome;
  outcome.drives.resize(report.drives.size());
  outcome.unresolved.resize(report.unresolved.size());

  std::vector<Candidate> drives;
  for (const Finding& f : report.drives) {
    drives.push_back({drive_keys(f, boot_identity(report, f.source, f.boot_key, context)),
                      fingerprint(newest_line(f.errors)), f.serial.has_value()});
  }
  const SeenLines seen(previous, report);
  auto drive_pairs = pair_up(drives, previous.drives);
  for (std::size_t i = 0; i < report.drives.size(); ++i) {
    std::optional<StateEntry> before;
    if (drive_pairs[i]) before = previous.drives[*drive_pairs[i]];
    outcome.drives[i].index = i;
    const Finding& f = report.drives[i];
    outcome.next.drives.push_back(remember(before, drives[i].keys, drive_label(f), f.errors,
                                           seen.saw(f.errors), context.now, outcome.drives[i]));
  }

  std::vector<Candidate> unresolved;
  for (const Unresolved& u : report.unresolved) {
    unresolved.push_back({{"unresolved:" + boot_identity(report, u.source, u.boot_key, context) +
                           ":" + valid_utf8(u.device)},
                          fingerprint(newest_line(u.errors)),
                          false});
  }
  auto unresolved_pairs = pair_up(unresolved, previous.unresolved);
  for (std::size_t i = 0; i < report.unresolved.size(); ++i) {
    std::optional<StateEntry> before;
    if (unresolved_pairs[i]) before = previous.unresolved[*unresolved_pairs[i]];
    outcome.unresolved[i].index = i;
    const Unresolved& u = report.unresolved[i];
    outcome.next.unresolved.push_back(remember(before, unresolved[i].keys, printable(u.device),
                                               u.errors, seen.saw(u.errors), context.now,
                                               outcome.unresolved[i]));
  }

  keep_unpaired(previous.drives, drive_pairs, outcome.next.drives, context, outcome.forgotten);
  keep_unpaired(previous.unresolved, unresolved_pairs, outcome.next.unresolved, context,
                outcome.forgotten);

  auto changed = [&](const std::vector<Compared>& list) {
    return outcome.count(list, Change::kNew) + outcome.count(list, Change::kWorse) > 0;
  };
  if (changed(outcome.drives)) {
    outcome.status = CheckStatus::kCritical;
  } else if (changed(outcome.unresolved)) {
    outcome.status = CheckStatus::kWarning;
  } else if (context.remind && (!report.drives.empty() || !report.unresolved.empty())) {
    outcome.status = CheckStatus::kWarning;
  } else {
    outcome.status = CheckStatus::kOk;
  }
  return outcome;
}

Report changed_findings(const Report& report, const CheckOutcome& outcome) {
  Report changed;
  changed.sources = report.sources;
  for (const Compared& c : outcome.drives) {
    if (c.change != Change::kKnown) changed.drives.push_back(report.drives[c.index]);
  }
  for (const Compared& c : outcome.unresolved) {
    if (c.change != Change::kKnown) changed.unresolved.push_back(report.unresolved[c.index]);
  }
  return changed;
}

std::string format_check(const Report& report, const CheckOutcome& outcome) {
  const std::size_t new_drives = outcome.count(outcome.drives, Change::kNew);
  const std::size_t worse_drives = outcome.count(outcome.drives, Change::kWorse);
  const std::size_t known_drives = outcome.count(outcome.drives, Change::kKnown);
  const std::size_t changed_unresolved =
      outcome.unresolved.size() - outcome.count(outcome.unresolved, Change::kKnown);

  std::vector<std::string> parts;
  if (new_drives > 0) {
    parts.push_back(plural(new_drives, "new faulty drive: ", "new faulty drives: ") +
                    labels(outcome.drives, Change::kNew));
  }
  if (worse_drives > 0) {
    parts.push_back(plural(worse_drives, "faulty drive got worse: ", "faulty drives got worse: ") +
                    labels(outcome.drives, Change::kWorse));
  }
  if (changed_unresolved > 0) {
    std::vector<std::string> devices;
    for (const Compared& c : outcome.unresolved) {
      if (c.change != Change::kKnown) devices.push_back(c.label);
    }
    parts.push_back("new errors not tied to a drive on " + join(devices, ", "));
  }
  if (parts.empty()) {
    if (report.drives.empty() && report.unresolved.empty()) {
      parts.push_back("nothing new, no disk errors in the log");
    } else {
      std::vector<std::string> known;
      if (known_drives > 0) known.push_back(plural(known_drives, "faulty drive", "faulty drives"));
      if (!report.unresolved.empty()) {
        known.push_back(plural(report.unresolved_errors(), "error", "errors") +
                        " not tied to a drive");
      }
      std::string text = "nothing new (reported before: " + join(known, ", ") + ")";
      if (outcome.status == CheckStatus::kWarning && known_drives > 0) {
        text += ": " + labels(outcome.drives, Change::kKnown);
      }
      parts.push_back(text);
    }
  }

  std::string out = "DISKFAULT " + std::string(status_name(outcome.status)) + " - " +
                    join(parts, "; ") + " | faulty_drives=" + std::to_string(report.drives.size()) +
                    ";;;0 new_faulty_drives=" + std::to_string(new_drives) +
                    ";;;0 worse_faulty_drives=" + std::to_string(worse_drives) +
                    ";;;0 unresolved_errors=" + std::to_string(report.unresolved_errors()) +
                    ";;;0\n";
  // A person reading cron mail gets one entry per finding that made the status; with --remind,
  // the known ones too.
  const bool remind = outcome.status == CheckStatus::kWarning &&
                      new_drives + worse_drives + changed_unresolved == 0;
  for (const Compared& c : outcome.drives) {
    if (c.change != Change::kKnown || remind) {
      out += detail(report, c, c.label, report.drives[c.index].errors);
    }
  }
  for (const Compared& c : outcome.unresolved) {
    if (c.change != Change::kKnown || remind) {
      const Unresolved& u = report.unresolved[c.index];
      out += detail(report, c, "errors not tied to a drive on " + c.label + " (" + u.reason + ")",
                    u.errors);
    }
  }
  return out;
}

std::string format_unknown(std::string_view reason) {
  return "DISKFAULT UNKNOWN - " + printable(reason) + "\n";
}

namespace {

// A monitoring system reads the UNKNOWN line on stdout; a tool that asked for JSON or metrics
// would choke on it, so it gets an empty stdout and the reason on stderr.
void report_failure(const CheckCommand& command, std::string_view reason) noexcept {
  try {
    if (command.output == CheckCommand::Output::kNagios) {
      emit(format_unknown(reason));
    } else {
      std::cerr << "diskfault: " << printable(reason) << "\n";
    }
  } catch (...) {
    // Standard output is gone; the exit code still says UNKNOWN.
  }
}

}  // namespace

int run_check(const CheckCommand& command, const std::function<RuleSet()>& make_rules) {
  try {
    DiagnoseOptions options;
    if (command.input_format != "auto") {
      options.format = parse_format_name(command.input_format);
      if (!options.format) {
        throw std::invalid_argument("unknown --input-format '" + command.input_format + "'");
      }
    }
    options.warn = warn_on_stderr;
    options.map_from = command.map_from;
    RuleSet rules = make_rules();
    const std::vector<std::string> logs =
        command.logs.empty() ? std::vector<std::string>{kKernelLogPath} : command.logs;

    // The lock is held from before the state is read until after it is written, log reading
    // included, so an overlapping run sees this run's result instead of reporting the same fault.
    std::optional<StateLock> lock;
    LoadedState loaded;
    if (!command.state_path.empty()) {
      lock.emplace(StateLock::acquire(command.state_path, command.lock_wait));
      loaded = load_state(command.state_path);
      if (!loaded.warning.empty()) warn_on_stderr(loaded.warning);
    }

    Report report = diagnose(logs, rules, options);
    // A serial the host supplies keys the drive by serial, which outlives device names and
    // boots; unreadable host files only mean fewer serials, as in the report.
    if (auto unreadable = apply_host_facts(report, command.host); !unreadable.empty()) {
      std::cerr << "diskfault: note: could not read " << unreadable.size()
                << " host file(s), some serials may be missing: " << unreadable.front() << "\n";
    }
    const double now = now_seconds();
    CheckContext context;
    context.now = static_cast<std::int64_t>(now);
    context.remind = command.remind;
    if (std::find(logs.begin(), logs.end(), kKernelLogPath) != logs.end()) {
      context.live_boot_id = read_boot_id();
    }
    CheckOutcome outcome = compare_with_state(report, loaded.state, context);

    std::string out;
    switch (command.output) {
      case CheckCommand::Output::kNagios:
        out = format_check(report, outcome);
        break;
      case CheckCommand::Output::kJson:
        out = format_json(changed_findings(report, outcome), DISKFAULT_VERSION);
        break;
      case CheckCommand::Output::kPrometheus:
        out = format_prometheus(report, now);
        break;
    }
    if (!command.textfile_dir.empty()) {
      write_file_atomically(command.textfile_dir + "/" + kPrometheusTextfileName,
                            format_prometheus(report, now), 0644);
    }
    // Saved before printing: if the state cannot be written, the run says UNKNOWN and the next
    // one reports the same findings again, instead of printing them now and forgetting them.
    if (!command.state_path.empty()) save_state(command.state_path, outcome.next);
    emit(out);
    return exit_code(outcome.status, command.exit_style);
  } catch (const std::exception& e) {
    report_failure(command, e.what());
  } catch (...) {
    report_failure(command, "unexpected error");
  }
  return exit_code(CheckStatus::kUnknown, command.exit_style);
}

}  // namespace diskfault
