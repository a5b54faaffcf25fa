// Runs the pipeline over each source and builds the report.
#include "diagnose.hpp"

#include <iostream>

#include "driver.hpp"
#include "matcher.hpp"
#include "source.hpp"

namespace diskfault {

namespace {

constexpr std::size_t kSampleLines = 200;
constexpr std::size_t kSampleBytes = 64 * 1024;
// Blocks too small to be read ahead: a thread would cost more than the sample, and once started,
// glibc's malloc locks for the rest of the run.
constexpr std::size_t kSampleBlock = 16 * 1024;
static_assert(kSampleBlock < ReverseLineReader::kReadAheadMinBlock);

// Each line is weighed as it is read, not copied into a sample first: the copies were 200
// allocations of every run (BENCHMARKS.md, item 36).
std::optional<LogFormat> recognise_tail(ReverseLineReader& tail) {
  FormatVote vote;
  std::size_t lines = 0;
  while (lines < kSampleLines && tail.bytes_read() <= kSampleBytes) {
    auto line = tail.next();
    if (!line) break;
    if (line->text.empty()) continue;
    vote.add(line->text);
    ++lines;
  }
  return vote.winner();
}

// The format of the source `reader` is about to read. A mapped log is looked at through the
// reader's own mapping: a copy of its tail cost a fresh buffer's page faults and the read itself.
// The sample is the same lines, but where a line near the end is longer than a block: the copy
// reads it whole into a grown block and counts those bytes, so it may stop sooner.
std::optional<LogFormat> recognise_format_of(const ReverseLineReader& reader,
                                             const Source& source) {
  if (auto tail = reader.rewound(kSampleBlock)) return recognise_tail(*tail);
  return recognise_source_format(source.fd.get(), source.size, source.name);
}

}  // namespace

LogFormat detect_source_format(int fd, off_t size, const std::string& name) {
  return recognise_source_format(fd, size, name).value_or(LogFormat::kDmesg);
}

std::optional<LogFormat> recognise_source_format(int fd, off_t size, const std::string& name) {
  ReverseLineReader tail(fd, size, name, kSampleBlock);
  return recognise_tail(tail);
}

void warn_on_stderr(const std::string& text) {
  std::cerr << "diskfault: warning: " << text << "\n";
}

Report diagnose(const std::vector<std::string>& paths, const RuleSet& rules,
                const DiagnoseOptions& options) {
  ReportBuilder builder;
  for (const std::string& path : paths) {
    Source source = open_source(path);
    ReverseLineReader reader(source.fd.get(), source.size, source.name, options.block_size,
                             ReadMode::kAuto, options.map_from);
    LogFormat format = source.live_kernel_log ? LogFormat::kKmsg
                       : options.format
                           ? *options.format
                           : recognise_format_of(reader, source).value_or(LogFormat::kDmesg);
    if (options.format && !source.live_kernel_log && options.warn) {
      auto seen = recognise_format_of(reader, source);
      if (seen && *seen != format) {
        options.warn(source.name + ": its lines look like " + std::string(format_name(*seen)) +
                     ", not " + std::string(format_name(format)) +
                     " as --input-format says: errors in it may be missed");
      }
    }
    std::size_t index = builder.add_source(source.name, std::string(format_name(format)));
    TraceStats stats;
    auto traced = trace_drives(match_lines(reader, format, rules), index, &stats);
    while (Traced* item = traced.next()) {
      std::visit([&](auto& value) { builder.add(std::move(value)); }, *item);
    }
    builder.finish_source(index, reader.line_count(), stats.boots);
  }
  return std::move(builder).build();
}

}  // namespace diskfault
