// Tests of the reverse line reader: differential against a forward split, edge cases, errors.
#include "reverse_line_reader.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "file_descriptor.hpp"
#include "mapped_file.hpp"
#include "test_support.hpp"

using diskfault::BackwardReadahead;
using diskfault::ReadMode;
using diskfault::ReverseLineReader;
using diskfault::SkipIndex;
using diskfault::test::TempDir;

namespace {

// The plain forward reading the reader must agree with: split on '\n'; a final newline ends the
// last line; a '\r' before a newline (or at the very end) is not part of the line.
std::vector<std::string> forward_split(const std::string& data) {
  std::vector<std::string> lines;
  if (data.empty()) return lines;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = data.find('\n', start);
    std::string line = data.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (nl == std::string::npos) {
      lines.push_back(line);
      break;
    }
    lines.push_back(line);
    start = nl + 1;
    if (start == data.size()) break;
  }
  return lines;
}

std::vector<std::string> read_backwards(const std::string& path, std::size_t block,
                                        std::uint64_t* count = nullptr,
                                        ReadMode mode = ReadMode::kAuto) {
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  off_t size = ::lseek(fd, 0, SEEK_END);
  ReverseLineReader reader(fd, size, path, block, mode);
  std::vector<std::string> lines;
  std::uint64_t expected_from_end = 1;
  while (auto line = reader.next()) {
    CHECK(line->from_end == expected_from_end++);
    lines.emplace_back(line->text);
  }
  CHECK_FALSE(reader.next().has_value());
  if (count) *count = reader.line_count();
  ::close(fd);
  return {lines.rbegin(), lines.rend()};
}

// Copies of `line` up to at least `bytes` bytes.
std::string repeated(std::string_view line, std::size_t bytes) {
  std::string data;
  while (data.size() < bytes) data += line;
  return data;
}

// The line the mapping tests repeat, without its newline.
constexpr std::string_view kUsbLine = "[    1.000000] usb 1-1: new high-speed USB device";

// Copies of kUsbLine, each with its newline, up to at least `bytes` bytes.
std::string usb_lines(std::size_t bytes) { return repeated(std::string(kUsbLine) + "\n", bytes); }

// Threads of this process.
std::size_t thread_count() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("the reverse reader agrees with a forward split on random inputs at every block size") {
  TempDir dir;
  std::mt19937 rng(20261122);
  const std::string alphabet("ab\n\n\r\0\xff\xc3 x", 11);
  for (int round = 0; round < 300; ++round) {
    std::size_t length = rng() % (round < 200 ? 40 : 3000);
    std::string data;
    for (std::size_t i = 0; i < length; ++i) data += alphabet[rng() % alphabet.size()];
    std::string path = dir.write("random.log", data);
    auto expected = forward_split(data);
    for (std::size_t block : {1u, 2u, 3u, 7u, 64u, 65536u}) {
      for (ReadMode mode : {ReadMode::kCopy, ReadMode::kMapped}) {
        CAPTURE(round);
        CAPTURE(block);
        CAPTURE(static_cast<int>(mode));
        std::uint64_t count = 0;
        CHECK(read_backwards(path, block, &count, mode) == expected);
        CHECK(count == expected.size());
      }
    }
  }
}

TEST_CASE("lines taken in runs by skip_while and one by one by next() are the file's lines") {
  TempDir dir;
  std::mt19937 rng(20261126);
  const std::string alphabet("ab\n\n\r\0\xff\xc3 x", 11);
  for (int round = 0; round < 200; ++round) {
    // The last rounds are long enough for 64 KiB blocks to be read ahead on the second thread.
    std::size_t length = round < 100   ? rng() % 60
                         : round < 197 ? rng() % 5000
                                       : 200000 + rng() % 200000;
    // Odd rounds have lines of about 150 bytes (runs of 64 bytes without a newline), and take
    // long runs of them.
    const bool long_lines = round % 2 == 1;
    const unsigned refuse_one_in = long_lines ? 40 : 3;
    std::string data;
    for (std::size_t i = 0; i < length; ++i) {
      const char c = alphabet[rng() % alphabet.size()];
      data += long_lines && c == '\n' && rng() % 75 != 0 ? 'y' : c;
    }
    std::string path = dir.write("random.log", data);
    auto expected = forward_split(data);
    std::reverse(expected.begin(), expected.end());
    // Not a structured binding: clang 14 does not let CAPTURE's lambda refer to one.
    for (const auto& config : {std::tuple{1u, true, ReadMode::kCopy},
                               {5u, true, ReadMode::kCopy},
                               {64u, true, ReadMode::kCopy},
                               {65536u, true, ReadMode::kCopy},
                               {1u, false, ReadMode::kCopy},
                               {64u, false, ReadMode::kCopy},
                               {65536u, false, ReadMode::kCopy},
                               {1u, true, ReadMode::kMapped},
                               {64u, true, ReadMode::kMapped},
                               {65536u, true, ReadMode::kMapped},
                               {64u, false, ReadMode::kMapped}}) {
      const unsigned block = std::get<0>(config);
      const bool avx2 = std::get<1>(config);
      const ReadMode mode = std::get<2>(config);
      CAPTURE(round);
      CAPTURE(block);
      CAPTURE(avx2);
      CAPTURE(static_cast<int>(mode));
      ReverseLineReader::allow_avx2(avx2);  // where the processor has it: both ways
      int fd = ::open(path.c_str(), O_RDONLY);
      REQUIRE(fd >= 0);
      ReverseLineReader reader(fd, static_cast<off_t>(data.size()), path, block, mode);
      REQUIRE(reader.mapped() == (mode == ReadMode::kMapped && !data.empty()));
      std::vector<std::string> got;
      std::string refused;
      bool any_refused = false;
      for (;;) {
        any_refused = false;
        const std::size_t before = got.size();
        const auto run = reader.skip_while([&](const diskfault::Line& line) {
          if (rng() % refuse_one_in == 0) {
            refused.assign(line.text);
            any_refused = true;
            return false;
          }
          CHECK(line.from_end == got.size() + 1);
          got.emplace_back(line.text);
          return true;
        });
        CHECK(reader.line_count() == got.size());
        CHECK(run.lines == got.size() - before);  // what it says it took, it handed over
        if (run.lines != 0) {  // and the run's ends are the first and the last line it took
          CHECK(run.newest == got[before]);
          CHECK(run.oldest == got.back());
        } else {
          CHECK(run.newest.empty());
          CHECK(run.oldest.empty());
        }
        auto line = reader.next();
        if (!line) break;
        if (any_refused) CHECK(line->text == refused);  // the refused line comes next
        CHECK(line->from_end == got.size() + 1);
        got.emplace_back(line->text);
      }
      CHECK(got == expected);
      ::close(fd);
    }
  }
  ReverseLineReader::allow_avx2(true);
}

