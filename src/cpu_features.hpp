// What the processor offers beyond the x86-64 baseline the binary is built for.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// Code built for AVX2 (gnu::target("avx2")) is compiled in; it runs where cpu_has_avx2().
#define DISKFAULT_AVX2 1
#endif

namespace diskfault {

#if DISKFAULT_AVX2
// Asked of the processor once per process.
inline bool cpu_has_avx2() noexcept {
  static const bool present = __builtin_cpu_supports("avx2");
  return present;
}
#endif

}  // namespace diskfault
