// Printers: each turns a Report into one output format; none of them decides anything.
#pragma once

#include <string>

#include "report.hpp"

namespace diskfault {

inline constexpr int kReportSchemaVersion = 1;

// The JSON report (schema version 1, see README.md), pretty-printed, ending in a newline. Log
// text that is not valid UTF-8 is written with U+FFFD in place of the bad bytes.
std::string format_json(const Report& report, const std::string& tool_version);

// Aligned columns for a person at a terminal: serial, bus, device, model, errors, last seen.
std::string format_table(const Report& report);

}  // namespace diskfault
