// Tests of reserve_heap(): the heap it grows is resident before anything writes to it.
#include "heap_reserve.hpp"

#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

using namespace diskfault;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizerAllocator = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizerAllocator = true;
#else
constexpr bool kSanitizerAllocator = false;
#endif
#else
constexpr bool kSanitizerAllocator = false;
#endif

// Whether this kernel populates on request (Linux 5.14 on): asked of a mapping of our own.
bool kernel_populates() {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* probe = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) return false;
  const bool populates = ::madvise(probe, page, MADV_POPULATE_WRITE) == 0;
  ::munmap(probe, page);
  return populates;
}

}  // namespace

TEST_CASE("reserve_heap grows the heap and makes every page of the growth resident") {
  const HeapReserve reserve = reserve_heap(std::size_t{512} << 10);
  if (kSanitizerAllocator) {
    // The sanitizer's allocator declines, and nothing is made resident.
    CHECK(reserve.size() == 0);
    return;
  }
  if (!kernel_populates()) {
    MESSAGE("this kernel has no MADV_POPULATE_WRITE (Linux 5.14 on): nothing to check");
    CHECK(reserve.size() == 0);
    return;
  }
  REQUIRE(reserve.size() > 0);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  CHECK(reinterpret_cast<std::uintptr_t>(reserve.begin) % page == 0);
  CHECK(reserve.size() % page == 0);
  // The range is heap the process still holds: the pad keeps free() from trimming it away.
  CHECK(reserve.end <= static_cast<char*>(::sbrk(0)));
  // Freshly grown heap that nothing wrote to yet: without the populating call, most of these
  // pages would not be resident (only the few malloc wrote its chunk headers to).
  std::vector<unsigned char> resident(reserve.size() / page);
  REQUIRE(::mincore(reserve.begin, reserve.size(), resident.data()) == 0);
  std::size_t missing = 0;
  for (unsigned char r : resident) missing += (r & 1) == 0 ? 1 : 0;
  CHECK(missing == 0);
}

TEST_CASE("reserve_heap of nothing, or of more than mallopt takes, does nothing") {
  CHECK(reserve_heap(0).size() == 0);
  CHECK(reserve_heap(std::size_t{1} << 40).size() == 0);
}
