// Tests of the check's state file: round trip, corrupt input, atomic 0600 writes, symlinks, the
// lock.
#include "state_file.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <system_error>
#include <thread>

#include "test_support.hpp"

using diskfault::CheckState;
using diskfault::load_state;
using diskfault::parse_state;
using diskfault::save_state;
using diskfault::serialize_state;
using diskfault::StateEntry;
using diskfault::StateLock;
using diskfault::test::TempDir;

namespace {

CheckState sample_state() {
  CheckState state;
  StateEntry drive;
  drive.keys = {"bus:line-0123456789abcdef:2:0:0:0", "serial:Z1Z3ABCD"};
  drive.label = "serial Z1Z3ABCD (sdc, 2:0:0:0, ST4000NM0033) \xC2\xA6 \xE2\x9C\x93";
  drive.errors = 4;
  drive.newest = "1ebb058e4671abc5";
  drive.seen = {"0123456789abcdef", "1ebb058e4671abc5"};
  drive.first_reported = 1700000000;
  drive.last_seen = 1700000300;
  state.drives.push_back(drive);
  StateEntry dm;
  dm.keys = {"unresolved:unknown:dm-3"};
  dm.label = "dm-3";
  dm.errors = 1;
  dm.newest = "0000000000000001";
  state.unresolved.push_back(dm);
  return state;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

int error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

}  // namespace

TEST_CASE("a state survives serialize and parse unchanged") {
  std::string problem;
  auto parsed = parse_state(serialize_state(sample_state()), &problem);
  REQUIRE(parsed.has_value());
  CHECK(*parsed == sample_state());
  CHECK(problem.empty());
}

TEST_CASE("text that is not a state is refused with a reason, never an exception") {
  const std::string good = serialize_state(sample_state());
  for (std::string bad :
       {std::string(""), good.substr(0, good.size() / 2), std::string("[]"),
        std::string("{\"schema_version\": 2, \"drives\": [], \"unresolved\": []}"),
        std::string("{\"schema_version\": 1, \"drives\": {}, \"unresolved\": []}"),
        std::string("{\"schema_version\": 1, \"drives\": [{\"keys\": []}], \"unresolved\": []}"),
        std::string("{\"schema_version\": 1, \"drives\": [{\"keys\": [\"k\"], \"label\": 3, "
                    "\"errors\": 1, \"newest\": \"\", \"first_reported\": 0, "
                    "\"last_seen\": 0}], \"unresolved\": []}"),
        std::string("{\"schema_version\": \"1\"}"), std::string("\xff\xfe garbage")}) {
    CAPTURE(bad);
    std::string problem;
    CHECK_FALSE(parse_state(bad, &problem).has_value());
    CHECK_FALSE(problem.empty());
    CHECK(problem.find('\n') == std::string::npos);
  }
}

TEST_CASE(
    "every truncation and random corruption of a state parses or is refused, without a crash") {
  const std::string good = serialize_state(sample_state());
  std::mt19937 random(12345);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    std::string problem;
    auto parsed = parse_state(good.substr(0, cut), &problem);
    // The document ends in "}\n": only the complete text (less the newline) can parse.
    CHECK(parsed.has_value() == (cut == good.size() - 1));
  }
  for (int i = 0; i < 500; ++i) {
    std::string mutated = good;
    mutated[random() % mutated.size()] = static_cast<char>(random() % 256);
    std::string problem;
    auto parsed = parse_state(mutated, &problem);
    CHECK((parsed.has_value() || !problem.empty()));
  }
}

TEST_CASE("a missing state file is a first run") {
  TempDir dir;
  auto loaded = load_state((dir.path() / "state.json").string());
  CHECK_FALSE(loaded.existed);
  CHECK(loaded.warning.empty());
  CHECK(loaded.state == CheckState{});
}

TEST_CASE("a corrupt state file gives an empty state and a one-line warning naming it") {
  TempDir dir;
  auto path = dir.write("state.json", "{\"schema_version\": 1, \"drives\": [\n");
  auto loaded = load_state(path);
  CHECK(loaded.existed);
  CHECK(loaded.state == CheckState{});
  CHECK(loaded.warning.find(path) != std::string::npos);
  CHECK(loaded.warning.find("corrupt") != std::string::npos);
  CHECK(loaded.warning.find('\n') == std::string::npos);
}

TEST_CASE("a state file that cannot be read is an error, not a first run") {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "state.json");
  CHECK(error_of([&] { load_state((dir.path() / "state.json").string()); }) == EINVAL);
}

TEST_CASE("a symbolic link is never followed when loading or saving the state") {
  TempDir dir;
  auto target = dir.write("elsewhere", serialize_state(sample_state()));
  std::string link = (dir.path() / "state.json").string();
  std::filesystem::create_symlink(target, link);
  CHECK(error_of([&] { load_state(link); }) == ELOOP);
  CHECK(error_of([&] { save_state(link, CheckState{}); }) == ELOOP);
  CHECK(slurp(target) == serialize_state(sample_state()));
  CHECK(std::filesystem::is_symlink(link));
}

TEST_CASE(
    "the state is saved with mode 0600 whatever the old file's mode, leaving no temporary file") {
  TempDir dir;
  auto path = dir.write("state.json", "old");
  ::chmod(path.c_str(), 0644);
  save_state(path, sample_state());
  CHECK(mode_of(path) == 0600);
  CHECK(load_state(path).state == sample_state());
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CAPTURE(entry.path().string());
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("saving into a missing directory fails with the directory's name") {
  TempDir dir;
  std::string path = (dir.path() / "missing" / "state.json").string();
  try {
    save_state(path, sample_state());
    FAIL("save_state did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()).find((dir.path() / "missing").string()) != std::string::npos);
  }
}

TEST_CASE("the lock is exclusive: a second holder waits, and gets it once the first lets go") {
  TempDir dir;
  std::string state = (dir.path() / "state.json").string();
  std::atomic<bool> released{false};
  std::atomic<bool> second_saw_release{false};
  std::thread second;
  {
    auto first = StateLock::acquire(state, std::chrono::milliseconds(0));
    CHECK(mode_of(StateLock::lock_path(state)) == 0600);
    // Without waiting, a second lock is refused at once, naming the lock file.
    try {
      StateLock::acquire(state, std::chrono::milliseconds(0));
      FAIL("a second lock was granted");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EWOULDBLOCK);
      CHECK(std::string(e.what()).find(StateLock::lock_path(state)) != std::string::npos);
    }
    // A waiting one gets it only after the first is released.
    second = std::thread([&] {
      auto lock = StateLock::acquire(state, std::chrono::seconds(30));
      second_saw_release = released.load();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let it start waiting
    released = true;
  }
  second.join();
  CHECK(second_saw_release);
}

TEST_CASE("a lock beside a state in a missing directory is an error naming the lock file") {
  TempDir dir;
  std::string state = (dir.path() / "missing" / "state.json").string();
  try {
    StateLock::acquire(state, std::chrono::milliseconds(0));
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()).find(StateLock::lock_path(state)) != std::string::npos);
  }
}
