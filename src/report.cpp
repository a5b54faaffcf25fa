// Building the report: line numbers, merging by serial, ordering.
#include "report.hpp"

#include <algorithm>
#include <set>

namespace diskfault {
namespace {

template <typename T>
void keep_newest(std::optional<T>& mine, const std::optional<T>& theirs) {
  if (theirs && (!mine || mine->at.older_than(theirs->at))) mine = theirs;
}

void merge_sorted(std::vector<std::string>& into, const std::vector<std::string>& from) {
  std::set<std::string> all(into.begin(), into.end());
  all.insert(from.begin(), from.end());
  into.assign(all.begin(), all.end());
}

// `older` and `newer` are one drive (same serial); the newer presence's address and names win.
void merge_into(Finding& newer, Finding&& older) {
  keep_newest(newer.vendor, older.vendor);
  keep_newest(newer.model, older.model);
  keep_newest(newer.wwn, older.wwn);
  keep_newest(newer.pci, older.pci);
  keep_newest(newer.slot, older.slot);
  if (!newer.hctl) newer.hctl = older.hctl;
  if (!newer.controller) newer.controller = older.controller;
  if (!newer.port) newer.port = older.port;
  merge_sorted(newer.devices, older.devices);
  merge_sorted(newer.partitions, older.partitions);
  newer.errors.merge(older.errors);
  for (auto& note : older.notes) {
    if (std::find(newer.notes.begin(), newer.notes.end(), note) == newer.notes.end()) {
      newer.notes.push_back(std::move(note));
    }
  }
}

}  // namespace

std::uint64_t Report::error_count() const {
  std::uint64_t n = unresolved_errors();
  for (const Finding& f : drives) n += f.errors.total();
  return n;
}

std::uint64_t Report::unresolved_errors() const {
  std::uint64_t n = 0;
  for (const Unresolved& u : unresolved) n += u.errors.total();
  return n;
}

std::size_t ReportBuilder::add_source(std::string path, std::string format) {
  report_.sources.push_back({std::move(path), std::move(format), 0, 0});
  return report_.sources.size() - 1;
}

void ReportBuilder::finish_source(std::size_t index, std::uint64_t lines, std::uint32_t boots) {
  report_.sources[index].lines = lines;
  report_.sources[index].boots = boots;
}

void ReportBuilder::add(Finding finding) {
  if (finding.serial) {
    auto [it, fresh] = by_serial_.emplace(finding.serial->value, report_.drives.size());
    if (!fresh) {
      Finding& known = report_.drives[it->second];
      if (known.errors.last().older_than(finding.errors.last())) std::swap(known, finding);
      merge_into(known, std::move(finding));
      return;
    }
  }
  report_.drives.push_back(std::move(finding));
}
void ReportBuilder::add(Unresolved unresolved) {
  report_.unresolved.push_back(std::move(unresolved));
}

Report ReportBuilder::build() && {
  const auto& sources = report_.sources;
  auto fix = [&](Position& at) {
    at.line = sources[at.source].lines - at.from_end + 1;
    at.boot = sources[at.source].boots - at.boot_from_end;
  };
  auto fix_stated = [&](std::optional<Stated>& s) {
    if (s) fix(s->at);
  };
  auto boot_of = [&](std::size_t source, std::uint32_t from_end) {
    return sources[source].boots - from_end;
  };
  for (Finding& f : report_.drives) {
    f.errors.fix_positions(fix);
    for (auto* s : {&f.serial, &f.vendor, &f.model, &f.wwn, &f.pci, &f.slot}) fix_stated(*s);
    f.boot = boot_of(f.source, f.boot_from_end);
  }
  for (Unresolved& u : report_.unresolved) {
    u.errors.fix_positions(fix);
    u.boot = boot_of(u.source, u.boot_from_end);
  }

  auto newest_first = [](const auto& a, const auto& b) {
    return b.errors.last().older_than(a.errors.last());
  };
  std::sort(report_.drives.begin(), report_.drives.end(), newest_first);
  std::sort(report_.unresolved.begin(), report_.unresolved.end(), newest_first);
  return std::move(report_);
}

}  // namespace diskfault
