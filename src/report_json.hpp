// The JSON shape of one drive and of one unresolved device, shared by the report and follow's
// events.
#pragma once

#include <nlohmann/json.hpp>

#include "finding.hpp"

namespace diskfault {

// One entry of the report's "drives" list (schema version 1, see README.md). Positions must
// carry their line numbers and boot (ReportBuilder::build fills them in). Text from the log is
// kept as bytes: dump with error_handler_t::replace.
nlohmann::ordered_json drive_json(const Finding& finding);

// One entry of the report's "unresolved" list, under the same conditions.
nlohmann::ordered_json unresolved_json(const Unresolved& unresolved);

}  // namespace diskfault
