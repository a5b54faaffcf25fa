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

// The file name node_exporter's textfile collector reads diskfault's metrics from.
inline constexpr const char* kPrometheusTextfileName = "diskfault.prom";

// The Prometheus text exposition format (version 0.0.4) with HELP and TYPE lines:
// diskfault_drive_errors{serial,hctl,device,model,kind}, diskfault_drive_info{...} 1,
// diskfault_faulty_drives, diskfault_unresolved_errors, diskfault_last_run_timestamp_seconds
// (`now_seconds`, seconds since the epoch) and diskfault_log_lines_scanned. Unknown fields are
// empty labels; label values are valid UTF-8 and escaped. Series come in a fixed order.
std::string format_prometheus(const Report& report, double now_seconds);

}  // namespace diskfault
