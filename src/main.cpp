// diskfault's command line: parse arguments, call the library, map the outcome to an exit status.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "atomic_file.hpp"
#include "check.hpp"
#include "diagnose.hpp"
#include "file_descriptor.hpp"
#include "follow.hpp"
#include "heap_prefault.hpp"
#include "host_enrich.hpp"
#include "line_format.hpp"
#include "report_printers.hpp"
#include "rules.hpp"
#include "source.hpp"

namespace {

using namespace diskfault;

// Exit statuses of the report command (see README.md, "Exit status").
constexpr int kExitClean = 0;
constexpr int kExitFaults = 1;
constexpr int kExitError = 2;

struct RuleOptions {
  std::vector<std::string> files;
  bool no_defaults = false;
};

RuleSet build_rules(const RuleOptions& options) {
  std::vector<Rule> rules;
  // User rules go first: the first matching rule wins, so theirs can override a built-in one.
  for (const std::string& file : options.files) {
    auto more = load_rules_file(file);
    rules.insert(rules.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
  }
  if (!options.no_defaults) {
    auto defaults = default_rules();
    rules.insert(rules.end(), std::make_move_iterator(defaults.begin()),
                 std::make_move_iterator(defaults.end()));
  }
  if (rules.empty())
    throw RulesError("no rules: --no-default-rules needs at least one --rules FILE");
  return RuleSet(std::move(rules));
}

// Everything goes out in one write, so a failure leaves nothing half-printed on stdout.
void emit(const std::string& text) {
  write_all(STDOUT_FILENO, text.data(), text.size(), "standard output");
}

std::string_view event_name(EventType type) {
  switch (type) {
    case EventType::kError:
      return "error";
    case EventType::kBoot:
      return "boot";
    case EventType::kAppear:
      return "appear";
    case EventType::kAttach:
      return "attach";
    case EventType::kDetach:
      return "detach";
    case EventType::kFact:
      return "fact";
    case EventType::kEpisodeStart:
      return "episode-start";
    case EventType::kEpisodeEnd:
      return "episode-end";
  }
  return "?";
}

// A duration option's value; a malformed one is a usage error.
std::chrono::seconds duration_option(const char* option, const std::string& text) {
  auto value = parse_duration(text);
  if (!value) {
    throw std::runtime_error(std::string(option) + " '" + text +
                             "' is not a duration such as 30s, 10m or 1h");
  }
  return *value;
}

int run(int argc, char** argv, const PrefaultedHeap& heap) {
  const off_t map_from = heap.huge ? kMapFromWithHugeHeap : ReverseLineReader::kMapMin;
  CLI::App app{
      "diskfault: trace every disk error in a kernel log to the physical drive (serial, bus "
      "address, model).\nWith no LOG, reads the running kernel's log (/dev/kmsg). LOG '-' is "
      "standard input.\nExit status: 0 no faulty drive, 1 at least one, 2 usage or input error.",
      "diskfault"};
  app.set_version_flag("--version", std::string("diskfault ") + DISKFAULT_VERSION);
  app.require_subcommand(0, 1);
  // Rule options given after a subcommand ("rules --list --rules F") still reach the main app.
  app.fallthrough();

  std::vector<std::string> logs;
  std::string output_format = "json";
  std::string input_format = "auto";
  RuleOptions rule_options;
  app.add_option("LOG", logs, "Kernel log files (dmesg, kern.log, journalctl -k, /dev/kmsg dump)");
  std::string textfile_dir;
  app.add_option("--format", output_format, "Output: json (default), table or prometheus")
      ->check(CLI::IsMember({"json", "table", "prometheus"}));
  app.add_option("--textfile", textfile_dir,
                 "Also write the Prometheus metrics to DIR/diskfault.prom, atomically (for "
                 "node_exporter's textfile collector)");
  app.add_option("--input-format", input_format,
                 "Log format: auto (default, per file), dmesg, dmesg-T, syslog, "
                 "journal-monotonic, rfc5424, kmsg");
  app.add_option("--rules", rule_options.files,
                 "Extra rules file (JSON); its rules are tried before the built-in ones")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  app.add_flag("--no-default-rules", rule_options.no_defaults,
               "Use only the rules given with --rules");
  HostOptions host_options;
  app.add_option("--sysfs-root", host_options.roots.sysfs,
                 "Read the host's disks from this sysfs tree (default /sys)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--udev-root", host_options.roots.udev,
                 "Read udev's database from this directory (default /run/udev/data)")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--this-host", host_options.this_host,
               "The last boot of the last LOG is this host's current boot: its errors get the "
               "host's serials and slots");
  // For tests: the running kernel's boot id, matched against a journal's "-- Boot <id> --".
  app.add_option("--boot-id-file", host_options.boot_id_file)->group("");

  // A subcommand is entered only by its name in argv, so its options are added only then: CLI11
  // builds each option out of several allocations, and a report run spent about 0.15 ms on the
  // subcommands' 23 (BENCHMARKS.md, item 33). The subcommands themselves stay, for --help.
  auto named = [&](std::string_view name) {
    return argc > 1 &&
           std::any_of(argv + 1, argv + argc, [&](const char* arg) { return arg == name; });
  };
  // The log and rule options `check` and `follow` take as the report does, into the same values.
  auto add_log_options = [&](CLI::App* command) {
    command->add_option("--input-format", input_format, "Log format, as for the report");
    command->add_option("--rules", rule_options.files, "Extra rules file (JSON), as for the report")
        ->check(CLI::ExistingFile)
        ->allow_extra_args(false);
    command->add_flag("--no-default-rules", rule_options.no_defaults,
                      "Use only the rules given with --rules");
  };

  CLI::App* rules_cmd =
      app.add_subcommand("rules", "List the rules in force, or check a rules file");
  std::string check_file;
  bool list = false;
  if (named(rules_cmd->get_name())) {
    rules_cmd->add_option("--check", check_file,
                          "Validate FILE: patterns compile, samples match, near misses do not");
    rules_cmd->add_flag("--list", list,
                        "Print the rules in force (with --rules/--no-default-rules)");
  }

  CLI::App* check_cmd = app.add_subcommand(
      "check",
      "Health check for cron and monitoring: report only faults not reported before (with "
      "--state).\nExit status (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.");
  CheckCommand check;
  std::string check_format = "nagios";
  std::string exit_style = "nagios";
  bool check_json = false;
  if (named(check_cmd->get_name())) {
    check_cmd->add_option("LOG", check.logs, "Kernel log files; none: the running kernel's log");
    check_cmd->add_option("--state", check.state_path,
                          "State file remembering what was reported (created if missing)");
    auto* json_flag = check_cmd->add_flag("--json", check_json,
                                          "Print the JSON report of the new findings instead");
    check_cmd->add_option("--format", check_format, "Output: nagios (default) or prometheus")
        ->check(CLI::IsMember({"nagios", "prometheus"}))
        ->excludes(json_flag);
    check_cmd->add_option("--textfile", check.textfile_dir,
                          "Also write the Prometheus metrics to DIR/diskfault.prom, atomically");
    check_cmd->add_flag("--remind", check.remind,
                        "Known faulty drives still in the log make the status WARNING, not OK");
    check_cmd
        ->add_option("--exit-style", exit_style,
                     "Exit codes: nagios (default: 0/1/2/3) or npd (node-problem-detector: "
                     "0 OK, 1 problem, 2 unknown)")
        ->check(CLI::IsMember({"nagios", "npd"}));
    add_log_options(check_cmd);
  }

  CLI::App* follow_cmd = app.add_subcommand(
      "follow",
      "Watch a live kernel log and report each disk fault as it is logged, one JSON object per "
      "line (NDJSON).\nWith no LOG, follows the running kernel's log (/dev/kmsg). Runs until "
      "SIGINT or SIGTERM (exit 0); SIGHUP reloads the rules and reopens the log.");
  FollowOptions follow_options;
  std::string quiet_period = "10m";
  std::string exec_timeout = "5m";
  if (named(follow_cmd->get_name())) {
    follow_cmd->add_option("LOG", follow_options.log,
                           "Log file to follow like tail -F (it may not exist yet)");
    follow_cmd->add_flag("--from-start", follow_options.from_start,
                         "Also report the faults of the current boot already in the log");
    follow_cmd
        ->add_option("--exec", follow_options.exec_commands,
                     "Run CMD (/bin/sh -c) per event: event JSON on stdin, DISKFAULT_* "
                     "variables in the environment (repeatable)")
        ->allow_extra_args(false);
    follow_cmd->add_option("--textfile", follow_options.textfile_dir,
                           "Keep DIR/diskfault.prom current (node_exporter's textfile collector)");
    follow_cmd->add_option("--exec-timeout", exec_timeout,
                           "Kill an --exec command still running after this long: 30s, 5m "
                           "(default), 1h; 0 never");
    follow_cmd->add_option("--quiet-period", quiet_period,
                           "One event per drive and error kind per period, with a count of what "
                           "was folded in: 30s, 10m (default), 1h; 0 reports every line");
    add_log_options(follow_cmd);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A monitoring system reads bad usage of the check as UNKNOWN, like any other failure.
    if (check_cmd->parsed() && e.get_exit_code() != 0) {
      emit(format_unknown(e.what()));
      return exit_code(CheckStatus::kUnknown,
                       exit_style == "npd" ? ExitStyle::kNpd : ExitStyle::kNagios);
    }
    if (e.get_exit_code() == 0) return app.exit(e) == 0 ? kExitClean : kExitError;  // --help
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');  // one line, as every error here
    throw std::runtime_error(what + " (see --help)");
  }

  if (rules_cmd->parsed()) {
    if (!check_file.empty()) {
      RuleSet rules(load_rules_file(check_file));
      auto problems = rules.check_samples();
      if (problems.empty()) {
        emit(check_file + ": " + std::to_string(rules.rules().size()) +
             " rules, all samples pass\n");
        return kExitClean;
      }
      std::string out;
      for (const auto& p : problems) out += check_file + ": " + p + "\n";
      std::cerr << out;
      return kExitFaults;
    }
    RuleSet rules = build_rules(rule_options);
    std::string out;
    for (const Rule& r : rules.rules()) {
      out += r.name + "\t" + std::string(event_name(r.yields));
      out += "\t" + (r.kind.empty() ? std::string("-") : r.kind);
      out +=
          "\t" + (r.program.empty() ? std::string("kernel") : r.program) + "\t" + r.pattern + "\n";
    }
    emit(out);
    return kExitClean;
  }

  if (check_cmd->parsed()) {
    check.output = check_json                     ? CheckCommand::Output::kJson
                   : check_format == "prometheus" ? CheckCommand::Output::kPrometheus
                                                  : CheckCommand::Output::kNagios;
    check.exit_style = exit_style == "npd" ? ExitStyle::kNpd : ExitStyle::kNagios;
    check.input_format = input_format;
    check.host = host_options;
    check.map_from = map_from;
    // run_check reports its own failures as UNKNOWN (exit 3), so rules are built inside it.
    return run_check(check, [&] { return build_rules(rule_options); });
  }

  if (follow_cmd->parsed()) {
    if (follow_options.log == "-") {
      throw std::runtime_error(
          "follow: standard input cannot be followed; give a file, or no LOG "
          "for the running kernel's log");
    }
    follow_options.quiet_period = duration_option("--quiet-period", quiet_period);
    follow_options.exec_timeout = duration_option("--exec-timeout", exec_timeout);
    if (input_format != "auto") {
      follow_options.format = parse_format_name(input_format);
      if (!follow_options.format) {
        std::cerr << "diskfault: unknown --input-format '" << input_format << "'\n";
        return kExitError;
      }
    }
    if (output_format != "json") {
      throw std::runtime_error("follow: --format " + output_format +
                               " does not apply; follow prints one JSON object per event");
    }
    follow_options.host = host_options;
    follow_options.load_rules = [&] { return build_rules(rule_options); };
    return follow(follow_options);
  }

  DiagnoseOptions options;
  if (input_format != "auto") {
    options.format = parse_format_name(input_format);
    if (!options.format) {
      std::cerr << "diskfault: unknown --input-format '" << input_format << "'\n";
      return kExitError;
    }
  }
  options.warn = warn_on_stderr;
  options.map_from = map_from;
  if (logs.empty()) logs.push_back(kKernelLogPath);
  RuleSet rules = build_rules(rule_options);
  Report report = diagnose(logs, rules, options);
  // Not an error: the report stands, with fewer host facts (vpd_pg80 is root-only, for one).
  if (auto unreadable = apply_host_facts(report, host_options); !unreadable.empty()) {
    std::string line = "diskfault: note: could not read " + std::to_string(unreadable.size()) +
                       " host file(s), some serials may be missing: " + unreadable.front();
    if (unreadable.size() > 1) line += " (and " + std::to_string(unreadable.size() - 1) + " more)";
    std::cerr << line << "\n";
  }
  // Read only for the metrics, once for both of their outputs: a process's first reading of the
  // clock took about 20 µs on the machine of BENCHMARKS.md.
  const bool metrics = !textfile_dir.empty() || output_format == "prometheus";
  const double now =
      metrics ? std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                    .count()
              : 0.0;
  if (!textfile_dir.empty()) {
    write_file_atomically(textfile_dir + "/" + kPrometheusTextfileName,
                          format_prometheus(report, now), 0644);
  }
  emit(output_format == "table"        ? format_table(report)
       : output_format == "prometheus" ? format_prometheus(report, now)
                                       : format_json(report, DISKFAULT_VERSION));
  return report.drives.empty() && report.unresolved.empty() ? kExitClean : kExitFaults;
}

}  // namespace

int main(int argc, char** argv) {
  // About what a run on a 200 KB log allocates (BENCHMARKS.md, item 29), in a huge page where the
  // kernel has one free (item 37).
  const PrefaultedHeap heap = prefault_heap(std::size_t{512} << 10);
  // The one place errors end: every failure becomes one line on stderr and exit status 2.
  try {
    return run(argc, argv, heap);
  } catch (const std::exception& e) {
    std::cerr << "diskfault: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "diskfault: unexpected error\n";
  }
  return kExitError;
}
