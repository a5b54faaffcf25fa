// Helpers shared by the tests: temporary files, running the built binary, diagnosing a text.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "diagnose.hpp"
#include "report.hpp"
#include "rules.hpp"

namespace diskfault::test {

// A directory that is removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "diskfault-test.XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to a file called `name` in the directory and returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    auto file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out << content;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

// The built-in rules, compiled once for all tests.
inline const RuleSet& default_rule_set() {
  static const RuleSet rules(default_rules());
  return rules;
}

// Diagnoses `log` (written to a temporary file) with the built-in rules.
inline Report diagnose_text(const std::string& log) {
  TempDir dir;
  std::string path = dir.write("kern.log", log);
  return diagnose({path}, default_rule_set(), {});
}

struct RunResult {
  int status = -1;
  std::string out, err;
};

// Runs the built diskfault binary with `args`, feeding `input` on stdin.
inline RunResult run_diskfault(const std::vector<std::string>& args,
                               const std::string& input = "") {
  TempDir dir;
  std::string in_path = dir.write("stdin", input);
  std::string out_path = (dir.path() / "stdout").string();
  std::string err_path = (dir.path() / "stderr").string();
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open(in_path.c_str(), O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    std::string binary = DISKFAULT_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  RunResult result;
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

inline std::string source_root() { return DISKFAULT_SOURCE_ROOT; }

// The shipped rules file, loaded as a user's rules file is: with its samples and near misses,
// which the built-in copy leaves out.
inline std::vector<Rule> shipped_rules() {
  return load_rules_file(source_root() + "/rules/default.json");
}

// How many of the pages of `fd` in [offset, offset + length) the page cache holds. Throws
// std::runtime_error where the file cannot be mapped or the kernel does not say.
inline std::size_t resident_pages(int fd, off_t offset, std::size_t length) {
  const off_t page_start = offset / 4096 * 4096;  // where mmap() can start
  length += static_cast<std::size_t>(offset - page_start);
  offset = page_start;
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, offset);
  if (map == MAP_FAILED) throw std::runtime_error("resident_pages: mmap failed");
  std::vector<unsigned char> pages((length + 4095) / 4096);
  const bool told = ::mincore(map, length, pages.data()) == 0;
  ::munmap(map, length);
  if (!told) throw std::runtime_error("resident_pages: mincore failed");
  return static_cast<std::size_t>(
      std::count_if(pages.begin(), pages.end(), [](unsigned char p) { return p & 1; }));
}

// The sum of the fields `keys` (each "Name:", its number after it: KiB in /proc/self/status, a
// count in /proc/self/io) of a /proc file; -1 where one of them is missing.
inline long long proc_sum(const std::string& path, std::initializer_list<std::string_view> keys) {
  std::ifstream in(path);
  std::string key;
  long long total = 0, value = 0;
  std::size_t found = 0;
  while (in >> key) {
    if (std::find(keys.begin(), keys.end(), key) != keys.end() && in >> value) {
      total += value;
      ++found;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return found == keys.size() ? total : -1;
}

// The binary's functions and their addresses, as nm lists them.
inline std::map<std::string, unsigned long long> function_addresses(const std::string& binary) {
  std::map<std::string, unsigned long long> addresses;
  FILE* nm = ::popen(("nm --defined-only '" + binary + "'").c_str(), "r");
  REQUIRE(nm != nullptr);
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, nm) != nullptr) {
    std::istringstream line(buffer);
    std::string address, type, name;
    if (line >> address >> type >> name && type.size() == 1 &&
        std::string("tTwW").find(type[0]) != std::string::npos) {
      addresses.emplace(name, std::stoull(address, nullptr, 16));
    }
  }
  REQUIRE(::pclose(nm) == 0);
  return addresses;
}

}  // namespace diskfault::test