TEST_CASE("an empty file has no lines") {
  TempDir dir;
  std::string path = dir.write("empty.log", "");
  CHECK(read_backwards(path, 64).empty());
}

TEST_CASE("a file without a final newline still yields its last line") {
  TempDir dir;
  std::string path = dir.write("a.log", "first\nsecond");
  CHECK(read_backwards(path, 3) == std::vector<std::string>{"first", "second"});
}

TEST_CASE("a lone newline is one empty line, and blank lines are kept") {
  TempDir dir;
  CHECK(read_backwards(dir.write("a.log", "\n"), 4) == std::vector<std::string>{""});
  CHECK(read_backwards(dir.write("b.log", "a\n\nb\n"), 4) ==
        std::vector<std::string>{"a", "", "b"});
}

TEST_CASE("CRLF line ends lose their carriage return") {
  TempDir dir;
  std::string path = dir.write("crlf.log", "one\r\ntwo\r\n");
  CHECK(read_backwards(path, 2) == std::vector<std::string>{"one", "two"});
}

TEST_CASE("a line longer than the block is handed out whole") {
  TempDir dir;
  std::string long_line(100000, 'x');
  std::string path = dir.write("long.log", "a\n" + long_line + "\nb\n");
  CHECK(read_backwards(path, 7) == std::vector<std::string>{"a", long_line, "b"});
}

TEST_CASE("NUL bytes and invalid UTF-8 pass through untouched") {
  TempDir dir;
  std::string odd("x\0y\xff\xfe", 5);
  std::string path = dir.write("odd.log", odd + "\nok\n");
  CHECK(read_backwards(path, 3) == std::vector<std::string>{odd, "ok"});
}

TEST_CASE("a file that shrinks while it is read is an error that names it") {
  TempDir dir;
  std::string path = dir.write("shrink.log", std::string(1000, 'a') + "\n");
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  ReverseLineReader reader(fd, 1001, path, 16);
  REQUIRE(::ftruncate(fd, 10) == 0);
  CHECK_THROWS_AS(
      {
        while (reader.next()) {
        }
      },
      std::system_error);
  ::close(fd);
}

TEST_CASE("a mapped file that shrinks while it is read is an error that names it, not SIGBUS") {
  TempDir dir;
  const std::string data = usb_lines(64 * 1024);
  std::string path = dir.write("shrink.log", data);
  for (bool skipping : {false, true}) {
    CAPTURE(skipping);
    path = dir.write("shrink.log", data);
    int fd = ::open(path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    ReverseLineReader reader(fd, static_cast<off_t>(data.size()), path, 4096, ReadMode::kMapped);
    REQUIRE(reader.mapped());
    REQUIRE(reader.next());
    // Pages past the new end now fault with SIGBUS: the reader must say so instead of dying, or
    // of handing out zeros as lines.
    REQUIRE(::ftruncate(fd, 100) == 0);
    std::string what;
    try {
      for (;;) {
        if (skipping) reader.skip_while([](const diskfault::Line&) { return true; });
        auto line = reader.next();
        if (!line) break;
        CHECK(line->text.find('\0') == std::string_view::npos);
      }
    } catch (const std::system_error& e) {
      what = e.what();
    }
    CHECK(what.find("file shrank while reading " + path) != std::string::npos);
    ::close(fd);
  }
}

TEST_CASE("a file that shrinks under the older part's scan is an error the reader reports") {
  TempDir dir;
  const std::string data = usb_lines(64 * 1024);
  const std::string path = dir.write("shrink-part.log", data);
  diskfault::FileDescriptor fd(::open(path.c_str(), O_RDWR));  // open until the reader is gone
  REQUIRE(fd.get() >= 0);
  std::atomic<bool> shrunk{false};  // outlives the reader, whose scan waits for it
  ReverseLineReader reader(fd.get(), static_cast<off_t>(data.size()), path, 4096,
                           ReadMode::kMapped);
  // A failed REQUIRE below unwinds through the reader's destructor, which joins the scan: the scan
  // must stop waiting by then.
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag = true; }
  } release{shrunk};
  REQUIRE(reader.mapped());
  reader.scan_older_part(0.9, [&shrunk](ReverseLineReader& part, std::string_view) {
    while (!shrunk.load()) std::this_thread::yield();
    for (;;) {
      auto line = part.next();
      if (!line || !part.mark(*line)) return;
    }
  });
  REQUIRE(reader.split());
  // The newer part, read whole before the file shrinks: what goes wrong after is the scan's.
  const std::size_t part_end = data.rfind('\n', data.size() * 9 / 10 - 1) + 1;
  const auto newer = static_cast<std::size_t>(
      std::count(data.begin() + static_cast<std::ptrdiff_t>(part_end), data.end(), '\n'));
  for (std::size_t i = 0; i < newer; ++i) REQUIRE(reader.next());
  REQUIRE(::ftruncate(fd.get(), 100) == 0);
  shrunk = true;
  struct TakeAll {
    bool operator()(const diskfault::Line&) const { return true; }
    void pass(const diskfault::Line&) const {}
  };
  std::string what;
  try {
    reader.skip_while(TakeAll{});
  } catch (const std::system_error& e) {
    what = e.what();
  }
  CHECK(what.find("file shrank while reading " + path) != std::string::npos);
}

