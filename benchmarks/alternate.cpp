// alternate: times two or more commands run one at a time in turn, for comparisons of a few
// milliseconds on a noisy machine. hyperfine runs each command's batch apart, so a drift of the
// machine's speed between the batches (common on a shared VM) reads as a difference between the
// commands; taking turns spreads the drift over all of them.
//
// Usage: alternate RUNS COMMAND... -- COMMAND... [-- COMMAND...]
// Each command runs RUNS times after three warm-up rounds, with stdout sent to /dev/null; the
// order is reversed every other round. Prints each command's median, quartiles and fastest run
// in milliseconds of wall time. A command that cannot be started, or that a signal ends, stops
// it (exit status 2); exit statuses are not judged.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

constexpr int kWarmUpRounds = 3;

[[noreturn]] void fail(const char* what, const char* detail) {
  std::fprintf(stderr, "alternate: %s: %s\n", what, detail);
  std::exit(2);
}

// One run of `argv` (null-terminated), in milliseconds.
double time_run(char* const* argv, const posix_spawn_file_actions_t* actions) {
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  if (int error = posix_spawnp(&pid, argv[0], actions, nullptr, argv, environ); error != 0)
    fail(argv[0], std::strerror(error));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail(argv[0], std::strerror(errno));
  }
  if (WIFSIGNALED(status)) fail(argv[0], strsignal(WTERMSIG(status)));
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 0;
  std::vector<std::vector<char*>> commands(1);
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      commands.emplace_back();
    } else {
      commands.back().push_back(argv[i]);
    }
  }
  const bool empty = std::any_of(commands.begin(), commands.end(),
                                 [](const std::vector<char*>& c) { return c.empty(); });
  if (runs < 1 || commands.size() < 2 || empty) {
    std::fprintf(stderr, "usage: alternate RUNS COMMAND... -- COMMAND... [-- COMMAND...]\n");
    return 2;
  }
  for (auto& command : commands) command.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);

  std::vector<std::vector<double>> times(commands.size());
  for (int round = 0; round < kWarmUpRounds + runs; ++round) {
    for (std::size_t turn = 0; turn < commands.size(); ++turn) {
      const std::size_t c = round % 2 == 0 ? turn : commands.size() - 1 - turn;
      const double ms = time_run(commands[c].data(), &actions);
      if (round >= kWarmUpRounds) times[c].push_back(ms);
    }
  }
  posix_spawn_file_actions_destroy(&actions);

  for (std::size_t c = 0; c < commands.size(); ++c) {
    std::vector<double>& t = times[c];
    std::sort(t.begin(), t.end());
    std::string_view name = commands[c][0];
    std::printf("%-40.*s median %.3f  p25 %.3f  p75 %.3f  min %.3f ms\n",
                static_cast<int>(name.size()), name.data(), t[t.size() / 2], t[t.size() / 4],
                t[3 * t.size() / 4], t.front());
  }
  return 0;
}
