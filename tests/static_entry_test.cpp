// Tests of the static binary's entry point: the writable segments' pages are resident and
// private after it, written to or not, and the binary starts there.
#include "static_entry.hpp"

#include <doctest/doctest.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "file_descriptor.hpp"
#include "test_support.hpp"

using namespace diskfault;

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 16;

// Never read or written by the tests, only looked up: .bss (zero pages the kernel makes at a
// fault) and .data (pages of the binary's file, copied at the first write).
alignas(kPage) char untouched_bss[kPages * kPage];
alignas(kPage) char untouched_data[kPages * kPage] = {1};

// Whether /proc/self/pagemap can be read here (a sandbox may not have it).
bool pagemap_readable() {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// How many of the `pages` pages from `begin` are present and this process's alone: written to,
// or populated for writing. Not a page of a file (bit 61), nor the zero page a read maps (not
// exclusive, bit 56). These flags of /proc/self/pagemap need no privilege.
std::size_t own_pages(const char* begin, std::size_t pages) {
  FileDescriptor fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  std::vector<std::uint64_t> entries(pages);
  const auto offset = static_cast<off_t>(reinterpret_cast<std::uintptr_t>(begin) / kPage * 8);
  pread_exact(fd.get(), reinterpret_cast<char*>(entries.data()), pages * 8, offset,
              "/proc/self/pagemap");
  return static_cast<std::size_t>(std::count_if(entries.begin(), entries.end(), [](auto entry) {
    const auto bit = [&](int n) { return ((entry >> n) & 1) != 0; };
    return bit(63) && bit(56) && !bit(61);
  }));
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

bool skipped(int status) {
  if (status == -ENOSYS) {
    MESSAGE("the early entry point is x86-64 only: nothing to check");
    return true;
  }
  if (status == -EINVAL) {
    MESSAGE("this kernel has no MADV_POPULATE_WRITE (Linux 5.14 on): nothing to check");
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("an image's writable segments, and only those, are made resident and private") {
  if (!pagemap_readable()) {
    MESSAGE("no /proc/self/pagemap here: nothing to check");
    return;
  }
  // An image of 40 pages laid out as a loader would map it, with addresses as a linker names them
  // (from 0x400000): the header and program headers in its first page, a read-only segment, then
  // two writable ones, the second ending inside a page and so rounded up, as diskfault's lld
  // build has (RELRO, then .data and .bss).
  constexpr std::size_t kImagePages = 40;
  void* mapped = ::mmap(nullptr, kImagePages * kPage, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mapped != MAP_FAILED);
  char* image = static_cast<char*>(mapped);
  constexpr ElfW(Addr) kLinked = 0x400000;
  auto* header = reinterpret_cast<ElfW(Ehdr)*>(image);
  header->e_phoff = sizeof(ElfW(Ehdr));
  auto* segments = reinterpret_cast<ElfW(Phdr)*>(image + header->e_phoff);
  const ElfW(Phdr) table[] = {
      {PT_PHDR, PF_R, header->e_phoff, kLinked + header->e_phoff, 0, 0, 0, 8},
      {PT_LOAD, PF_R, 0, kLinked, 0, kPage, kPage, kPage},
      {PT_LOAD, PF_R | PF_X, 8 * kPage, kLinked + 8 * kPage, 0, 4 * kPage, 4 * kPage, kPage},
      {PT_LOAD, PF_R | PF_W, 16 * kPage, kLinked + 16 * kPage, 0, 3 * kPage, 3 * kPage, kPage},
      {PT_LOAD, PF_R | PF_W, 24 * kPage, kLinked + 24 * kPage + 8, 0, kPage, 5 * kPage, kPage},
  };
  std::memcpy(segments, table, sizeof table);
  header->e_phnum = std::size(table);
  const int status = populate_writable_segments(image);
  if (!skipped(status)) {
    CHECK(status == 0);
    CHECK(own_pages(image + 8 * kPage, 4) == 0);   // read-only: left alone
    CHECK(own_pages(image + 12 * kPage, 4) == 0);  // between segments
    CHECK(own_pages(image + 16 * kPage, 3) == 3);
    CHECK(own_pages(image + 19 * kPage, 5) == 0);
    CHECK(own_pages(image + 24 * kPage, 6) == 6);  // from its page start to its rounded end
    CHECK(own_pages(image + 30 * kPage, 10) == 0);
    // Without a PT_PHDR entry (GNU ld's static PIE), the segment at file offset 0 places it.
    segments[0].p_type = PT_NULL;
    CHECK(populate_writable_segments(image) == 0);
    segments[1].p_offset = kPage;
    CHECK(populate_writable_segments(image) == -ENOEXEC);
  }
  ::munmap(mapped, kImagePages * kPage);
}

TEST_CASE("this binary's writable segments are made resident and private in place") {
  if (!pagemap_readable()) {
    MESSAGE("no /proc/self/pagemap here: nothing to check");
    return;
  }
  const std::size_t bss_before = own_pages(untouched_bss, kPages);
  const std::size_t data_before = own_pages(untouched_data, kPages);
  // The entry point runs before anything is read-only; a dynamically linked test binary's loader
  // has made RELRO so by now, where populating for writing fails. Writable again for the call.
  const Range relro = relro_range();
  const std::size_t relro_length = relro.end - relro.begin;
  void* relro_begin = reinterpret_cast<void*>(relro.begin);
  if (relro_length != 0)
    REQUIRE(::mprotect(relro_begin, relro_length, PROT_READ | PROT_WRITE) == 0);
  const int status = diskfault_populate_writable_segments();
  if (relro_length != 0) REQUIRE(::mprotect(relro_begin, relro_length, PROT_READ) == 0);
  if (skipped(status)) return;
  REQUIRE(status == 0);
  // Before, the untouched pages were absent (or, for .data, the file's): had they been this
  // process's own already, the call could not be told from its absence.
  CHECK(bss_before < kPages);
  CHECK(data_before < kPages);
  CHECK(own_pages(untouched_bss, kPages) == kPages);
  CHECK(own_pages(untouched_data, kPages) == kPages);
  // Nothing was written: populating keeps what the pages held.
  CHECK(untouched_data[0] == 1);
  CHECK(untouched_bss[kPages * kPage - 1] == 0);
}

#if DISKFAULT_STATIC_ENTRY
TEST_CASE("the static binary starts at its own entry point") {
  // The ELF header's entry against the symbol: a link that dropped the entry point's object (as
  // GCC's link-time optimisation did) starts at some other function.
  std::ifstream in(DISKFAULT_BINARY, std::ios::binary);
  REQUIRE(in);
  ElfW(Ehdr) header;
  REQUIRE(in.read(reinterpret_cast<char*>(&header), sizeof header));
  const auto addresses = test::function_addresses(DISKFAULT_BINARY);
  const auto entry = addresses.find("diskfault_entry");
  REQUIRE(entry != addresses.end());
  CHECK(header.e_entry == entry->second);
}
#endif
