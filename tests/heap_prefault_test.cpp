// Tests of prefault_heap(): the heap it grows is resident before anything writes to it, and stays.
#include "heap_prefault.hpp"

#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace diskfault;

namespace {

// Whether malloc is glibc's, taking an allocation below its mmap threshold from the brk() heap:
// not under a sanitizer or valgrind, whose allocators keep their heaps elsewhere.
bool malloc_takes_brk_heap() {
  void* volatile probe = std::malloc(64 * 1024);
  const bool below = probe != nullptr && static_cast<char*>(probe) < static_cast<char*>(::sbrk(0));
  std::free(probe);
  return below;
}

// Whether this kernel populates on request (Linux 5.14 on): asked of a mapping of our own.
bool kernel_populates() {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* probe = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) return false;
  const bool populates = ::madvise(probe, page, MADV_POPULATE_WRITE) == 0;
  ::munmap(probe, page);
  return populates;
}

// The mode chosen in a sysfs file of transparent huge pages ("always [madvise] never"), or "".
std::string thp_mode(const std::string& path) {
  std::ifstream in(path);
  std::string modes;
  std::getline(in, modes);
  const auto open = modes.find('['), close = modes.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return modes.substr(open + 1, close - open - 1);
}

// Whether the kernel gives this process 2 MiB pages in a range advised so.
bool transparent_huge_pages() {
  if (::prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1) return false;
  const std::string dir = "/sys/kernel/mm/transparent_hugepage/";
  // Linux 6.8 on sets each size apart; "inherit" takes the general setting.
  std::string mode = thp_mode(dir + "hugepages-2048kB/enabled");
  if (mode.empty() || mode == "inherit") mode = thp_mode(dir + "enabled");
  return mode == "always" || mode == "madvise";
}

// This process's anonymous memory in huge pages, in KiB.
long anon_huge_kib() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
  }
  return 0;
}

}  // namespace

TEST_CASE("prefault_heap grows the heap, makes every page of the growth resident, and keeps it") {
  const bool brk_heap = malloc_takes_brk_heap();
  const std::size_t bytes = std::size_t{512} << 10;
  const PrefaultedHeap heap = prefault_heap(bytes, HugePage::kNever);
  if (!brk_heap) {
    CHECK(heap.size() == 0);  // another allocator: nothing of glibc's heap to populate
    return;
  }
  if (!kernel_populates()) {
    MESSAGE("this kernel has no MADV_POPULATE_WRITE (Linux 5.14 on): nothing to check");
    CHECK(heap.size() == 0);
    return;
  }
  REQUIRE(heap.size() > 0);
  CHECK_FALSE(heap.huge);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  CHECK(reinterpret_cast<std::uintptr_t>(heap.begin) % page == 0);
  CHECK(heap.size() % page == 0);
  // Freshly grown heap that nothing wrote to yet: without the populating call, most of these
  // pages would not be resident (only the few malloc wrote its chunk headers to).
  std::vector<unsigned char> resident(heap.size() / page);
  REQUIRE(::mincore(heap.begin, heap.size(), resident.data()) == 0);
  std::size_t missing = 0;
  for (unsigned char r : resident) missing += (r & 1) == 0 ? 1 : 0;
  CHECK(missing == 0);
  // Memory taken from the top and freed again: free() trims the heap back to the pad, which keeps
  // the range and most of `bytes` above its start (glibc's own pad is 128 KiB).
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) {
    void* block = std::malloc(64 * 1024);
    REQUIRE(block != nullptr);
    std::memset(block, 1, 64 * 1024);
    blocks.push_back(block);
  }
  for (void* block : blocks) std::free(block);
  char* const top = static_cast<char*>(::sbrk(0));
  CHECK(heap.end <= top);
  CHECK(top - heap.begin >= static_cast<std::ptrdiff_t>(bytes / 3));
}

// Grows the heap and frees it again, leaving a top of about `pad` bytes that nothing wrote to.
void leave_top_of(int pad) {
  REQUIRE(::mallopt(M_TOP_PAD, pad) == 1);
  REQUIRE(::mallopt(M_MMAP_MAX, 0) == 1);
  void* volatile grown = std::malloc(::mallinfo2().keepcost + (4 << 20));  // volatile: kept
  std::free(grown);
  REQUIRE(::mallopt(M_MMAP_MAX, 65536) == 1);
}