TEST_CASE("a rewound reader reads the same mapping from its end again; a copying one has none") {
  TempDir dir;
  std::string data;
  for (int i = 0; i < 2000; ++i) data += "[    1.000000] line " + std::to_string(i) + "\n";
  const std::string path = dir.write("rewound.log", data);
  diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
  REQUIRE(fd.get() >= 0);
  const auto size = static_cast<off_t>(data.size());
  const std::vector<std::string> expected = forward_split(data);

  ReverseLineReader mapped(fd.get(), size, path, 4096, ReadMode::kMapped);
  REQUIRE(mapped.mapped());
  for (int i = 0; i < 500; ++i) REQUIRE(mapped.next());  // where the first reader stands is its own
  CHECK(mapped.bytes_copied() == 0);  // in place: not split, so nothing is copied
  for (std::size_t block : {std::size_t{100}, std::size_t{16 * 1024}}) {
    CAPTURE(block);
    auto again = mapped.rewound(block);
    REQUIRE(again);
    // It has no descriptor of its own for a second thread's copy to read.
    again->scan_older_part(0.5, [](ReverseLineReader&, std::string_view) {});
    CHECK_FALSE(again->split());
    std::vector<std::string> lines;
    while (auto line = again->next()) lines.emplace_back(line->text);
    CHECK(std::vector<std::string>(lines.rbegin(), lines.rend()) == expected);
  }
  // And the first reader goes on where it was.
  auto line = mapped.next();
  REQUIRE(line);
  CHECK(line->text == expected[expected.size() - 501]);

  ReverseLineReader copied(fd.get(), size, path, 4096, ReadMode::kCopy);
  CHECK_FALSE(copied.rewound(4096));
}

// The file pages this process has mapped and resident, in bytes: RssFile, and RssShmem, where a
// file on tmpfs counts.
std::size_t resident_file_bytes() {
  const long long kib = diskfault::test::proc_sum("/proc/self/status", {"RssFile:", "RssShmem:"});
  REQUIRE(kib >= 0);
  return static_cast<std::size_t>(kib) * 1024;
}

TEST_CASE("a mapping is given back in whole release units, each starting on one") {
  TempDir dir;
  constexpr std::size_t kUnit = diskfault::MappedFile::kReleaseUnit;
  const std::string data = usb_lines(5 * kUnit);
  const std::string path = dir.write("release.log", data);
  diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
  REQUIRE(fd.get() >= 0);
  const auto map = diskfault::MappedFile::map(fd.get(), static_cast<off_t>(data.size()), path);
  REQUIRE(map);
  // The file's first unit boundary: the mapping need not start on one (tmpfs maps anywhere).
  const std::size_t into = reinterpret_cast<std::uintptr_t>(map->data()) % kUnit;
  const std::size_t unit = into == 0 ? 0 : kUnit - into;
  // Up to the next boundary from inside a unit: nothing, and the caller is told so.
  CHECK(map->release(unit + 1, unit + kUnit) == unit + kUnit);
  // From inside a unit: the whole units after it.
  CHECK(map->release(unit + kUnit + 1, unit + 3 * kUnit) == unit + 2 * kUnit);
  CHECK(map->release(unit + 1, unit + 2 * kUnit) == unit + kUnit);
  // To the end of the file, which no unit boundary need end: the pages up to it too.
  CHECK(map->release(unit + 3 * kUnit, data.size()) == unit + 3 * kUnit);
  // Bytes given back are read again from the page cache.
  for (std::size_t at : {unit + kUnit, unit + 3 * kUnit, data.size() - 20}) {
    CAPTURE(at);
    CHECK(std::string_view(map->data() + at, 20) == std::string_view(data).substr(at, 20));
  }
  // Nothing outside [from, to) of the file: a range past its end is cut at the end.
  CHECK(map->release(unit + kUnit, data.size() + 3 * kUnit) == unit + kUnit);
  CHECK(map->release(data.size(), data.size()) == data.size());
}

