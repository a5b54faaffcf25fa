// diskfault's command line: parse arguments, call the library, map the outcome to an exit status.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "diagnose.hpp"
#include "file_descriptor.hpp"
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
    rules.insert(rules.end(), more.begin(), more.end());
  }
  if (!options.no_defaults) {
    auto defaults = default_rules();
    rules.insert(rules.end(), defaults.begin(), defaults.end());
  }
  if (rules.empty()) throw RulesError("no rules: --no-default-rules needs at least one --rules FILE");
  return RuleSet(std::move(rules));
}

// Everything goes out in one write, so a failure leaves nothing half-printed on stdout.
void emit(const std::string& text) {
  write_all(STDOUT_FILENO, text.data(), text.size(), "standard output");
}

std::string_view event_name(EventType type) {
  switch (type) {
    case EventType::kError: return "error";
    case EventType::kBoot: return "boot";
    case EventType::kAppear: return "appear";
    case EventType::kAttach: return "attach";
    case EventType::kDetach: return "detach";
    case EventType::kFact: return "fact";
    case EventType::kEpisodeStart: return "episode-start";
    case EventType::kEpisodeEnd: return "episode-end";
  }
  return "?";
}

int run(int argc, char** argv) {
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
  app.add_option("--format", output_format, "Output: json (default) or table")
      ->check(CLI::IsMember({"json", "table"}));
  app.add_option("--input-format", input_format,
                 "Log format: auto (default, per file), dmesg, dmesg-T, syslog, "
                 "journal-monotonic, rfc5424, kmsg");
  app.add_option("--rules", rule_options.files,
                 "Extra rules file (JSON); its rules are tried before the built-in ones")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  app.add_flag("--no-default-rules", rule_options.no_defaults,
               "Use only the rules given with --rules");

  CLI::App* rules_cmd = app.add_subcommand("rules", "List the rules in force, or check a rules file");
  std::string check_file;
  bool list = false;
  rules_cmd->add_option("--check", check_file,
                        "Validate FILE: patterns compile, samples match, near misses do not");
  rules_cmd->add_flag("--list", list, "Print the rules in force (with --rules/--no-default-rules)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int status = app.exit(e);
    return status == 0 ? kExitClean : kExitError;
  }

  if (rules_cmd->parsed()) {
    if (!check_file.empty()) {
      RuleSet rules(load_rules_file(check_file));
      auto problems = rules.check_samples();
      if (problems.empty()) {
        emit(check_file + ": " + std::to_string(rules.rules().size()) + " rules, all samples pass\n");
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
      out += "\t" + (r.program.empty() ? std::string("kernel") : r.program) + "\t" + r.pattern + "\n";
    }
    emit(out);
    return kExitClean;
  }

  DiagnoseOptions options;
  if (input_format != "auto") {
    options.format = parse_format_name(input_format);
    if (!options.format) {
      std::cerr << "diskfault: unknown --input-format '" << input_format << "'\n";
      return kExitError;
    }
  }
  if (logs.empty()) logs.push_back(kKernelLogPath);
  RuleSet rules = build_rules(rule_options);
  Report report = diagnose(logs, rules, options);
  emit(output_format == "table" ? format_table(report) : format_json(report, DISKFAULT_VERSION));
  return report.drives.empty() && report.unresolved.empty() ? kExitClean : kExitFaults;
}

}  // namespace

int main(int argc, char** argv) {
  // The one place errors end: every failure becomes one line on stderr and exit status 2.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "diskfault: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "diskfault: unexpected error\n";
  }
  return kExitError;
}
