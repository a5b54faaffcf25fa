// The report: every source's findings merged into one list of drives, ready for any printer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "finding.hpp"

namespace diskfault {

struct SourceSummary {
  std::string path;
  std::string format;
  std::uint64_t lines = 0;
  std::uint32_t boots = 0;
};

struct Report {
  std::vector<SourceSummary> sources;
  std::vector<Finding> drives;         // most recently seen first
  std::vector<Unresolved> unresolved;  // most recently seen first

  std::uint64_t error_count() const;  // all errors, drives and unresolved
  std::uint64_t unresolved_errors() const;
};

// Collects findings source by source and merges them into a Report.
class ReportBuilder {
 public:
  // Registers a source; returns its index for the findings traced from it.
  std::size_t add_source(std::string path, std::string format);
  // Records what the scan of source `index` found out about its shape.
  void finish_source(std::size_t index, std::uint64_t lines, std::uint32_t boots);
  void add(Finding finding);
  void add(Unresolved unresolved);

  // Turns positions counted from the end into line numbers and boots into 1-based indices,
  // merges the findings that share a serial (one drive, seen in several presences, boots or
  // files) and orders drives by when they were last seen, newest first.
  Report build() &&;

 private:
  Report report_;
  // Drives with a serial are merged as they arrive, so a log of many boots keeps one entry per
  // drive in memory rather than one per presence.
  std::map<std::string, std::size_t> by_serial_;
};

}  // namespace diskfault
