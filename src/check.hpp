// The health check: compare a report with what earlier runs reported, and say what is new.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "host_enrich.hpp"
#include "report.hpp"
#include "reverse_line_reader.hpp"
#include "rules.hpp"
#include "state_file.hpp"

namespace diskfault {

// Nagios plugin states; the numbers are Nagios's exit codes.
enum class CheckStatus { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };

// How the status becomes an exit code: Nagios/Icinga (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)
// or node-problem-detector's custom plugins (0 OK, 1 problem, 2 unknown).
enum class ExitStyle { kNagios, kNpd };

int exit_code(CheckStatus status, ExitStyle style);
std::string_view status_name(CheckStatus status);

// What a check needs besides the report and the previous state.
struct CheckContext {
  std::int64_t now = 0;  // seconds since the epoch
  // The running kernel's boot id (/proc/sys/kernel/random/boot_id): the boot of everything read
  // from /dev/kmsg, whose ring buffer may no longer hold the boot's first line. "" if unknown.
  std::string live_boot_id;
  // A remembered drive the log no longer shows (rotated away, or the machine rebooted) is kept
  // this long after the last check that saw it, so a log set that shows it again does not replay
  // it.
  std::int64_t forget_after = 30 * 24 * 3600;
  bool remind = false;  // known faults still in the log make the status WARNING, not OK
};

enum class Change {
  kNew,    // not reported before
  kWorse,  // reported before, and the log has errors for it that the last check did not see
  kKnown,  // reported before, nothing since
};

struct Compared {
  std::size_t index = 0;  // into Report::drives or Report::unresolved
  Change change = Change::kNew;
  std::uint64_t errors_before = 0;  // for kWorse and kKnown: the count the last check saw
  std::string label;  // one line for a person: "serial Z1 (sdc, 2:0:0:0, ST4000NM0033)"
};

struct CheckOutcome {
  CheckStatus status = CheckStatus::kOk;
  std::vector<Compared> drives;      // one per report drive, in the report's order
  std::vector<Compared> unresolved;  // one per report unresolved device, in the report's order
  CheckState next;                   // what to remember for the next run
  std::size_t forgotten = 0;         // remembered entries dropped for age

  std::size_t count(const std::vector<Compared>& list, Change change) const;
};

// Matches every finding of `report` with the `previous` state by identity and decides what is
// new. Identity: the serial where the log states one; otherwise the bus address (H:C:T:L, NVMe
// controller, libata port), else the disk names, each only within one boot (the boot's first
// line, or the live boot id for /dev/kmsg), since addresses and names are reassigned at boot.
// A finding whose newest error line is the one an entry remembers is that entry's drive whatever
// its keys: a rotated log may have lost the lines that named it, never that line.
// A known finding is worse when its error count grew or its newest error line is one the last
// check did not see (a rotated log can lose old errors as new ones arrive, so the count alone
// could fall or stay). A finding whose newest error line the last check saw, or which is older
// than a time-stamped line it saw in the same log, brings nothing new even when no key matches
// (rotation split a drive's finding). Entries the report no longer shows are kept until
// `context.forget_after`.
CheckOutcome compare_with_state(const Report& report, const CheckState& previous,
                                const CheckContext& context);

// The report restricted to the new and worse findings (what --json prints).
Report changed_findings(const Report& report, const CheckOutcome& outcome);

// The Nagios plugin output: the status line with performance data, e.g.
//   DISKFAULT CRITICAL - 1 new faulty drive: serial Z1 (sdc, 2:0:0:0, M) | faulty_drives=3;;;0 ...
// then one line per new or worse finding, with its newest error line, for cron mail. Log text is
// made printable and valid UTF-8, and no line can carry a '|' into the status line.
std::string format_check(const Report& report, const CheckOutcome& outcome);

// The status line for a check that could not run: "DISKFAULT UNKNOWN - <reason>".
std::string format_unknown(std::string_view reason);

// Everything `diskfault check` was asked to do.
struct CheckCommand {
  enum class Output { kNagios, kJson, kPrometheus };
  std::vector<std::string> logs;  // empty: the running kernel's log
  std::string state_path;         // "": no memory, everything in the log is new
  std::string input_format = "auto";
  Output output = Output::kNagios;
  std::string textfile_dir;  // "": no textfile
  bool remind = false;
  ExitStyle exit_style = ExitStyle::kNagios;
  HostOptions host;  // what the running host adds to its current boot's findings, as the report
  std::chrono::milliseconds lock_wait{60'000};
  off_t map_from = ReverseLineReader::kMapMin;  // DiagnoseOptions::map_from
};

// Runs a check end to end: locks and loads the state, diagnoses the logs with the rules that
// `make_rules` builds and adds the host's facts as the report command does, writes the textfile,
// saves the state, prints the outcome on stdout and a corrupt-state warning on stderr. Returns the
// exit code. Never throws: anything that stops the check (an unreadable log or rules file, a state
// that cannot be read or written) prints one UNKNOWN line (with --json or --format prometheus:
// nothing on stdout, the reason in one line on stderr) and returns UNKNOWN's code, and the state
// is then left as it was.
int run_check(const CheckCommand& command, const std::function<RuleSet()>& make_rules);

}  // namespace diskfault
