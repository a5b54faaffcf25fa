// A floor under any diagnosis that reads every line of a page-cached log: the file's line ends
// found from its end, and the byte after each line end read (where a stamp starts), with nothing
// else done per line and no copy (the file is mapped). diskfault reads every line's stamp, to find
// where the clock restarts, so a reader like this one bounds it from below; `rg -c XFS` looks for
// line ends only around its hits, and is not bound so. With two threads each takes one half of the
// file: what a second core could add.
//
// Usage: line_floor FILE [THREADS]    THREADS is 1 (the default) or 2. Prints the number of line
// ends, and the sum of the bytes read (so that reading them is not optimised away). A benchmark,
// not a tool: a file truncated while it runs kills it (SIGBUS).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr std::size_t kPage = 4096;

// The pages a part's scan has passed, given back (MADV_DONTNEED) in whole 2 MiB units that start
// at a multiple of 2 MiB in memory, once a unit lies past the scan: peak RSS then stays a few MiB,
// as diskfault's does, where a mapping kept whole grows to the size of the file. A release that
// cut into a unit the kernel had mapped as one huge page split the mapping first, and made the
// 1 GiB log's two-core scan slower (diskfault's release cost the same way: MappedFile).
class Trail {
 public:
  static constexpr std::size_t kUnit = std::size_t{2} << 20;

  Trail(const char* map, std::size_t end) : map_(map), kept_(end) {}

  // The scan has read every byte from `at` up.
  void passed(std::size_t at) {
    if (kept_ - at < kUnit + kPage) return;
    const auto base = reinterpret_cast<std::uintptr_t>(map_);
    const std::size_t from = ((base + at + kPage + kUnit - 1) & ~(kUnit - 1)) - base;
    const std::size_t to = kept_ & ~(kPage - 1);  // a partial last page stays
    if (from >= to) return;
    ::madvise(const_cast<char*>(map_) + from, to - from, MADV_DONTNEED);
    kept_ = from;
  }

 private:
  const char* map_;
  std::size_t kept_;  // pages from here up are given back
};

struct Tally {
  std::uint64_t line_ends = 0;
  std::uint64_t first_bytes = 0;  // the sum of the bytes read
};

#if defined(__x86_64__)
[[gnu::target("avx2")]] void scan_avx2(const char* map, std::size_t begin, std::size_t end,
                                       std::size_t size, Tally* tally) {
  const __m256i newline = _mm256_set1_epi8('\n');
  std::uint64_t ends = 0, firsts = 0;
  std::size_t at = end;
  Trail trail(map, end);
  // The 64-byte loads below stay within the part, and so within the mapping: the bytes that do not
  // make up a whole 64 are looked at one by one.
  while ((at - begin) % 64 != 0) {
    --at;
    if (map[at] == '\n') {
      ++ends;
      if (at + 1 < size) firsts += static_cast<unsigned char>(map[at + 1]);
    }
  }
  while (at != begin) {
    at -= 64;
    const auto* p = reinterpret_cast<const __m256i*>(map + at);
    const auto low = static_cast<std::uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(p), newline)));
    const auto high = static_cast<std::uint32_t>(
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(p + 1), newline)));
    for (std::uint64_t bits = std::uint64_t{high} << 32 | low; bits != 0;) {
      const int top = 63 - std::countl_zero(bits);
      bits ^= std::uint64_t{1} << top;
      ++ends;
      const std::size_t next = at + static_cast<std::size_t>(top) + 1;
      if (next < size) firsts += static_cast<unsigned char>(map[next]);
    }
    trail.passed(at);
  }
  *tally = {ends, firsts};
}
#endif

void scan_portable(const char* map, std::size_t begin, std::size_t end, std::size_t size,
                   Tally* tally) {
  std::uint64_t ends = 0, firsts = 0;
  std::size_t at = end;
  Trail trail(map, end);
  while (at != begin) {
    const void* hit = ::memrchr(map + begin, '\n', at - begin);
    if (hit == nullptr) break;
    at = static_cast<std::size_t>(static_cast<const char*>(hit) - map);
    ++ends;
    if (at + 1 < size) firsts += static_cast<unsigned char>(map[at + 1]);
    trail.passed(at);
  }
  *tally = {ends, firsts};
}

void scan(const char* map, std::size_t begin, std::size_t end, std::size_t size, Tally* tally) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return scan_avx2(map, begin, end, size, tally);
#endif
  scan_portable(map, begin, end, size, tally);
}

int fail(const std::string& what) {
  std::fprintf(stderr, "line_floor: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) return fail("usage: line_floor FILE [THREADS]");
  const std::string path = argv[1];
  int threads = 1;
  if (argc == 3) {
    const std::string_view arg = argv[2];
    const auto [end, error] = std::from_chars(arg.data(), arg.data() + arg.size(), threads);
    if (error != std::errc{} || end != arg.data() + arg.size() || (threads != 1 && threads != 2)) {
      return fail("THREADS is 1 or 2");
    }
  }

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(path + ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  Tally tallies[2];
  if (size != 0) {  // mmap() refuses an empty range
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) return fail(path + ": " + std::strerror(errno));
    const char* map = static_cast<const char*>(mapped);
    // The parts meet at a page boundary, so that neither's MADV_DONTNEED reaches the other's
    // pages; a file under two pages stays in one part.
    const std::size_t middle = threads == 2 ? (size / 2) & ~(kPage - 1) : 0;
    if (middle == 0) {
      scan(map, 0, size, size, &tallies[0]);
    } else {
      std::thread upper(scan, map, middle, size, size, &tallies[1]);
      scan(map, 0, middle, size, &tallies[0]);
      upper.join();
    }
  }
  const std::uint64_t ends = tallies[0].line_ends + tallies[1].line_ends;
  const std::uint64_t firsts = tallies[0].first_bytes + tallies[1].first_bytes;
  std::printf("%llu line ends (first bytes sum to %llu)\n", static_cast<unsigned long long>(ends),
              static_cast<unsigned long long>(firsts));
  return 0;
}