TEST_CASE("a mapped reader's resident memory stays bounded however large the file") {
  TempDir dir;
  constexpr std::size_t kUnit = diskfault::MappedFile::kReleaseUnit;
  const std::string data = usb_lines(24 * kUnit);
  const std::string path = dir.write("large.log", data);
  for (bool skipping : {false, true}) {
    CAPTURE(skipping);
    diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd.get() >= 0);
    ReverseLineReader reader(fd.get(), static_cast<off_t>(data.size()), path,
                             ReverseLineReader::kDefaultBlockSize, ReadMode::kMapped);
    REQUIRE(reader.mapped());
    const std::size_t before = resident_file_bytes();
    std::size_t most = before;
    std::uint64_t lines = 0;
    for (;;) {
      if (skipping) {
        reader.skip_while([&lines](const diskfault::Line&) { return ++lines % 4096 != 0; });
      }
      if (!reader.next()) break;
      if (++lines % 4096 == 0) most = std::max(most, resident_file_bytes());
    }
    CHECK(lines > 0);
    // The mapped span nearest the reader: the units it is in and the one it left, a block, and
    // what the test itself maps meanwhile. Kept whole, the mapping would reach 48 MiB.
    CHECK(most - before <= 3 * kUnit + ReverseLineReader::kDefaultBlockSize);
  }
}

// A skip_while() test whose answer depends on the line alone: it refuses lines that start
// with 'x'. With `expected` (the file's lines, newest first), it checks each line offered and
// counts the offers and what pass() tells it.
struct RefuseX {
  const std::vector<std::string>* expected = nullptr;
  std::uint64_t* seen = nullptr;     // lines taken or passed so far
  std::uint64_t* offered = nullptr;  // offers
  std::vector<std::string>* passed = nullptr;

  static bool takes(std::string_view text) { return text.empty() || text.front() != 'x'; }
  bool operator()(const diskfault::Line& line) const {
    if (expected == nullptr) return takes(line.text);
    ++*offered;
    CHECK(line.from_end == *seen + 1);
    CHECK(line.text == (*expected)[*seen]);
    const bool take = takes(line.text);
    if (take) ++*seen;
    return take;
  }
  void pass(const diskfault::Line& line) const {
    if (expected == nullptr) return;
    // The oldest of the lines passed over: past the last one accounted for, and that very line.
    CHECK(line.from_end > *seen);
    CHECK(line.text == (*expected)[line.from_end - 1]);
    passed->emplace_back(line.text);
    *seen = line.from_end;
  }
};

TEST_CASE("the scan's copies fill a ring that the reading side frees as it reads") {
  SkipIndex index(64);
  auto text_ending = [&index](std::uint64_t newline) {
    const SkipIndex::Copy* copy = index.copy_ending(newline);
    return copy ? std::string(index.text(*copy)) : std::string("(none)");
  };
  // Newest first, as the scan hands lines out; the third has no room left.
  index.copy({1000, 1010, 0}, "0123456789");
  index.copy({900, 931, 0}, std::string(30, 'a'));  // a '\r' before its newline
  index.copy({800, 830, 0}, std::string(30, 'b'));
  CHECK(text_ending(1010) == "(none)");  // nothing is published before the mark
  index.add({800, 830, 7});
  CHECK(text_ending(1010) == "0123456789");
  const SkipIndex::Copy* second = index.copy_starting(900);
  REQUIRE(second != nullptr);
  CHECK(index.text(*second) == std::string(30, 'a'));
  CHECK(second->newline == 931);
  CHECK(text_ending(931) == std::string(30, 'a'));  // found again until passed
  CHECK(text_ending(830) == "(none)");
  CHECK(index.copies_found() == 3);
  // Still full: what was read is not released yet.
  index.copy({700, 730, 0}, std::string(30, 'c'));
  index.add({700, 730, 8});
  CHECK(text_ending(730) == "(none)");
  // Released, the room is used again. A copy that would cross the ring's end starts it again,
  // and the end it skipped stays taken until that copy is released: 24 + 30 bytes, then.
  index.release(index.copies_read());
  index.copy({600, 630, 0}, std::string(30, 'd'));
  index.copy({500, 530, 0}, std::string(30, 'e'));  // 84 bytes: no room
  index.copy({400, 410, 0}, std::string(10, 'f'));  // 64: just room
  index.copy({300, 400, 0}, std::string(64, 'g'));  // as large as the ring: never
  index.finish();
  CHECK(text_ending(630) == std::string(30, 'd'));
  CHECK(text_ending(530) == "(none)");
  CHECK(text_ending(410) == std::string(10, 'f'));
  CHECK(text_ending(400) == "(none)");
  CHECK(index.copies_found() == 5);
}

