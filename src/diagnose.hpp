// The library's front door: logs in, report out (source -> reader -> format -> rules ->
// correlation).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "line_format.hpp"
#include "report.hpp"
#include "reverse_line_reader.hpp"
#include "rules.hpp"

namespace diskfault {

// DiagnoseOptions::map_from where the run's heap sits in a huge page (prefault_heap()): a log
// copied into that page costs no page faults, where a mapped one costs one for each of its pages
// the first time it is read, and unmapping it costs more. Under 2 MiB the copy fits in the room
// the heap has spare and was the faster way: a log just under 2 MiB took 3.32 ms copied against
// 4.19 mapped, 1 MiB 5.09 against 5.75, and 2.5 MiB 6.66 against 5.46 (BENCHMARKS.md, item 39).
// Without the huge page, mapping was faster at every size tried.
inline constexpr off_t kMapFromWithHugeHeap = off_t{2} << 20;

struct DiagnoseOptions {
  std::optional<LogFormat> format;  // nullopt: detect per source
  std::size_t block_size = ReverseLineReader::kDefaultBlockSize;
  // A log the page cache holds is read in place from this size on, and copied below it.
  off_t map_from = ReverseLineReader::kMapMin;
  // Told, in one line naming the source, when a forced format is not the one the source's lines
  // have: a wrong --input-format otherwise reads as a healthy log.
  std::function<void(const std::string&)> warn;
};

// How diskfault's commands warn: "diskfault: warning: TEXT", one line on standard error.
void warn_on_stderr(const std::string& text);

// Detects the format of an open source from its last lines (at most 64 KiB of them).
LogFormat detect_source_format(int fd, off_t size, const std::string& name);
// The same, or nullopt when none of those lines has a known prefix.
std::optional<LogFormat> recognise_source_format(int fd, off_t size, const std::string& name);

// Reads each of `paths` ("-" is stdin, kKernelLogPath the running kernel's log) backwards once
// and traces every disk error in it to a drive. Throws std::system_error naming the path when a
// source cannot be opened or read; nothing is returned half-done.
Report diagnose(const std::vector<std::string>& paths, const RuleSet& rules,
                const DiagnoseOptions& options);

}  // namespace diskfault
