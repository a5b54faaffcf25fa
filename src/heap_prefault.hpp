// The heap a run will use, made resident in one step as the process starts.
#pragma once

#include <cstddef>
#include <string_view>

namespace diskfault {

// What prefault_heap() made resident: [begin, end), empty where it made nothing resident.
struct PrefaultedHeap {
  char* begin = nullptr;
  char* end = nullptr;
  bool huge = false;  // one 2 MiB transparent huge page
  std::size_t size() const { return static_cast<std::size_t>(end - begin); }
};

enum class HugePage { kTry, kNever };

// Grows glibc's main heap by about `bytes` and has the kernel back all of it at once
// (MADV_POPULATE_WRITE); from then on the heap keeps that much room at its top (M_TOP_PAD), so
// free() does not hand it back. Why: a run on a small log allocates a few hundred KiB (compiled
// rules, the correlator, the command line) in fresh pages, and the page fault that brought in
// each cost about 10 µs on the paravirtual machine of BENCHMARKS.md; populated in one call, a page
// costs under 1 µs, and its first touch then about 5 µs (the hypervisor's own fault). Call it
// before any other thread starts.
//
// With HugePage::kTry, the heap grows instead into one 2 MiB transparent huge page, where the
// kernel has a free 2 MiB block at hand (so that no compaction can stall the start), and the
// allocations that follow start in it: a page of it costs nothing at first touch, where a small
// page costs those 5 µs, and a run on a small log touches some 150 (BENCHMARKS.md, item 37).
// Where that fails, as above.
//
// Does nothing, and returns an empty range, on a kernel older than 5.14 (no MADV_POPULATE_WRITE)
// or where malloc is not glibc's (a sanitizer's declines mallopt). Where glibc's malloc does not
// grow its heap by brk() (an mmap threshold below 64 KiB), the pad is set and nothing populated.
PrefaultedHeap prefault_heap(std::size_t bytes, HugePage huge = HugePage::kTry) noexcept;

// Makes the whole pages inside [start, start + size) resident in one call, as a first write would
// (MADV_POPULATE_WRITE), without changing a byte: on the paravirtual machine of BENCHMARKS.md a
// page so populated costs under 1 µs, where one that faults in when first written costs about 10.
// False where nothing was made resident (no whole page inside, or a kernel before 5.14).
bool populate_pages(void* start, std::size_t size) noexcept;

// Whether the kernel holds a free block of 2 MiB or more (/proc/buddyinfo) in a zone of this
// thread's node that serves processes first: then a huge page comes from it at once.
bool free_huge_block() noexcept;
// The same, read from the text of /proc/buddyinfo, for `node`.
bool has_free_huge_block(std::string_view buddyinfo, unsigned node) noexcept;

}  // namespace diskfault
