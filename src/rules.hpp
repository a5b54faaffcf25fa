// Rules: RE2 patterns from a JSON rules file that turn a kernel message into an identity or error
// event.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rule_prefilter.hpp"

namespace re2 {
class RE2;
}

namespace diskfault {

struct Record;

// What a matching line tells.
enum class EventType {
  kError,         // an error of `kind` on a device, port or controller
  kBoot,          // a boot starts at this line ("Linux version ...")
  kAppear,        // a device appeared at an address: the presence of a new drive starts here
  kAttach,        // the disk at an address was (re)attached: starts a new presence after a detach
  kDetach,        // the drive at an address went away
  kFact,          // identity: binds names to addresses, states a model, vendor or serial
  kEpisodeStart,  // libata starts handling an error on a port ("ata1.00: exception ...")
  kEpisodeEnd,    // libata is done with it ("ata1: EH complete")
};
inline constexpr std::size_t kEventTypeCount = 8;

// The named captures a pattern may use; anything else is rejected when the rules load.
enum class Field {
  kDevice,
  kHctl,
  kPort,
  kController,
  kVendor,
  kModel,
  kSerial,
  kWwn,
  kPci,
  kSlot
};
inline constexpr std::size_t kFieldCount = 10;
std::string_view field_name(Field field);

using Captures = std::array<std::string_view, kFieldCount>;

struct RuleSample {
  std::string line;
  std::string program;                                        // "" for a kernel line
  std::vector<std::pair<std::string, std::string>> captures;  // expected, by field name
};

struct Rule {
  std::string name;
  EventType yields = EventType::kFact;
  std::string kind;     // error kind ("xfs", "io", "medium", ...), for kError only
  std::string pattern;  // RE2 syntax, matched from the start of the message
  std::string program;  // "" means kernel lines; otherwise the syslog program (e.g. "smartd")
  // For an error that names only its adapter ("mpt3sas_cm0: [sense_key,asc,ascq]: ..."): the
  // rule whose line, printed just before it, names the drive (the SCSI command it failed). ""
  // for an error that names its drive itself.
  std::string device_from;
  std::vector<RuleSample> samples;
  std::vector<std::string> near_misses;
  std::string origin;  // the file it came from ("built-in rules" for the shipped ones)
  // Checked in full by the test suite (the built-in rules): its own RE2 is compiled when a line
  // first reaches it, not at every start-up. A rules file's rules are checked when loaded.
  bool proven = false;
};

// A rules file that cannot be used: the message names the file and the rule.
class RulesError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses a rules file's text. `origin` names it in errors. Throws RulesError for invalid JSON,
// missing or unknown fields, or an unknown `yields`.
std::vector<Rule> parse_rules(std::string_view json_text, const std::string& origin);
// Reads and parses a rules file; throws std::system_error if it cannot be read.
std::vector<Rule> load_rules_file(const std::string& path);
// The rules built into the binary (rules/default.json at build time), without their samples and
// near misses: those are read from the file by the test suite.
std::vector<Rule> default_rules();

struct RuleMatch {
  std::size_t rule = 0;  // index into RuleSet::rules()
  Captures captures;     // views into the matched message
};

// A pattern's RE2 and the numbers of its named groups.
using CapturedNames = std::vector<std::pair<std::string, int>>;
struct CompiledPattern {
  std::unique_ptr<re2::RE2> regex;  // check ok()
  CapturedNames names;
  // RE2 was given plain groups and the names were read here, which spares RE2's costly check of
  // each name; false where RE2 read them (syntax the reading here does not follow).
  bool names_read_here = false;
};
// How every rule pattern is compiled: RE2 (linear time, no backtracking), byte-wise (Latin-1:
// `.` is one byte), case-sensitive, errors not logged.
CompiledPattern compile_pattern(const std::string& pattern);

// Compiled rules. A message is tried against the rules the prefilter leaves, in file order; the
// first rule that matches wins, so specific rules go before general ones.
class RuleSet {
 public:
  // Compiles `rules`. Throws RulesError naming the rule whose pattern does not compile or uses
  // an unknown capture name, or that lacks what its event needs. A proven rule's own RE2 is
  // compiled by the first match() that needs it; a fault found then is thrown from there.
  explicit RuleSet(std::vector<Rule> rules);
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  // The rule that `record`'s message triggers, if any. Kernel records are tried against kernel
  // rules, other programs' lines only against rules for that program.
  std::optional<RuleMatch> match(const Record& record) const;
  // The same for a bare message.
  std::optional<RuleMatch> match(std::string_view message, std::string_view program,
                                 bool kernel) const;

  // False when no kernel rule can match `message` (the prefilter's answer, without RE2).
  bool kernel_may_match(std::string_view message) const {
    return kernel_may_start(message) && kernel_may_match_started(message);
  }
  // kernel_may_match() in two steps, for the matcher's fast lane, which asks them before it takes
  // a line apart and looks up the messages it knows between them (QuietMessages): the
  // prefilter's first look, by two bytes, inline; then its walk, for a message that passed it.
  [[gnu::always_inline]] bool kernel_may_start(std::string_view message) const {
    return kernel_prefilter_ != nullptr && kernel_prefilter_->may_start(message);
  }
  bool kernel_may_match_started(std::string_view message) const {
    return kernel_prefilter_ != nullptr && kernel_prefilter_->any_candidate(message);
  }

  // False when no rule for `program`'s lines (a program other than the kernel) can match
  // `message`: the fast lane asks this of a syslog line from another program.
  bool program_may_match(std::string_view program, std::string_view message) const;
  const std::vector<Rule>& rules() const noexcept;

  // Every way the rules break their own samples: a sample that no rule matches, that another
  // rule matches first, or whose captures differ; a near miss that its rule (or any error rule)
  // matches. Empty when all is well. Each entry names the rule.
  std::vector<std::string> check_samples() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  // The kernel audience's prefilter, owned by impl_ (a move keeps it where it is); read inline
  // on the fast lane's every line.
  const RulePrefilter* kernel_prefilter_ = nullptr;
};

}  // namespace diskfault