TEST_CASE("in a part scanned on the second thread, skip_while offers only the lines marked") {
  TempDir dir;
  std::mt19937 rng(20261127);
  for (int round = 0; round < 60; ++round) {
    // Lines that start with 'x' now and then; a few rounds refuse so many that the index fills.
    const bool crowded = round >= 57;
    std::string data;
    const std::size_t lines = crowded ? 200000 + rng() % 1000 : 1 + rng() % 3000;
    for (std::size_t i = 0; i < lines; ++i) {
      data += (crowded ? rng() % 8 != 0 : rng() % 40 == 0) ? "x" : "a";
      data += std::string(rng() % 30, 'b');
      data += rng() % 20 ? "\n" : "\r\n";
    }
    if (rng() % 2) data.pop_back();  // no final newline
    const std::string path = dir.write("part.log", data);
    auto expected = forward_split(data);
    std::reverse(expected.begin(), expected.end());
    for (std::size_t block : {64u, 4096u, 65536u}) {
      // Room to copy every line the first thread reads, a few of them, or none.
      const std::size_t copy_bytes = round % 3 == 0   ? SkipIndex::kCopyBytes
                                     : round % 3 == 1 ? 64 + rng() % 256
                                                      : 0;
      CAPTURE(round);
      CAPTURE(block);
      CAPTURE(copy_bytes);
      int fd = ::open(path.c_str(), O_RDONLY);
      REQUIRE(fd >= 0);
      ReverseLineReader reader(fd, static_cast<off_t>(data.size()), path, block, ReadMode::kMapped);
      std::uint64_t marked = 0, offered = 0;
      const double fraction = crowded ? 0.7 : 0.3 + 0.4 * (rng() % 100) / 100.0;
      reader.scan_older_part(
          fraction,
          [&marked](ReverseLineReader& part, std::string_view) {
            for (;;) {
              part.skip_while(RefuseX{});
              auto line = part.next();
              if (!line || !part.mark(*line)) return;
              ++marked;
            }
          },
          copy_bytes);
      std::vector<std::string> passed;
      std::uint64_t seen = 0;  // lines accounted for, newest first
      for (;;) {
        passed.clear();
        const std::uint64_t before = seen;
        const auto run = reader.skip_while(RefuseX{&expected, &seen, &offered, &passed});
        CHECK(run.lines == seen - before);
        CHECK(reader.line_count() == seen);
        if (run.lines != 0) {
          CHECK(run.newest == expected[seen - run.lines]);
          CHECK(run.oldest == expected[seen - 1]);
        }
        // None of the lines a run passes over would have been refused.
        for (std::uint64_t i = seen - run.lines; i < seen; ++i) {
          CHECK((expected[i].empty() || expected[i].front() != 'x'));
        }
        auto line = reader.next();
        if (!line) break;
        CHECK(line->from_end == ++seen);
        CHECK(line->text == expected[seen - 1]);
      }
      CHECK(seen == expected.size());
      // The newer part was read by copy, the part (the file up to the line end before the
      // fraction) from the mapping or the scan's copies.
      const auto at = static_cast<std::size_t>(static_cast<double>(data.size()) * fraction);
      const std::size_t newline = at == 0 ? std::string::npos : data.rfind('\n', at - 1);
      CHECK(reader.split() == (newline != std::string::npos));
      if (reader.split()) CHECK(reader.bytes_copied() == data.size() - (newline + 1));
      if (crowded) CHECK(marked == SkipIndex::kMaxBreaks);
      // With room for them, the marked lines came from the scan's copies, not the mapping.
      if (copy_bytes == 0) CHECK(reader.lines_read_from_copies() == 0);
      if (copy_bytes == SkipIndex::kCopyBytes && !crowded && marked != 0) {
        CHECK(reader.lines_read_from_copies() >= marked);
      }
      // The index spared the first thread most offers in the part (at least 30% of the file),
      // unless it had to give up, or the scan's blocks were so small that it marked most lines.
      if (!crowded && lines > 1000 && block >= 4096) CHECK(offered < lines * 8 / 10);
      ::close(fd);
    }
  }
}

TEST_CASE("a split file's newer part is copied up to the split, lines longer than a block too") {
  TempDir dir;
  std::mt19937 rng(20261128);
  for (int round = 0; round < 20; ++round) {
    std::string data;
    const std::size_t lines = 50 + rng() % 400;
    for (std::size_t i = 0; i < lines; ++i) {
      // Now and then a line several times the block, which the copied blocks grow to hold.
      const std::size_t length = rng() % 6 == 0 ? 100 + rng() % 400 : rng() % 40;
      data += rng() % 5 == 0 ? "x" : "a";
      data += std::string(length, 'b');
      data += rng() % 10 ? "\n" : "\r\n";
    }
    const std::string path = dir.write("split-long.log", data);
    auto expected = forward_split(data);
    std::reverse(expected.begin(), expected.end());
    const double fraction = 0.2 + 0.6 * (rng() % 100) / 100.0;
    const auto at = static_cast<std::size_t>(static_cast<double>(data.size()) * fraction);
    const std::size_t part_end = data.rfind('\n', at - 1) + 1;
    CAPTURE(round);
    CAPTURE(part_end);
    diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd.get() >= 0);
    ReverseLineReader reader(fd.get(), static_cast<off_t>(data.size()), path, 64,
                             ReadMode::kMapped);
    reader.scan_older_part(fraction, [](ReverseLineReader& part, std::string_view) {
      for (;;) {
        part.skip_while(RefuseX{});
        auto line = part.next();
        if (!line || !part.mark(*line)) return;
      }
    });
    REQUIRE(reader.split());
    std::uint64_t seen = 0, offered = 0;
    std::vector<std::string> passed;
    for (;;) {
      reader.skip_while(RefuseX{&expected, &seen, &offered, &passed});
      auto line = reader.next();
      if (!line) break;
      CHECK(line->text == expected[seen++]);
    }
    CHECK(seen == expected.size());
    CHECK(reader.bytes_copied() == data.size() - part_end);
    CHECK(reader.bytes_read() == data.size());
  }
}

TEST_CASE("blocks read ahead on the second thread give the same lines, long lines included") {
  TempDir dir;
  std::mt19937 rng(7);
  const std::size_t block = ReverseLineReader::kReadAheadMinBlock;
  for (int round = 0; round < 6; ++round) {
    std::string data;
    while (data.size() < 5 * block + rng() % block) {
      // Mostly short lines, now and then one longer than two blocks.
      std::size_t length = rng() % 40 == 0 ? 2 * block + rng() % block : rng() % 200;
      for (std::size_t i = 0; i < length; ++i) data += static_cast<char>('a' + rng() % 26);
      data += rng() % 10 ? "\n" : "\r\n";
    }
    if (round % 2) data.pop_back();  // no final newline
    std::string path = dir.write("ahead.log", data);
    CAPTURE(round);
    std::uint64_t count = 0;
    auto expected = forward_split(data);
    CHECK(read_backwards(path, block, &count, ReadMode::kCopy) == expected);
    CHECK(count == expected.size());
  }
}

