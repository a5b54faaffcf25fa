// Prefaulting glibc's main heap: see heap_prefault.hpp for why.
#include "heap_prefault.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "file_descriptor.hpp"

#if defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 33) && defined(MADV_POPULATE_WRITE)
#define DISKFAULT_HEAP_PREFAULT 1  // mallinfo2() and the advice are both there
#endif
#endif

namespace diskfault {

namespace {

constexpr std::size_t kHugeOrder = 9;  // 2 MiB = 2^9 small pages, as /proc/buddyinfo counts

#if DISKFAULT_HEAP_PREFAULT

constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kSmallPage = 4096;
// glibc's own M_MMAP_MAX, which the spacer below sets to 0 for a moment.
constexpr int kGlibcMmapMax = 65536;
// A free chunk's header as glibc writes it: the previous chunk's size, then its own.
constexpr std::uintptr_t kTopHeader = 2 * sizeof(std::size_t);
constexpr std::uintptr_t kMinChunk = 32;  // glibc's smallest chunk on a 64-bit machine

// The heap grown by about `bytes` beyond its break, all of it made resident.
PrefaultedHeap in_small_pages(std::size_t bytes, std::uintptr_t page) {
  char* const before = static_cast<char*>(::sbrk(0));
  if (before == reinterpret_cast<char*>(-1)) return {};
  // A sanitizer's allocator answers 0 here, and its heap is not the brk() one measured below.
  if (::mallopt(M_TOP_PAD, static_cast<int>(bytes)) != 1) return {};
  // Allocations below glibc's mmap threshold (128 KiB) come from free chunks, then from the
  // heap's top. Free chunks hold fewer than fordblks / kProbe of them, so one more than that
  // must take the top, and the top is counted in fordblks too: by then the heap has grown, by
  // the pad as well. As the process starts, the first or second probe grows it.
  constexpr std::size_t kProbe = 64 * 1024;
  std::vector<void*> probes;
  try {
    probes.reserve(::mallinfo2().fordblks / kProbe + 2);
  } catch (const std::bad_alloc&) {
    return {};
  }
  while (probes.size() < probes.capacity() && static_cast<char*>(::sbrk(0)) == before) {
    void* probe = std::malloc(kProbe);
    if (probe == nullptr) break;
    probes.push_back(probe);
  }
  for (void* probe : probes) std::free(probe);
  // After free(), which trims the top down to the pad, not below it.
  char* const after = static_cast<char*>(::sbrk(0));
  const auto first = (reinterpret_cast<std::uintptr_t>(before) + page - 1) & ~(page - 1);
  const auto last = reinterpret_cast<std::uintptr_t>(after) & ~(page - 1);
  if (last <= first) return {};
  char* const begin = reinterpret_cast<char*>(first);
  if (!populate_pages(begin, last - first)) return {};
  return {begin, reinterpret_cast<char*>(last)};
}

// How many small pages of the huge page at `begin` are resident; nullopt where mincore() fails.
std::optional<std::size_t> resident_pages(char* begin) {
  std::array<unsigned char, kHugePage / kSmallPage> resident{};
  if (::mincore(begin, kHugePage, resident.data()) != 0) return std::nullopt;
  return static_cast<std::size_t>(std::count_if(resident.begin(), resident.end(),
                                                [](unsigned char r) { return (r & 1) != 0; }));
}

// Where the next allocation that no free chunk fits is taken: glibc's top chunk, which ends at
// the break and whose size mallinfo2() reports as keepcost.
char* top_chunk() { return static_cast<char*>(::sbrk(0)) - ::mallinfo2().keepcost; }

// The heap's top moved to a 2 MiB boundary and backed there by one huge page; with none, the top
// is still moved, and `bytes` of it made resident in small pages.
PrefaultedHeap in_huge_page(std::size_t bytes, std::uintptr_t page) {
  if (!free_huge_block()) return {};
  const auto end = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  const auto top = reinterpret_cast<std::uintptr_t>(top_chunk());
  auto boundary_after = [](std::uintptr_t at) { return (at + kHugePage - 1) & ~(kHugePage - 1); };
  // The huge page goes at the first boundary above the top where a spacer fits below it. Where
  // the top does not reach a whole huge page past that boundary, or a page of that range is in use
  // already (a top that grew and shrank before: its small pages would keep a huge page out), it
  // goes at the first boundary past the break instead: a spacer that reaches there cannot be cut
  // from the top as it is, so malloc grows the heap for it, by the pad below as well.
  std::uintptr_t boundary = boundary_after(top + kTopHeader + kMinChunk);
  if (boundary + kHugePage > end || resident_pages(reinterpret_cast<char*>(boundary)) != 0) {
    boundary = boundary_after(end + kTopHeader);
  }
  // The spacer fills the top up to just below the boundary, so that what is allocated next
  // starts there. The top's header, which malloc writes at once, then lies below the boundary: a
  // page written above it before the advice would be a small page, and would keep the huge one
  // out. The spacer stays allocated and nothing writes to it but malloc's header, so it costs
  // address space, not memory. Its size as a request: a chunk is the request and an 8-byte size
  // field, rounded up to 16 bytes, and the chunk here is a multiple of 16 already.
  const std::uintptr_t new_top = boundary - kTopHeader;
  const std::size_t request = new_top - top - sizeof(std::size_t);
  // The pad makes the heap grow past the boundary by the huge page, and keeps it so through
  // free()'s trimming. No mmap() for a moment, so that malloc serves the spacer from the heap
  // however large it is (at most about 6 MiB); the count, unlike the size threshold, is one users
  // hardly ever set.
  if (::mallopt(M_TOP_PAD, static_cast<int>(std::max(kHugePage, bytes))) != 1) return {};
  if (::mallopt(M_MMAP_MAX, 0) != 1) return {};
  // volatile: an allocation that nothing reads can be left out altogether (clang does so), and
  // the heap would not move.
  void* const volatile spacer = std::malloc(request);
  ::mallopt(M_MMAP_MAX, kGlibcMmapMax);
  char* const begin = reinterpret_cast<char*>(boundary);
  if (spacer == nullptr) return {};
  if (top_chunk() != reinterpret_cast<char*>(new_top) ||
      static_cast<char*>(::sbrk(0)) < begin + kHugePage) {
    std::free(spacer);  // laid out otherwise than above: back into the top, and small pages
    return {};
  }
  // No page of the range is in use (the boundary was chosen so), so the first page's fault
  // brings in the whole huge page, if the kernel gives one, and mincore() then finds every page
  // of the range resident.
  const bool huge = ::madvise(begin, kHugePage, MADV_HUGEPAGE) == 0 &&
                    ::madvise(begin, page, MADV_POPULATE_WRITE) == 0 &&
                    resident_pages(begin) == kHugePage / kSmallPage;
  if (huge) return {begin, begin + kHugePage, true};
  const std::size_t small = std::min(kHugePage, (bytes + page - 1) & ~(page - 1));
  if (::madvise(begin, small, MADV_POPULATE_WRITE) != 0) return {};
  return {begin, begin + small};
}

#endif

}  // namespace

bool free_huge_block() noexcept {
  unsigned cpu = 0, node = 0;
  if (::getcpu(&cpu, &node) != 0) return false;
  FileDescriptor fd(::open("/proc/buddyinfo", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  // Cut short on a machine with very many nodes, it may leave this one out: then no huge page.
  std::array<char, 16384> buffer;
  std::size_t size = 0;
  while (size < buffer.size()) {
    const ssize_t got = ::read(fd.get(), buffer.data() + size, buffer.size() - size);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    size += static_cast<std::size_t>(got);
  }
  return has_free_huge_block(std::string_view(buffer.data(), size), node);
}

bool has_free_huge_block(std::string_view text, unsigned node) noexcept {
  // "Node 0, zone   Normal   5   3 ...": free blocks of each order, from one page up. The kernel
  // takes a process's huge page from its own node only, and from the zones above DMA32 before
  // those: DMA32's free blocks may sit behind the reserve kept for it, DMA's are for devices.
  const std::string prefix = "Node " + std::to_string(node) + ",";
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (!line.starts_with(prefix)) continue;
    const std::size_t zone = line.find("zone");
    if (zone == std::string_view::npos) continue;
    line.remove_prefix(zone + 4);
    line.remove_prefix(std::min(line.find_first_not_of(' '), line.size()));
    const std::size_t name_end = std::min(line.find(' '), line.size());
    const std::string_view name = line.substr(0, name_end);
    const bool for_processes = name == "Normal" || name == "Movable";
    line.remove_prefix(name_end);
    for (std::size_t order = 0; !line.empty(); ++order) {
      line.remove_prefix(std::min(line.find_first_not_of(' '), line.size()));
      if (line.empty()) break;
      unsigned long count = 0;
      const auto [rest, error] = std::from_chars(line.data(), line.data() + line.size(), count);
      if (error != std::errc()) break;
      line.remove_prefix(static_cast<std::size_t>(rest - line.data()));
      if (for_processes && order >= kHugeOrder && count > 0) return true;
    }
  }
  return false;
}

bool populate_pages(void* start, std::size_t size) noexcept {
#ifdef MADV_POPULATE_WRITE
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = (reinterpret_cast<std::uintptr_t>(start) + page - 1) & ~(page - 1);
  const auto last = (reinterpret_cast<std::uintptr_t>(start) + size) & ~(page - 1);
  return first < last &&
         ::madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE) == 0;
#else
  (void)start;
  (void)size;
  return false;
#endif
}

PrefaultedHeap prefault_heap(std::size_t bytes, HugePage huge) noexcept {
#if DISKFAULT_HEAP_PREFAULT
  if (bytes == 0 || bytes > INT_MAX) return {};
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  char* const before = static_cast<char*>(::sbrk(0));
  if (before == reinterpret_cast<char*>(-1)) return {};
  // Asked before mallopt, so that an older kernel is left with glibc's settings untouched: it
  // checks the advice before the length, and rejects one it does not know.
  const auto aligned = reinterpret_cast<std::uintptr_t>(before) & ~(page - 1);
  if (::madvise(reinterpret_cast<void*>(aligned), 0, MADV_POPULATE_WRITE) != 0) return {};
  if (huge == HugePage::kTry && page == kSmallPage) {
    if (PrefaultedHeap heap = in_huge_page(bytes, page); heap.size() > 0) return heap;
  }
  return in_small_pages(bytes, page);
#else
  (void)bytes;
  (void)huge;
  return {};
#endif
}

}  // namespace diskfault
