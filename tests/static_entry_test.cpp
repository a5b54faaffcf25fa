// Tests of diskfault_populate_writable_segments(): after it, the pages of this binary's writable
// segments are in place and private, written to or not.
#include "static_entry.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 16;

// Never read or written by the tests, only looked up: .bss (zero pages the kernel makes at a
// fault) and .data (pages of the binary's file, copied at the first write).
alignas(kPage) char untouched_bss[kPages * kPage];
alignas(kPage) char untouched_data[kPages * kPage] = {1};

struct PageState {
  bool present = false;
  bool file = false;  // mapped from a file (or shared): not yet this process's own copy
};

// What /proc/self/pagemap says of the page at `address` (its flags need no privilege).
PageState page_state(const void* address) {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  std::uint64_t entry = 0;
  const auto offset = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(address) / kPage * 8);
  const ssize_t got = ::pread(fd, &entry, sizeof entry, offset);
  ::close(fd);
  REQUIRE(got == static_cast<ssize_t>(sizeof entry));
  return {((entry >> 63) & 1) != 0, ((entry >> 61) & 1) != 0};
}

// How many pages of [begin, begin + kPages pages) are present and this process's own.
std::size_t own_pages(const char* begin) {
  std::size_t own = 0;
  for (std::size_t i = 0; i < kPages; ++i) {
    const PageState state = page_state(begin + i * kPage);
    own += state.present && !state.file;
  }
  return own;
}

// This binary's RELRO range (page-rounded), made read-only by the dynamic loader after relocating
// it; empty where there is none.
struct Range {
  std::uintptr_t begin = 0, end = 0;
};
Range relro_range() {
  Range range;
  // The first object the loader reports is the program itself.
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& segment = info->dlpi_phdr[i];
          if (segment.p_type != PT_GNU_RELRO) continue;
          auto& found = *static_cast<Range*>(out);
          found.begin = (info->dlpi_addr + segment.p_vaddr) & ~(kPage - 1);
          found.end = (info->dlpi_addr + segment.p_vaddr + segment.p_memsz) & ~(kPage - 1);
        }
        return 1;
      },
      &range);
  return range;
}

}  // namespace

TEST_CASE("the writable segments' pages are made resident and private in place") {
  const std::size_t bss_before = own_pages(untouched_bss);
  const std::size_t data_before = own_pages(untouched_data);
  // The entry point runs before anything is read-only; a dynamically linked test binary's loader
  // has made RELRO so by now, where populating for writing fails. Writable again for the call.
  const Range relro = relro_range();
  const std::size_t relro_length = relro.end - relro.begin;
  void* relro_begin = reinterpret_cast<void*>(relro.begin);
  if (relro_length != 0)
    REQUIRE(::mprotect(relro_begin, relro_length, PROT_READ | PROT_WRITE) == 0);
  const int status = diskfault_populate_writable_segments();
  if (relro_length != 0) REQUIRE(::mprotect(relro_begin, relro_length, PROT_READ) == 0);
  if (status == -ENOSYS) {
    MESSAGE("the early entry point is x86-64 only: nothing to check");
    return;
  }
  if (status == -EINVAL) {
    MESSAGE("this kernel has no MADV_POPULATE_WRITE (Linux 5.14 on): nothing to check");
    return;
  }
  REQUIRE(status == 0);
  // Before, the untouched pages were absent (or, for .data, the file's): had they been this
  // process's own already, the call could not be told from its absence.
  CHECK(bss_before < kPages);
  CHECK(data_before < kPages);
  CHECK(own_pages(untouched_bss) == kPages);
  CHECK(own_pages(untouched_data) == kPages);
  // Nothing was written: populating keeps what the pages held.
  CHECK(untouched_data[0] == 1);
  CHECK(untouched_bss[kPages * kPage - 1] == 0);
}
