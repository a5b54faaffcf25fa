// What the processor offers beyond the x86-64 baseline the binary is built for.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// glibc's own reading of the processor, made as the process starts. __builtin_cpu_supports would
// link libgcc's, which asks the processor again (cpuid) in every run: in a VM each such question
// traps to the host, and that second reading was 2% of a run on a small log. (glibc 2.36's header
// is not C++ to clang, which knows no _Bool there.)
#if __has_include(<sys/platform/x86.h>) && !defined(__clang__)
#include <sys/platform/x86.h>
#ifdef CPU_FEATURE_ACTIVE  // glibc 2.33 on; 2.32's header has another name for it
#define DISKFAULT_GLIBC_CPU_FEATURES 1
#endif
#endif
// Code built for AVX2 (gnu::target("avx2")) is compiled in; it runs where cpu_has_avx2().
#define DISKFAULT_AVX2 1
#endif

namespace diskfault {

#if DISKFAULT_AVX2
// Asked of the processor once per process.
inline bool cpu_has_avx2() noexcept {
#if DISKFAULT_GLIBC_CPU_FEATURES
  static const bool present = CPU_FEATURE_ACTIVE(AVX2);
#else
  static const bool present = __builtin_cpu_supports("avx2");
#endif
  return present;
}
#endif

}  // namespace diskfault
