// Helpers shared by the tests: temporary files, running the built binary, diagnosing a text.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
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

}  // namespace diskfault::test
