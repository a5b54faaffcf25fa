// The static binary's own entry point, which runs before glibc's _start.
#pragma once

extern "C" {

// Makes every page of this binary's writable segments (RELRO, .data, .bss) resident and
// private, one madvise(MADV_POPULATE_WRITE) call for each segment. Returns 0, or the first
// failing call's -errno (-EINVAL on a kernel older than 5.14); -ENOEXEC where the program headers
// do not say where the binary was loaded; -ENOSYS where it does nothing (other than x86-64).
// Why: a static PIE relocates itself as it starts, so each page it writes there takes a
// copy-on-write fault (about 30 for diskfault); on the paravirtual machine of BENCHMARKS.md such
// a fault costs about 15 µs, a page populated in one call about 6 (item 38).
//
// diskfault_entry, the entry point of diskfault's static x86-64 builds (meson.build), calls it
// before glibc's _start: before relocation, TLS and the stack protector's canary, so it calls no
// library function and reads no relocated data.
int diskfault_populate_writable_segments() noexcept;
}

namespace diskfault {

// The same for the ELF image whose header lies at `header`, mapped as its program headers say
// (the tests lay out images of their own).
int populate_writable_segments(const void* header) noexcept;

}  // namespace diskfault
