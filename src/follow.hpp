// Follow mode: watch a live kernel log and report each disk fault the moment it is logged.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host_enrich.hpp"
#include "line_format.hpp"
#include "rules.hpp"

namespace diskfault {

struct FollowOptions {
  std::string log;                  // the file to follow; "" follows /dev/kmsg
  std::optional<LogFormat> format;  // nullopt: detect from the file's content
  bool from_start = false;          // also report the faults of the current boot already logged
  std::vector<std::string> exec_commands;  // run per event (/bin/sh -c)
  std::chrono::seconds exec_timeout{300};  // an --exec command running longer is killed; 0: never
  std::string textfile_dir;                // keep DIR/diskfault.prom current; "" for none
  std::chrono::seconds quiet_period{600};  // one event per drive and kind per period; 0: no folding
  // Builds the rules; called at start-up and again on SIGHUP (a failure then keeps the old ones).
  std::function<RuleSet()> load_rules;
  std::size_t queue_capacity = 256;  // events a sink may fall behind by before dropping
  // How long the sinks get at exit to deliver what is queued before they are cut short.
  std::chrono::milliseconds drain_limit{5000};
  // Where the host's facts come from, and whether a followed file is this host's log: events of
  // its current boot get the host's serials and slots, as in the report.
  HostOptions host;
};

// Parses a --quiet-period: a whole number with an optional unit s, m, h or d ("30s", "10m",
// "1h"; a bare number is seconds). nullopt when malformed or negative.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

// Follows the log until SIGINT or SIGTERM, then delivers what is queued and returns 0 (also 0
// when standard output is the only sink and its reader has gone). Stages, each a push coroutine
// with one job: source -> format -> rules -> correlate -> fold -> broadcast -> sinks. Start-up
// first learns the current boot's identity lines from the log's existing content, so that the
// first new error is mapped at once. SIGHUP reloads the rules and reopens the log. Says what it
// does on stderr ("diskfault: follow: ..."). Throws std::system_error when the log cannot be
// followed and RulesError when the rules cannot be built at start-up.
int follow(const FollowOptions& options);

}  // namespace diskfault
