// Golden tests: every testdata/<case>/ with an expected.json is diagnosed and compared whole.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "report_printers.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The logs of a case (every *.log in it, in name order), relative to the source root, as
// scripts/update-golden passes them.
std::vector<std::string> case_logs(const fs::path& dir) {
  std::vector<std::string> logs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".log") {
      logs.push_back(fs::relative(entry.path(), diskfault::test::source_root()).string());
    }
  }
  std::sort(logs.begin(), logs.end());
  return logs;
}

json without_version(json doc) {
  doc["tool"]["version"] = "";
  return doc;
}

}  // namespace

TEST_CASE("every golden case under testdata/ gives its expected report") {
  fs::path root = fs::path(diskfault::test::source_root()) / "testdata";
  // Relative paths in the report: run from the source root, as the update script does.
  fs::path previous = fs::current_path();
  fs::current_path(diskfault::test::source_root());
  int cases = 0;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && fs::exists(entry.path() / "expected.json"))
      dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    CAPTURE(dir.filename().string());
    std::ifstream in(dir / "expected.json");
    json expected = json::parse(in, nullptr, false);
    REQUIRE_FALSE(expected.is_discarded());
    auto logs = case_logs(dir);
    REQUIRE_FALSE(logs.empty());
    auto report = diskfault::diagnose(logs, diskfault::test::default_rule_set(), {});
    json actual = json::parse(diskfault::format_json(report, ""));
    CHECK(without_version(actual).dump(2) == without_version(expected).dump(2));
    ++cases;
  }
  fs::current_path(previous);
  CHECK(cases >= 10);
}
