// The floor under any diagnosis that reads every line of a page-cached log: the file's line ends
// found from its end, and the first byte after each read, with nothing else done per line and no
// copy (the file is mapped). diskfault reads every line's stamp, to find where the clock restarts,
// so on one core it cannot beat this; `rg -c XFS` looks for line ends only around its hits, and
// can. With two threads each takes one half of the file: what two cores add to that floor.
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
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr std::size_t kPage = 4096;
// Pages behind the scan are given back this often, so that peak RSS stays near diskfault's
// rather than growing to the file's size (rg keeps its whole mapping).
constexpr std::size_t kRelease = std::size_t{2} << 20;

struct Tally {
  std::uint64_t line_ends = 0;
  std::uint64_t first_bytes = 0;  // the sum of the bytes read
};

// Gives back the pages of [from, to) that lie whole in it.
void release(const char* map, std::size_t from, std::size_t to) {
  from = (from + kPage - 1) & ~(kPage - 1);
  to &= ~(kPage - 1);
  if (to > from) ::madvise(const_cast<char*>(map) + from, to - from, MADV_DONTNEED);
}

#if defined(__x86_64__)
[[gnu::target("avx2")]] void scan_avx2(const char* map, std::size_t begin, std::size_t end,
                                       std::size_t size, Tally* tally) {
  const __m256i newline = _mm256_set1_epi8('\n');
  std::uint64_t ends = 0, firsts = 0;
  std::size_t at = end, released = end;
  // Bytes past the last whole 64 at the part's end one by one; then 64 at a time.
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
    if (released - at >= 2 * kRelease) {
      release(map, at + kRelease, released);
      released = at + kRelease;
    }
  }
  *tally = {ends, firsts};
}
#endif

void scan_portable(const char* map, std::size_t begin, std::size_t end, std::size_t size,
                   Tally* tally) {
  std::uint64_t ends = 0, firsts = 0;
  std::size_t at = end, released = end;
  while (at != begin) {
    const void* hit = ::memrchr(map + begin, '\n', at - begin);
    if (hit == nullptr) break;
    at = static_cast<std::size_t>(static_cast<const char*>(hit) - map);
    ++ends;
    if (at + 1 < size) firsts += static_cast<unsigned char>(map[at + 1]);
    if (released - at >= 2 * kRelease) {
      release(map, at + kRelease, released);
      released = at + kRelease;
    }
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
  const int threads = argc == 3 ? std::atoi(argv[2]) : 1;
  if (threads != 1 && threads != 2) return fail("THREADS is 1 or 2");

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(path + ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    std::printf("0\n");
    return 0;
  }
  void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (mapped == MAP_FAILED) return fail(path + ": " + std::strerror(errno));
  const char* map = static_cast<const char*>(mapped);

  // Two parts meet at a page boundary near the middle; a small file stays in one.
  const std::size_t middle = threads == 2 ? (size / 2) & ~(kPage - 1) : 0;
  std::vector<Tally> tallies(2);
  if (middle == 0) {
    scan(map, 0, size, size, &tallies[0]);
  } else {
    std::thread upper(scan, map, middle, size, size, &tallies[1]);
    scan(map, 0, middle, size, &tallies[0]);
    upper.join();
  }
  const std::uint64_t ends = tallies[0].line_ends + tallies[1].line_ends;
  const std::uint64_t firsts = tallies[0].first_bytes + tallies[1].first_bytes;
  std::printf("%llu line ends (first bytes sum to %llu)\n", static_cast<unsigned long long>(ends),
              static_cast<unsigned long long>(firsts));
  return 0;
}