TEST_CASE("big blocks are read from page boundaries of the file into page-aligned memory") {
  // So the kernel copies page to page; ReverseLineReader::kPage gives the figures.
  TempDir dir;
  const std::size_t block = ReverseLineReader::kReadAheadMinBlock;
  const std::size_t page = ReverseLineReader::kPage;
  for (std::size_t bytes : {5 * block, 5 * block + 1, 5 * block + 16, 5 * block + page - 1,
                            3 * block + 100, block / 2}) {
    std::string data = repeated("a line of noise that is 40 bytes long.\n", bytes);
    data.resize(bytes);
    std::string path = dir.write("pages.log", data);
    int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    CAPTURE(bytes);
    ReverseLineReader reader(fd, static_cast<off_t>(bytes), path, block, ReadMode::kCopy);
    std::vector<std::string> got;
    std::uint64_t read = 0;
    while (auto line = reader.next()) {
      got.emplace_back(line->text);
      if (reader.bytes_read() == read) continue;
      read = reader.bytes_read();
      if (got.size() == 1) {  // the first block: at least a block, to the page boundary before
        CHECK(read >= std::min(bytes, block));
        CHECK(read < std::min(bytes, block) + page);
      }
      CHECK(((bytes - read) % page == 0 || read == bytes));  // every block starts on a page
    }
    CHECK(read == bytes);
    auto expected = forward_split(data);
    std::reverse(expected.begin(), expected.end());
    CHECK(got == expected);
    ::close(fd);
  }
  diskfault::PageAlignedAllocator<char> allocator;
  for (std::size_t n : {1u, 100u, 70000u, 1u << 20}) {
    char* p = allocator.allocate(n);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % page == 0);
    allocator.deallocate(p, n);
  }
}

TEST_CASE("a reader that stops inside its first block starts no thread") {
  // Follow mode reads a log back to the start of the current boot, often inside the last block:
  // a thread would cost more than the reading, and once started, glibc's malloc takes locks for
  // the whole run.
  TempDir dir;
  const std::size_t block = ReverseLineReader::kReadAheadMinBlock;
  const std::string data = repeated("a line of noise\n", 4 * block);
  std::string path = dir.write("first.log", data);
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const std::size_t before = thread_count();
  ReverseLineReader reader(fd, static_cast<off_t>(data.size()), path, block, ReadMode::kCopy);
  for (int i = 0; i < 200; ++i) REQUIRE(reader.next().has_value());
  CHECK(reader.bytes_read() == block);
  CHECK(thread_count() == before);
  while (reader.bytes_read() <= block) REQUIRE(reader.next().has_value());
  CHECK(thread_count() == before + 1);  // now it reads ahead
  ::close(fd);
}

TEST_CASE(
    "a reader whose blocks are too small to read ahead starts no thread, however far it reads") {
  // Format detection reads with such blocks (a static_assert there says so): its 200 lines may
  // take more than one block when lines are long.
  TempDir dir;
  const std::string data = repeated("[    1.000000] " + std::string(420, 'x') + "\n", 600 * 1024);
  std::string path = dir.write("long-lines.log", data);
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const std::size_t before = thread_count();
  ReverseLineReader reader(fd, static_cast<off_t>(data.size()), path,
                           ReverseLineReader::kReadAheadMinBlock / 4);
  while (reader.next()) {
  }
  CHECK(reader.bytes_read() == data.size());
  CHECK(thread_count() == before);  // counted while the reader is alive
  ::close(fd);
}

TEST_CASE("a read ahead that fails reaches the caller, and a reader left early stops cleanly") {
  TempDir dir;
  const std::size_t block = ReverseLineReader::kReadAheadMinBlock;
  const std::string data = repeated("a line of noise\n", 4 * block);
  std::string path = dir.write("ahead.log", data);
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  const off_t size = static_cast<off_t>(data.size());
  // Past its first block a reader reads the next one ahead.
  auto into_second_block = [&](ReverseLineReader& reader) {
    while (reader.bytes_read() <= block) REQUIRE(reader.next().has_value());
  };
  {
    ReverseLineReader early(fd, size, path, block, ReadMode::kCopy);
    into_second_block(early);  // the third block is being read meanwhile
  }
  ReverseLineReader failing(fd, size, path, block, ReadMode::kCopy);
  REQUIRE_FALSE(failing.mapped());
  into_second_block(failing);
  REQUIRE(::ftruncate(fd, 10) == 0);  // the fourth block is read ahead after this
  try {
    while (failing.next()) {
    }
    FAIL("no error");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
  ::close(fd);
}

TEST_CASE("a file read backwards is asked for ahead of the reader only where the disk holds it") {
  constexpr off_t kMiB = off_t{1} << 20;
  constexpr off_t kDepth = BackwardReadahead::kDepth;
  const off_t size = 300 * kMiB + 12345;
  std::mt19937 rng(11);
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    // Blocks of 1 MiB from the end (the one at the start short), some not in the page cache.
    std::map<off_t, bool> cold;  // by block start
    for (off_t end = size; end > 0; end -= kMiB) {
      const off_t at = std::max<off_t>(0, end - kMiB);
      cold[at] = round == 0 ? false : round == 1 ? true : rng() % (round % 5 == 2 ? 4 : 60) == 0;
    }
    BackwardReadahead readahead;
    std::vector<BackwardReadahead::Range> asked;
    off_t frontier = size;  // [frontier, size) is asked for or read at once
    std::optional<off_t> last_cold;
    for (auto it = cold.rbegin(); it != cold.rend(); ++it) {
      const off_t at = it->first;
      const bool is_cold = it->second;
      CAPTURE(at);
      // A block less than kSpan below a cold one was asked for before it is read.
      if (last_cold && at >= *last_cold - BackwardReadahead::kSpan) CHECK(frontier <= at);
      if (is_cold) {
        last_cold = at;
        frontier = std::min(frontier, at);
      }
      readahead.before_reading(at, !is_cold);
      while (const auto ask = readahead.next_ask(at)) {
        REQUIRE(last_cold.has_value());  // never while every block was found cached
        CHECK(ask->length > 0);
        CHECK(ask->offset >= std::max<off_t>(0, at - kDepth));  // at most kDepth ahead
        // Each byte once, the nearest first, without gaps.
        CHECK(ask->offset + ask->length == frontier);
        frontier = ask->offset;
        asked.push_back(*ask);
      }
    }
    if (round == 0) CHECK(asked.empty());
    if (round == 1) {  // a file all on disk is asked for whole, from its last block to its start
      REQUIRE_FALSE(asked.empty());
      CHECK(asked.front().offset + asked.front().length == size - kMiB);
      CHECK(asked.back().offset == 0);
    }
    // Asked for in steps, not a block at a time (the last one may be short: the file starts).
    for (const auto& ask : asked) {
      CHECK((ask.length == BackwardReadahead::kStep || ask.offset == 0));
    }
  }
}