// prefault_heap with a huge page wherever one could be had: checks where it put it.
void check_huge_page(const char* setting) {
  INFO(std::string(setting));
  const bool thp = transparent_huge_pages();
  const PrefaultedHeap heap = prefault_heap(std::size_t{512} << 10);
  // Read before anything allocates again.
  char* const top = static_cast<char*>(::sbrk(0)) - ::mallinfo2().keepcost;
  if (!thp) {
    MESSAGE("transparent huge pages are off for this process: nothing to check here");
    return;
  }
  // The call reads the free blocks itself; asked here after it, a "no" means none was there
  // for it either, give or take a race, and the heap is in small pages.
  if (!heap.huge && !free_huge_block()) {
    MESSAGE("no free 2 MiB block on this node: nothing to check here");
    return;
  }
  REQUIRE(heap.huge);
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  CHECK(reinterpret_cast<std::uintptr_t>(heap.begin) % kHuge == 0);
  CHECK(heap.size() == kHuge);
  CHECK(anon_huge_kib() >= 2048);
  // What malloc takes from its top next starts in the huge page: the top's header lies just
  // below it.
  CHECK(top + 2 * sizeof(std::size_t) == heap.begin);
  CHECK(static_cast<char*>(::sbrk(0)) >= heap.end);
}

TEST_CASE("prefault_heap moves the heap's top into a huge page where the kernel has one free") {
  if (!malloc_takes_brk_heap() || !kernel_populates()) {
    CHECK(prefault_heap(std::size_t{512} << 10).size() == 0);
    return;
  }
  // A top of nearly 2 MiB spans a 2 MiB boundary wherever it starts, but reaches no whole huge
  // page past it, as at a start where the heap begins just below a boundary: the spacer must make
  // malloc grow the heap, or the huge page would lie past its end.
  leave_top_of((2 << 20) - (16 << 10));
  REQUIRE(::mallinfo2().keepcost > (std::size_t{1} << 20));
  REQUIRE(::mallinfo2().keepcost < (std::size_t{2} << 20));
  check_huge_page("a top that reaches no whole huge page past a boundary");
  // A top of 6 MiB holds a whole huge page past its first boundary: the spacer is cut from it,
  // unless the earlier tests left pages of that range in use.
  leave_top_of(6 << 20);
  REQUIRE(::mallinfo2().keepcost > (std::size_t{4} << 20) + 64);
  check_huge_page("a top that holds a whole huge page");
}

TEST_CASE("a free block of 2 MiB or more is read from /proc/buddyinfo") {
  // Orders 0 to 10: the tenth and eleventh counts are blocks of 2 and 4 MiB.
  CHECK(has_free_huge_block("Node 0, zone   Normal  1 1 1 1 1 1 1 1 1 2 0\n", 0));
  CHECK(has_free_huge_block("Node 1, zone  Movable  0 0 0 0 0 0 0 0 0 0 3\n", 1));
  // DMA's blocks are for devices, DMA32's may sit behind its reserve; smaller blocks are no huge
  // page, and another node's do not serve this one.
  CHECK_FALSE(has_free_huge_block(
      "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1"
      "      3 \n"
      "Node 0, zone    DMA32      4      2      1      0      1      2      3      1      2      0"
      "      1 \n"
      "Node 0, zone   Normal   3000   900   40   12   5   3   1   1   1   0   0\n"
      "Node 1, zone   Normal   3000   900   40   12   5   3   1   1   1   7   9\n",
      0));
  CHECK_FALSE(has_free_huge_block("Node 10, zone   Normal  1 1 1 1 1 1 1 1 1 2 0\n", 1));
  CHECK_FALSE(has_free_huge_block("", 0));
  CHECK_FALSE(has_free_huge_block("Node 0, zone Normal x 1 1 1 1 1 1 1 1 1 1\n", 0));
}

TEST_CASE("prefault_heap of nothing, or of more than mallopt takes, does nothing") {
  CHECK(prefault_heap(0).size() == 0);
  CHECK(prefault_heap(std::size_t{1} << 40).size() == 0);
}

TEST_CASE("populate_pages makes the whole pages inside a range resident, and changes no byte") {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  auto* bytes = static_cast<unsigned char*>(map);
  bytes[page - 1] = 0x5a;  // the one page written before: its byte stays
  // A range that starts in the first page and ends in the last: the two pages between are whole.
  const bool populated = populate_pages(bytes + page - 1, 2 * page + 2);
  std::vector<unsigned char> resident(4);
  REQUIRE(::mincore(map, 4 * page, resident.data()) == 0);
  if (!kernel_populates()) {
    MESSAGE("this kernel has no MADV_POPULATE_WRITE (Linux 5.14 on): nothing to check");
    CHECK_FALSE(populated);
  } else {
    CHECK(populated);
    CHECK((resident[1] & 1) == 1);
    CHECK((resident[2] & 1) == 1);
    CHECK((resident[3] & 1) == 0);  // only partly inside the range
  }
  CHECK(bytes[page - 1] == 0x5a);
  CHECK(bytes[page] == 0);
  CHECK_FALSE(populate_pages(bytes + 1, page));  // no whole page inside
  ::munmap(map, 4 * page);
}
