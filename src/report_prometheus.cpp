// The Prometheus printer: the report in the text exposition format, for node_exporter's textfile
// collector.
#include <charconv>
#include <map>
#include <string>
#include <vector>

#include "report_printers.hpp"
#include "utf8.hpp"

namespace diskfault {
namespace {

// Label values: valid UTF-8, with the three escapes the format defines. Other control bytes would
// be legal but only ever come from a hostile or broken log line; they become '?' as in the table.
std::string label_value(std::string_view raw) {
  std::string out;
  for (char c : valid_utf8(raw)) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    }
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string render(const Labels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    out += (out.empty() ? "{" : ",") + name + "=\"" + label_value(value) + "\"";
  }
  return out.empty() ? out : out + "}";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string number(double value) {
  char buffer[64];
  auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, 3);
  return ec == std::errc() ? std::string(buffer, end) : "NaN";
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n";
  out += std::string("# TYPE ") + name + " " + type + "\n";
}

}  // namespace

std::string format_prometheus(const Report& report, double now_seconds) {
  // Two findings can carry the same labels (a drive without a serial, at the same address in two
  // boots). A series may appear only once in an exposition: node_exporter keeps one of the
  // duplicates and drops the rest (errors silently lost), so samples with equal labels are
  // summed. The maps also give a fixed order whatever the report's.
  std::map<Labels, std::uint64_t> errors;
  std::map<Labels, int> info;
  for (const Finding& f : report.drives) {
    std::string serial = f.serial ? f.serial->value : "";
    std::string hctl = f.hctl.value_or("");
    std::string device = join(f.devices);
    std::string model = f.model ? f.model->value : "";
    for (const auto& [kind, n] : f.errors.by_kind()) {
      errors[{{"serial", serial},
              {"hctl", hctl},
              {"device", device},
              {"model", model},
              {"kind", kind}}] += n;
    }
    // The four labels of the error series always; the rest only where the log states them.
    Labels identity{{"serial", serial}, {"hctl", hctl}, {"device", device}, {"model", model}};
    auto extra = [&](const char* name, const std::string& value) {
      if (!value.empty()) identity.emplace_back(name, value);
    };
    extra("vendor", f.vendor ? f.vendor->value : "");
    extra("wwn", f.wwn ? f.wwn->value : "");
    extra("port", f.port.value_or(""));
    extra("controller", f.controller.value_or(""));
    extra("pci", f.pci ? f.pci->value : "");
    extra("slot", f.slot ? f.slot->value : "");
    info[identity] = 1;
  }
  std::uint64_t lines = 0;
  for (const SourceSummary& s : report.sources) lines += s.lines;

  std::string out;
  // Gauges, not counters: a count read from a log falls when the log rotates.
  family(out, "diskfault_drive_errors", "gauge",
         "Disk errors in the kernel log traced to one drive, by kind of error.");
  for (const auto& [labels, n] : errors)
    out += "diskfault_drive_errors" + render(labels) + " " + std::to_string(n) + "\n";
  family(out, "diskfault_drive_info", "gauge",
         "Identity of each drive with errors in the kernel log; the value is always 1.");
  for (const auto& [labels, one] : info) out += "diskfault_drive_info" + render(labels) + " 1\n";
  family(out, "diskfault_faulty_drives", "gauge",
         "Drives with at least one error in the kernel log.");
  out += "diskfault_faulty_drives " + std::to_string(report.drives.size()) + "\n";
  family(out, "diskfault_unresolved_errors", "gauge",
         "Disk errors in the kernel log that cannot be tied to a drive.");
  out += "diskfault_unresolved_errors " + std::to_string(report.unresolved_errors()) + "\n";
  family(out, "diskfault_last_run_timestamp_seconds", "gauge",
         "When diskfault last read the kernel log, in seconds since the Unix epoch.");
  out += "diskfault_last_run_timestamp_seconds " + number(now_seconds) + "\n";
  family(out, "diskfault_log_lines_scanned", "gauge", "Lines of kernel log read in the last run.");
  out += "diskfault_log_lines_scanned " + std::to_string(lines) + "\n";
  return out;
}

}  // namespace diskfault