namespace {

// Drops `fd`'s pages, `size` bytes, from the page cache; false where they stay (a filesystem
// that keeps files in memory).
bool evict(int fd, off_t size) {
  if (::fdatasync(fd) != 0) return false;
  for (int tries = 0; tries < 50; ++tries) {
    if (::posix_fadvise(fd, 0, size, POSIX_FADV_DONTNEED) != 0) return false;
    if (diskfault::test::resident_pages(fd, 0, static_cast<std::size_t>(size)) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // pages still being written
  }
  return false;
}

}  // namespace

TEST_CASE("a small log with one page out of the page cache is read by copy, not in place") {
  // Every page of a small log is asked about, not a sample: page 1 of a 1 MiB log lies between
  // the first two of the 32 pages a sample would look at.
  TempDir dir;
  const std::string data = usb_lines(1 << 20);
  const std::string path = dir.write("gap.log", data);
  diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
  REQUIRE(fd.get() >= 0);
  const auto size = static_cast<off_t>(data.size());
  const off_t page = ReverseLineReader::kPage;
  if (!evict(fd.get(), size)) {
    MESSAGE("the page cache keeps the files in " << dir.path() << ": nothing to check");
    return;
  }
  // Everything back but page 1 (read-ahead brings in whole aligned folios: none reaches it).
  REQUIRE(::posix_fadvise(fd.get(), 0, page, POSIX_FADV_WILLNEED) == 0);
  REQUIRE(::posix_fadvise(fd.get(), 2 * page, size - 2 * page, POSIX_FADV_WILLNEED) == 0);
  const auto all = static_cast<std::size_t>(size);
  const std::size_t pages = (all + static_cast<std::size_t>(page) - 1) / page;
  auto resident = [&] { return diskfault::test::resident_pages(fd.get(), 0, all); };
  for (int tries = 0; tries < 400 && resident() < pages - 1; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (diskfault::test::resident_pages(fd.get(), page, 1) != 0 || resident() != pages - 1) {
    MESSAGE("the page cache did not hold all of " << path << " but its second page");
    return;
  }
  CHECK_FALSE(ReverseLineReader(fd.get(), size, path).mapped());
  // And once the page is back, in place.
  std::vector<char> buffer(static_cast<std::size_t>(page));
  REQUIRE(::pread(fd.get(), buffer.data(), buffer.size(), page) == page);
  CHECK(ReverseLineReader(fd.get(), size, path).mapped());
}

TEST_CASE("a file not in the page cache: read whole, and its next bytes asked for at once") {
  // The kernel reads ahead of forward reads only: without diskfault's asking, the bytes before a
  // block read from the disk stay there until their own block is read.
  TempDir dir;
  const std::size_t block = ReverseLineReader::kReadAheadMinBlock;
  const off_t page = ReverseLineReader::kPage;
  const std::string data = repeated("[    1.000000] a line of noise on disk\n", 16 << 20);
  const std::string path = dir.write("cold.log", data);
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const auto size = static_cast<off_t>(data.size());
  const off_t first = (size - static_cast<off_t>(block)) / page * page;  // the first block read
  const off_t ahead_at = first - BackwardReadahead::kDepth;              // what to ask for
  const auto ahead = static_cast<std::size_t>(BackwardReadahead::kDepth);
  const std::size_t pages = ahead / static_cast<std::size_t>(page);

  // A no-wait read of what the page cache lacks starts the kernel reading it, and a fast disk can
  // be done before the read looks again: then the block counts as cached. So a cold start is
  // tried up to four times; without the asking, no try fills the bytes ahead.
  bool nowait = true;
  bool asked = false;
  for (int attempt = 0; attempt < 4 && nowait && !asked; ++attempt) {
    CAPTURE(attempt);
    if (!evict(fd, size)) {
      MESSAGE("the page cache keeps the files in " << dir.path() << ": nothing to check");
      ::close(fd);
      return;
    }
    // The first block all on the disk but its first page: a block partly cached counts as read
    // from the disk.
    REQUIRE(::posix_fadvise(fd, first, page, POSIX_FADV_WILLNEED) == 0);
    for (int tries = 0; tries < 200 && diskfault::test::resident_pages(fd, first, 1) == 0;
         ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(diskfault::test::resident_pages(fd, first, block) == 1);

    ReverseLineReader reader(fd, size, path, block);
    REQUIRE(reader.next().has_value());
    CHECK(reader.bytes_read() <= block + static_cast<std::size_t>(page));
    std::size_t resident = 0;
    for (int tries = 0; tries < 80 && resident < pages; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      resident = diskfault::test::resident_pages(fd, ahead_at, ahead);
    }
    asked = resident == pages;
    if (asked) {  // and no more than asked
      CHECK(diskfault::test::resident_pages(fd, 0, static_cast<std::size_t>(ahead_at)) == 0);
    }
    // Whether the kernel can say what it holds (asked last: the reading starts the disk).
    std::vector<char> buffer(static_cast<std::size_t>(page));
    nowait = diskfault::pread_cached(fd, buffer.data(), buffer.size(), 0).has_value();

    std::size_t lines = 1;
    while (reader.next()) ++lines;
    CHECK(lines == forward_split(data).size());
    CHECK(reader.bytes_read() == data.size());
  }
  if (nowait) CHECK(asked);
  ::close(fd);
}

namespace {

// FilePmdMapped and ShmemPmdMapped in /proc/self/smaps_rollup, in KiB; -1 where the kernel does
// not say.
long long pmd_mapped_kib() {
  return diskfault::test::proc_sum("/proc/self/smaps_rollup",
                                   {"FilePmdMapped:", "ShmemPmdMapped:"});
}

enum class Pages { kMostlyHuge, kMostlySmall, kUnclear };

// How the kernel maps the file at `path`: every whole 2 MiB unit of a mapping of it touched, and
// counted by whether it got a huge page's entry. Unclear where the kernel does not say, or where
// neither kind has a clear majority.
Pages pages_of(const std::string& path, std::size_t size) {
  constexpr std::size_t kUnit = diskfault::MappedFile::kReleaseUnit;
  diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
  REQUIRE(fd.get() >= 0);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  REQUIRE(map != MAP_FAILED);
  const auto base = reinterpret_cast<std::uintptr_t>(map);
  const long long before = pmd_mapped_kib();
  std::size_t units = 0;
  for (std::uintptr_t at = (base + kUnit - 1) & ~(kUnit - 1); at + kUnit <= base + size;
       at += kUnit) {
    [[maybe_unused]] const char byte = *reinterpret_cast<const volatile char*>(at);
    ++units;
  }
  const long long after = pmd_mapped_kib();
  ::munmap(map, size);
  if (before < 0 || after < 0 || units == 0) return Pages::kUnclear;
  const auto huge = static_cast<std::size_t>(after - before) / (kUnit / 1024);
  if (3 * huge >= 2 * units) return Pages::kMostlyHuge;
  if (3 * huge <= units) return Pages::kMostlySmall;
  return Pages::kUnclear;
}

}  // namespace

TEST_CASE("a large log the page cache holds in small pages is copied, in huge pages mapped") {
  // Mapped a page at a time, a large log costs more than its copy (MappedFile::kSmallPagesCopyMin).
  TempDir dir;
  // Large enough that a forward read brings most of it in as huge pages, where the kernel makes
  // them: it starts a file read from its start with small ones (35 MiB here had 2 of 17 units in
  // huge pages, 100 MiB 35 of 50).
  constexpr std::size_t kSize = std::size_t{104} << 20;
  static_assert(kSize > diskfault::MappedFile::kSmallPagesCopyMin);
  const std::string data = usb_lines(kSize);
  const std::string path = dir.path() / "pages.log";
  {
    // In 4 KiB writes, as a syslog daemon appends: the page cache keeps such a file in small
    // pages where a kernel makes larger ones only for larger writes.
    diskfault::FileDescriptor out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    REQUIRE(out.get() >= 0);
    for (std::size_t at = 0; at < data.size(); at += 4096) {
      const std::size_t n = std::min<std::size_t>(4096, data.size() - at);
      REQUIRE(::write(out.get(), data.data() + at, n) == static_cast<ssize_t>(n));
    }
  }
  auto read_in_place = [&] {
    diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
    REQUIRE(fd.get() >= 0);
    ReverseLineReader reader(fd.get(), static_cast<off_t>(data.size()), path);
    const auto line = reader.next();
    CHECK((line && line->text == kUsbLine));
    return reader.mapped();
  };
  int checked = 0;
  for (bool read_forwards : {false, true}) {
    CAPTURE(read_forwards);
    if (read_forwards) {
      // Dropped and read in again from the start in large reads, as `cat` does: where the
      // kernel builds huge pages for a file read so, it does for this one's later part.
      diskfault::FileDescriptor fd(::open(path.c_str(), O_RDONLY));
      if (!evict(fd.get(), static_cast<off_t>(data.size()))) break;
      std::vector<char> buffer(1 << 20);
      while (::read(fd.get(), buffer.data(), buffer.size()) > 0) {
      }
    }
    // Memory pressure between this look and the reader's could change the answer (not seen).
    switch (pages_of(path, data.size())) {
      case Pages::kMostlyHuge:
        CHECK(read_in_place());
        ++checked;
        break;
      case Pages::kMostlySmall:
        CHECK_FALSE(read_in_place());
        ++checked;
        break;
      case Pages::kUnclear:
        MESSAGE("no clear answer to how the kernel maps " << path);
    }
  }
  if (checked == 0) MESSAGE("nothing to check: the page cache's pages cannot be told here");
}
