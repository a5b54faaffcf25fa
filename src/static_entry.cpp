// The static binary's entry point: its writable pages made resident before glibc relocates them.
#include "static_entry.hpp"

#include <cerrno>

#if defined(__x86_64__)

#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstdint>

// GNU ld and lld define it where the ELF header lies in a loaded segment, as it does in every
// executable: its program headers say where the writable segments are. Hidden, it is reached
// relative to the instruction pointer, so reading it needs no relocation.
extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

// No canary in what the entry point runs, at any optimisation: the stack protector reads it from
// TLS, which is not set up yet.
#define DISKFAULT_BEFORE_TLS __attribute__((no_stack_protector))

namespace diskfault {
namespace {

#ifndef MADV_POPULATE_WRITE
constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older C libraries lack the name
#endif

constexpr std::uintptr_t kPage = 4096;

// madvise() without the C library: before TLS is set up, glibc's wrapper could not set errno.
DISKFAULT_BEFORE_TLS __attribute__((always_inline)) inline long raw_madvise(std::uintptr_t start,
                                                                            std::uintptr_t length,
                                                                            int advice) noexcept {
  long result;
  asm volatile("syscall"
               : "=a"(result)
               : "0"(long{SYS_madvise}), "D"(start), "S"(length), "d"(long{advice})
               : "rcx", "r11", "memory");
  return result;
}

}  // namespace

DISKFAULT_BEFORE_TLS int populate_writable_segments(const void* header) noexcept {
  const auto* elf = static_cast<const ElfW(Ehdr)*>(header);
  const auto at = reinterpret_cast<std::uintptr_t>(header);
  const auto* segments = reinterpret_cast<const ElfW(Phdr)*>(at + elf->e_phoff);
  const unsigned count = elf->e_phnum;
  // Where the image was loaded, against the addresses its program headers name: from the
  // headers' own entry (PT_PHDR; GNU ld's static PIE has none), or else from the segment that
  // holds the ELF header.
  std::uintptr_t bias = 0;
  bool placed = false;
  for (unsigned i = 0; i < count && !placed; ++i) {
    if (segments[i].p_type == PT_PHDR) {
      bias = reinterpret_cast<std::uintptr_t>(segments) - segments[i].p_vaddr;
      placed = true;
    }
  }
  for (unsigned i = 0; i < count && !placed; ++i) {
    if (segments[i].p_type == PT_LOAD && segments[i].p_offset == 0) {
      bias = at - segments[i].p_vaddr;
      placed = true;
    }
  }
  if (!placed) return -ENOEXEC;
  int result = 0;
  for (unsigned i = 0; i < count; ++i) {
    const ElfW(Phdr)& segment = segments[i];
    if (segment.p_type != PT_LOAD || (segment.p_flags & PF_W) == 0) continue;
    const std::uintptr_t start = (bias + segment.p_vaddr) & ~(kPage - 1);
    const std::uintptr_t end =
        (bias + segment.p_vaddr + segment.p_memsz + kPage - 1) & ~(kPage - 1);
    const long status = raw_madvise(start, end - start, MADV_POPULATE_WRITE);
    if (status != 0 && result == 0) result = static_cast<int>(status);
  }
  return result;
}

}  // namespace diskfault

extern "C" DISKFAULT_BEFORE_TLS int diskfault_populate_writable_segments() noexcept {
  return diskfault::populate_writable_segments(&__ehdr_start);
}

// The kernel enters here with the stack as _start expects it and %rdx as its argument (a
// function for atexit, null for a static binary): %r12 keeps %rdx across the call, the call
// keeps the stack's 16-byte alignment, and glibc's _start then finds both untouched. The frame
// has no caller (.cfi_undefined rip), as glibc's _start says of its own. In a section of its own,
// for src/hot_functions.txt to place.
asm(R"(
  .pushsection .text.diskfault_entry, "ax", @progbits
  .globl diskfault_entry
  .type diskfault_entry, @function
  .p2align 4
diskfault_entry:
  .cfi_startproc
  .cfi_undefined rip
  mov %rdx, %r12
  call diskfault_populate_writable_segments
  mov %r12, %rdx
  jmp _start
  .cfi_endproc
  .size diskfault_entry, . - diskfault_entry
  .popsection
)");

#else

// The entry point is x86-64 assembly; elsewhere the static binary starts at glibc's _start.
extern "C" int diskfault_populate_writable_segments() noexcept { return -ENOSYS; }

namespace diskfault {
int populate_writable_segments(const void*) noexcept { return -ENOSYS; }
}  // namespace diskfault

#endif
