// libFuzzer target: any bytes as a log, in every format, through the whole pipeline to JSON;
// and the matcher's fast lane held to its full path on the formats that have one.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "../tests/match_rows.hpp"
#include "diagnose.hpp"
#include "report_printers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const diskfault::RuleSet rules(diskfault::default_rules());
  static const std::string path = [] {
    char name[] = "/tmp/diskfault-fuzz.XXXXXX";
    int fd = ::mkstemp(name);
    ::close(fd);
    return std::string(name);
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  for (int format = -1; format < 6; ++format) {
    diskfault::DiagnoseOptions options;
    if (format >= 0) options.format = static_cast<diskfault::LogFormat>(format);
    options.block_size = 7;  // many refills: the reader's seams get exercised too
    auto report = diskfault::diagnose({path}, rules, options);
    auto json = diskfault::format_json(report, "fuzz");
    auto table = diskfault::format_table(report);
    if (json.empty() || table.empty()) std::abort();
  }
  // The lane takes only lines that lie whole in a block: blocks of a few lines, and of the
  // whole input (at most 4096 bytes). Read in place, a dmesg log's older part is scanned on a
  // second thread.
  for (auto format : {diskfault::LogFormat::kDmesg, diskfault::LogFormat::kSyslog}) {
    for (std::size_t block : {61, 4096}) {
      auto rows = [&](bool fast_lane, diskfault::ReadMode mode) {
        return diskfault::test::match_rows(
            path, format, block, rules,
            diskfault::MatchOptions{.fast_lane = fast_lane, .second_core_min = 0},
            diskfault::Want::all(), mode);
      };
      const auto full = rows(false, diskfault::ReadMode::kCopy);
      if (rows(true, diskfault::ReadMode::kCopy) != full) std::abort();
      if (rows(true, diskfault::ReadMode::kMapped) != full) std::abort();
    }
  }
  return 0;
}
