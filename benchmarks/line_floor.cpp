// A floor under any diagnosis that reads every line of a page-cached log: the file's line ends
// found from its end, and the byte after each line end read (where a stamp starts), with nothing
// else done per line. diskfault reads every line's stamp, to find where the clock restarts, so a
// reader like this one bounds it from below; `rg -c XFS` looks for line ends only around its hits,
// and is not bound so. With two threads each takes one half of the file: what a second core could
// add. The file is mapped, and the pages passed given back as diskfault gives them back; or, with
// `copy`, read with pread() in blocks of 1 MiB into each thread's own buffer, as diskfault's second
// thread reads its part (a file under 2 MiB then stays on one thread). On the VM of BENCHMARKS.md
// the two ways differ most in the release: each 2 MiB given back while another thread of the
// process runs costs 50 to 90 µs.
//
// Usage: line_floor FILE [THREADS [copy]]    THREADS is 1 (the default) or 2. Prints the number
// of line ends, and the sum of the bytes read (so that reading them is not optimised away). A
// benchmark, not a tool: a file truncated while it is mapped kills it (SIGBUS).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

constexpr std::size_t kCopyBlock = std::size_t{1} << 20;
// scan()'s Trail then never gives back a page of the block.
static_assert(kCopyBlock + kPage < Trail::kUnit);

// The bytes of the file [begin, end) in blocks read from the end, each scanned as scan() scans
// the mapping. The byte after a block's last line end is the first of the block read before it.
// A short read (a file truncated meanwhile) ends the scan early.
void scan_copy(int fd, std::size_t begin, std::size_t end, std::size_t size, Tally* tally) {
  char* block = static_cast<char*>(std::aligned_alloc(kPage, kCopyBlock + kPage));
  if (block == nullptr) return;
  Tally sum;
  int later_first = -1;  // the first byte of the block after this one; -1 at the file's end
  if (char after; end < size && ::pread(fd, &after, 1, static_cast<off_t>(end)) == 1) {
    later_first = static_cast<unsigned char>(after);
  }
  for (std::size_t at = end; at > begin;) {
    // Each block starts on a page boundary of the file, as diskfault's do, so that the kernel's
    // copy runs page to page (ReverseLineReader::kPage: 4K aliasing otherwise).
    const std::size_t start =
        at - begin > kCopyBlock ? std::max(begin, (at - kCopyBlock) / kPage * kPage) : begin;
    const std::size_t length = at - start;
    at = start;
    if (::pread(fd, block, length, static_cast<off_t>(at)) != static_cast<ssize_t>(length)) break;
    const char last = block[length - 1];
    Tally part;
    // A line end as the block's last byte is counted here, with the byte after it from before.
    const std::size_t searched = last == '\n' ? length - 1 : length;
    scan(block, 0, searched, length, &part);
    if (last == '\n') {
      ++part.line_ends;
      if (later_first >= 0) part.first_bytes += static_cast<unsigned>(later_first);
    }
    sum.line_ends += part.line_ends;
    sum.first_bytes += part.first_bytes;
    later_first = static_cast<unsigned char>(block[0]);
  }
  std::free(block);
  *tally = sum;
}

// `scan_part(begin, end, tally)` over [0, size): the part from `middle` up on a second thread, the
// rest on this one; all on this one where `middle` is 0.
template <class ScanPart>
void in_two_parts(std::size_t middle, std::size_t size, Tally (&tallies)[2], ScanPart scan_part) {
  if (middle == 0) return scan_part(0, size, &tallies[0]);
  std::thread upper(scan_part, middle, size, &tallies[1]);
  scan_part(0, middle, &tallies[0]);
  upper.join();
}

int fail(const std::string& what) {
  std::fprintf(stderr, "line_floor: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) return fail("usage: line_floor FILE [THREADS [copy]]");
  const std::string path = argv[1];
  int threads = 1;
  const bool copy = argc == 4 && std::string_view(argv[3]) == "copy";
  if (argc == 4 && !copy) return fail("the third argument can only be `copy`");
  if (argc >= 3) {
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
  if (copy) {
    // The parts meet at a page boundary; a file under 2 MiB stays in one part.
    const std::size_t middle = threads == 2 ? size / 2 / kCopyBlock * kCopyBlock : 0;
    static_assert(kCopyBlock % kPage == 0);
    in_two_parts(middle, size, tallies, [fd, size](std::size_t begin, std::size_t end, Tally* t) {
      scan_copy(fd, begin, end, size, t);
    });
  } else if (size != 0) {  // mmap() refuses an empty range
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) return fail(path + ": " + std::strerror(errno));
    const char* map = static_cast<const char*>(mapped);
    // The parts meet at a page boundary, so that neither's MADV_DONTNEED reaches the other's
    // pages; a file under two pages stays in one part.
    const std::size_t middle = threads == 2 ? (size / 2) & ~(kPage - 1) : 0;
    in_two_parts(middle, size, tallies, [map, size](std::size_t begin, std::size_t end, Tally* t) {
      scan(map, begin, end, size, t);
    });
  }
  const std::uint64_t ends = tallies[0].line_ends + tallies[1].line_ends;
  const std::uint64_t firsts = tallies[0].first_bytes + tallies[1].first_bytes;
  std::printf("%llu line ends (first bytes sum to %llu)\n", static_cast<unsigned long long>(ends),
              static_cast<unsigned long long>(firsts));
  return 0;
}
