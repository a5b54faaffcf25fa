// Prefaulting glibc's main heap: see heap_reserve.hpp for why.
#include "heap_reserve.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace diskfault {

HeapReserve reserve_heap(std::size_t bytes) noexcept {
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33) && defined(MADV_POPULATE_WRITE)
  if (bytes == 0 || bytes > INT_MAX) return {};
  // A sanitizer's allocator answers 0 here, and its heap is not the brk() one measured below.
  if (::mallopt(M_TOP_PAD, static_cast<int>(bytes)) != 1) return {};
  char* const before = static_cast<char*>(::sbrk(0));
  if (before == reinterpret_cast<char*>(-1)) return {};
  // Allocations below glibc's mmap threshold (128 KiB) are taken from freed chunks, else from
  // the heap's top; once they outgrow both, the heap grows, by the pad as well. As the process
  // starts, the first or second does.
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
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto first = (reinterpret_cast<std::uintptr_t>(before) + page - 1) & ~(page - 1);
  const auto last = reinterpret_cast<std::uintptr_t>(after) & ~(page - 1);
  if (last <= first) return {};
  char* const begin = reinterpret_cast<char*>(first);
  if (::madvise(begin, last - first, MADV_POPULATE_WRITE) != 0) return {};
  return {begin, reinterpret_cast<char*>(last)};
#else
  (void)bytes;
  return {};
#endif
}

}  // namespace diskfault
