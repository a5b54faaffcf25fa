// The JSON printer: the report as schema version 1.
#include <nlohmann/json.hpp>

#include "report_printers.hpp"

namespace diskfault {
namespace {

using nlohmann::ordered_json;

ordered_json or_null(const std::optional<Stated>& s) {
  return s ? ordered_json(s->value) : ordered_json(nullptr);
}
ordered_json or_null(const std::optional<std::string>& s) {
  return s ? ordered_json(*s) : ordered_json(nullptr);
}

ordered_json position(const Position& at, std::uint32_t boot) {
  ordered_json j;
  j["source"] = at.source;
  j["line"] = at.line;
  j["boot"] = boot;
  j["time"] = at.time.empty() ? ordered_json(nullptr) : ordered_json(at.time);
  return j;
}

ordered_json errors(const ErrorTally& tally) {
  ordered_json j;
  j["total"] = tally.total();
  j["by_kind"] = ordered_json::object();
  for (auto& [kind, n] : tally.by_kind()) j["by_kind"][kind] = n;
  return j;
}

ordered_json evidence(const ErrorTally& tally) {
  ordered_json list = ordered_json::array();
  for (const Evidence& e : tally.evidence()) {
    list.push_back({{"source", e.at.source}, {"line", e.at.line}, {"kind", e.kind}, {"text", e.text}});
  }
  return list;
}

// Where each identity value was stated, so a technician can check it in the log.
ordered_json stated_at(const Finding& f) {
  ordered_json j = ordered_json::object();
  auto put = [&](const char* name, const std::optional<Stated>& s) {
    if (s) j[name] = {{"source", s->at.source}, {"line", s->at.line}};
  };
  put("serial", f.serial);
  put("model", f.model);
  put("vendor", f.vendor);
  put("wwn", f.wwn);
  put("slot", f.slot);
  return j;
}

}  // namespace

std::string format_json(const Report& report, const std::string& tool_version) {
  ordered_json doc;
  doc["schema_version"] = kReportSchemaVersion;
  doc["tool"] = {{"name", "diskfault"}, {"version", tool_version}};
  doc["sources"] = ordered_json::array();
  for (const SourceSummary& s : report.sources) {
    doc["sources"].push_back(
        {{"path", s.path}, {"format", s.format}, {"lines", s.lines}, {"boots", s.boots}});
  }
  doc["summary"] = {{"faulty_drives", report.drives.size()},
                    {"errors", report.error_count()},
                    {"unresolved_errors", report.unresolved_errors()}};
  doc["drives"] = ordered_json::array();
  for (const Finding& f : report.drives) {
    ordered_json d;
    d["serial"] = or_null(f.serial);
    d["hctl"] = or_null(f.hctl);
    d["devices"] = f.devices;
    d["partitions"] = f.partitions;
    d["vendor"] = or_null(f.vendor);
    d["model"] = or_null(f.model);
    d["wwn"] = or_null(f.wwn);
    d["port"] = or_null(f.port);
    d["controller"] = or_null(f.controller);
    d["pci"] = or_null(f.pci);
    d["slot"] = or_null(f.slot);
    d["errors"] = errors(f.errors);
    d["first_seen"] = position(f.errors.first(), f.boot);
    d["last_seen"] = position(f.errors.last(), f.boot);
    d["stated_at"] = stated_at(f);
    d["evidence"] = evidence(f.errors);
    if (!f.notes.empty()) d["notes"] = f.notes;
    doc["drives"].push_back(std::move(d));
  }
  doc["unresolved"] = ordered_json::array();
  for (const Unresolved& u : report.unresolved) {
    ordered_json d;
    d["device"] = u.device;
    d["errors"] = errors(u.errors);
    d["reason"] = u.reason;
    d["first_seen"] = position(u.errors.first(), u.boot);
    d["last_seen"] = position(u.errors.last(), u.boot);
    d["evidence"] = evidence(u.errors);
    doc["unresolved"].push_back(std::move(d));
  }
  return doc.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace diskfault
