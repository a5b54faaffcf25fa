// The table printer: one row per drive, columns sized to their content.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "report_printers.hpp"

namespace diskfault {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string kinds(const ErrorTally& t) {
  std::string out = std::to_string(t.total()) + " (";
  bool first = true;
  for (auto& [kind, n] : t.by_kind()) {
    out += (first ? "" : " ") + kind + ":" + std::to_string(n);
    first = false;
  }
  return out + ")";
}

std::string seen(const Position& at) {
  std::string out = "line " + std::to_string(at.line);
  if (!at.time.empty()) out += " [" + at.time + "]";
  return out;
}

// Control bytes from the log are shown as '?', so a hostile line cannot drive the terminal.
std::string printable(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s;
}

}  // namespace

std::string format_table(const Report& report) {
  using Row = std::array<std::string, 6>;
  std::vector<Row> rows;
  // What does not fit a column (the host's view of a stacked device, a swapped drive, why a
  // field is empty) follows the table, one line each, so the person at the rack sees it.
  std::vector<std::string> notes;
  rows.push_back({"SERIAL", "BUS", "DEVICE", "MODEL", "ERRORS", "LAST SEEN"});
  for (const Finding& f : report.drives) {
    std::string bus = f.hctl ? *f.hctl : f.controller ? *f.controller : f.port ? *f.port : "-";
    std::string model = f.model ? f.model->value : "-";
    if (f.vendor && f.model) model = f.vendor->value + " " + model;
    std::string devices = f.devices.empty() ? "-" : join(f.devices);
    rows.push_back({f.serial ? f.serial->value : "-", bus, devices, model, kinds(f.errors),
                    seen(f.errors.last())});
    const std::string who = devices + " at " + bus;
    for (const std::string& note : f.notes) notes.push_back(who + ": " + note);
    if (f.host_mismatch &&
        std::find(f.notes.begin(), f.notes.end(), *f.host_mismatch) == f.notes.end()) {
      notes.push_back(who + ": " + *f.host_mismatch);
    }
  }
  for (const Unresolved& u : report.unresolved) {
    std::string device = u.device;
    if (u.mapper_name) device += " (" + *u.mapper_name + ")";
    rows.push_back({"(unresolved)", "-", device, "-", kinds(u.errors), seen(u.errors.last())});
    if (!u.suspects.empty()) {
      std::string line = device + ": " + u.reason + "; suspects:";
      for (const Suspect& s : u.suspects) {
        line += " " + s.disk + " (" + (s.hctl ? *s.hctl : "-") +
                (s.serial ? ", serial " + *s.serial : "") + (s.slot ? ", slot " + *s.slot : "") +
                ")";
      }
      notes.push_back(line);
    }
  }
  std::array<std::size_t, 6> width{};
  for (auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      row[i] = printable(row[i]);
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  if (report.drives.empty() && report.unresolved.empty()) out += "no disk errors found\n";
  for (const std::string& note : notes) out += "note: " + printable(note) + "\n";
  return out;
}

}  // namespace diskfault
