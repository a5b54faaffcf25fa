// Prefaulting glibc's main heap: see heap_prefault.hpp for why.
#include "heap_prefault.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#if defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 33) && defined(MADV_POPULATE_WRITE)
#define DISKFAULT_HEAP_PREFAULT 1  // mallinfo2() and the advice are both there
#endif
#endif

namespace diskfault {

PrefaultedHeap prefault_heap(std::size_t bytes) noexcept {
#if DISKFAULT_HEAP_PREFAULT
  if (bytes == 0 || bytes > INT_MAX) return {};
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  char* const before = static_cast<char*>(::sbrk(0));
  if (before == reinterpret_cast<char*>(-1)) return {};
  // Asked before mallopt, so that an older kernel is left with glibc's settings untouched: it
  // checks the advice before the length, and rejects one it does not know.
  const auto aligned = reinterpret_cast<std::uintptr_t>(before) & ~(page - 1);
  if (::madvise(reinterpret_cast<void*>(aligned), 0, MADV_POPULATE_WRITE) != 0) return {};
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
  if (::madvise(begin, last - first, MADV_POPULATE_WRITE) != 0) return {};
  return {begin, reinterpret_cast<char*>(last)};
#else
  (void)bytes;
  return {};
#endif
}

}  // namespace diskfault
