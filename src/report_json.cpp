// The JSON printer: the report as schema version 1.
#include "report_json.hpp"

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

ordered_json position(const Position& at) {
  ordered_json j;
  j["source"] = at.source;
  j["line"] = at.line;
  j["boot"] = at.boot;
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
    list.push_back(
        {{"source", e.at.source}, {"line", e.at.line}, {"kind", e.kind}, {"text", e.text}});
  }
  return list;
}

// Where each identity value was stated, so a technician can check it in the log.
ordered_json stated_at(const Finding& f) {
  ordered_json j = ordered_json::object();
  auto put = [&](const char* name, const std::optional<Stated>& s) {
    // A value the host supplied is not in the log; its origin says where it is.
    if (s && !f.origin.count(name)) j[name] = {{"source", s->at.source}, {"line", s->at.line}};
  };
  put("serial", f.serial);
  put("model", f.model);
  put("vendor", f.vendor);
  put("wwn", f.wwn);
  put("slot", f.slot);
  return j;
}

// What the host says about a drive beneath a stacked device.
ordered_json suspect(const Suspect& s) {
  ordered_json j;
  j["device"] = s.device;
  j["disk"] = s.disk;
  j["hctl"] = or_null(s.hctl);
  j["serial"] = or_null(s.serial);
  j["vendor"] = or_null(s.vendor);
  j["model"] = or_null(s.model);
  j["wwn"] = or_null(s.wwn);
  j["slot"] = or_null(s.slot);
  j["origin"] = s.origin;
  return j;
}

}  // namespace

ordered_json drive_json(const Finding& f) {
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
  d["first_seen"] = position(f.errors.first());
  d["last_seen"] = position(f.errors.last());
  d["stated_at"] = stated_at(f);
  d["evidence"] = evidence(f.errors);
  if (!f.notes.empty()) d["notes"] = f.notes;
  // Only where the host was asked (an error in its current boot), so logs alone print as before.
  if (!f.origin.empty()) d["origin"] = f.origin;
  if (f.host_mismatch) d["host_mismatch"] = *f.host_mismatch;
  return d;
}

ordered_json unresolved_json(const Unresolved& u) {
  ordered_json d;
  d["device"] = u.device;
  d["errors"] = errors(u.errors);
  d["reason"] = u.reason;
  d["first_seen"] = position(u.errors.first());
  d["last_seen"] = position(u.errors.last());
  d["evidence"] = evidence(u.errors);
  if (u.mapper_name) d["mapper_name"] = *u.mapper_name;
  if (!u.suspects.empty()) {
    d["suspects"] = ordered_json::array();
    for (const Suspect& s : u.suspects) d["suspects"].push_back(suspect(s));
  }
  if (!u.origin.empty()) d["origin"] = u.origin;
  return d;
}

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
  for (const Finding& f : report.drives) doc["drives"].push_back(drive_json(f));
  doc["unresolved"] = ordered_json::array();
  for (const Unresolved& u : report.unresolved) doc["unresolved"].push_back(unresolved_json(u));
  return doc.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace diskfault
