// MappedFile: mmap with a SIGBUS handler that turns a vanished page into an error.
#include "mapped_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace diskfault {
namespace {

// The mappings the handler may mend. Lock-free, as a signal handler reads it: a slot is claimed
// by its `end`, published by its `begin`, and withdrawn in the reverse order.
struct Guarded {
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::uintptr_t> end{0};
  std::atomic<bool> damaged{false};
};
std::array<Guarded, 8> guarded;
static_assert(std::atomic<std::uintptr_t>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

struct sigaction previous_action;
std::uintptr_t page_size = 4096;

void on_sigbus(int, siginfo_t* info, void*) {
  const auto at = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (Guarded& g : guarded) {
    if (at >= g.begin.load(std::memory_order_acquire) &&
        at < g.end.load(std::memory_order_acquire)) {
      // The faulting load runs again on return, and now reads zeros.
      void* page = reinterpret_cast<void*>(at & ~(page_size - 1));
      if (::mmap(page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
          MAP_FAILED) {
        g.damaged.store(true, std::memory_order_release);
        return;
      }
    }
  }
  // Not ours: the load faults again, and goes where it would have gone without this handler.
  ::sigaction(SIGBUS, &previous_action, nullptr);
}

// Claims a slot for [data, data + size) and makes sure the handler is installed; -1 when every
// slot is taken or the handler cannot be installed.
int guard(const char* data, std::size_t size) {
  static std::once_flag installed;
  static bool ready = false;
  std::call_once(installed, [] {
    page_size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    ready = ::sigaction(SIGBUS, &action, &previous_action) == 0;
  });
  if (!ready) return -1;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  for (std::size_t i = 0; i < guarded.size(); ++i) {
    std::uintptr_t free = 0;
    if (guarded[i].end.compare_exchange_strong(free, begin + size)) {
      guarded[i].damaged.store(false);
      guarded[i].begin.store(begin, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unguard(int slot) {
  guarded[slot].begin.store(0, std::memory_order_release);
  guarded[slot].end.store(0, std::memory_order_release);
}

// Whether the page cache holds the mapping's pages: all of them for a small log, in one call; a
// sample of a larger one: its first and last, and 30 spread between, as asking for every page of
// a large log takes longer than it saves.
bool looks_cached(const char* data, std::size_t size) {
  constexpr std::size_t kSamples = 32;
  const std::size_t pages = (size + page_size - 1) / page_size;
  // A call per sample cost about a microsecond each on the machine of BENCHMARKS.md.
  if (std::array<unsigned char, 512> resident{}; pages <= resident.size()) {
    return ::mincore(const_cast<char*>(data), size, resident.data()) == 0 &&
           std::all_of(resident.begin(), resident.begin() + static_cast<std::ptrdiff_t>(pages),
                       [](unsigned char r) { return (r & 1) != 0; });
  }
  for (std::size_t i = 0; i < kSamples; ++i) {
    const std::size_t page = pages == 1 ? 0 : i * (pages - 1) / (kSamples - 1);
    unsigned char resident = 0;
    if (::mincore(const_cast<char*>(data) + page * page_size, page_size, &resident) != 0 ||
        (resident & 1) == 0) {
      return false;
    }
  }
  return true;
}

// The file memory this process maps with one entry per huge page, in KiB: FilePmdMapped and
// ShmemPmdMapped (a file on tmpfs) in /proc/self/smaps_rollup; nullopt where the kernel does not
// say.
std::optional<std::uint64_t> pmd_mapped_kib() {
  const int fd = ::open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::array<char, 4096> text{};  // about 700 bytes on Linux 6.18
  const ssize_t got = ::read(fd, text.data(), text.size() - 1);
  ::close(fd);
  if (got <= 0) return std::nullopt;
  const std::string_view all(text.data(), static_cast<std::size_t>(got));
  std::uint64_t total = 0;
  for (std::string_view key : {"\nFilePmdMapped:", "\nShmemPmdMapped:"}) {
    const std::size_t at = all.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    const std::size_t digits = all.find_first_not_of(' ', at + key.size());
    if (digits == std::string_view::npos) return std::nullopt;
    std::uint64_t kib = 0;
    if (std::from_chars(all.data() + digits, all.data() + all.size(), kib).ec != std::errc()) {
      return std::nullopt;
    }
    total += kib;
  }
  return total;
}

// The first release unit boundary at or after `address`, and the last at or before it.
constexpr std::uintptr_t unit_up(std::uintptr_t address) {
  return (address + MappedFile::kReleaseUnit - 1) & ~(MappedFile::kReleaseUnit - 1);
}
constexpr std::uintptr_t unit_down(std::uintptr_t address) {
  return address & ~(MappedFile::kReleaseUnit - 1);
}

// Whether the kernel maps most of the file at `data` (a mapping of `size` bytes, at least a few
// release units) in huge pages: touches its first, middle and last whole release units, and
// counts how many of them the huge-page total grew by. True where the kernel does not say, as
// before this was asked. Three, not one: a log comes back in small pages where DAMON paged it
// out, mostly its older part, and one appended to since it was read in is held in small pages
// at its end. Nothing else in the process maps or unmaps meanwhile (readers are made one at a
// time); if something did, the answer would only be wrong, not unsafe.
bool maps_in_huge_pages(const char* data, std::size_t size) {
  constexpr std::size_t kUnit = MappedFile::kReleaseUnit;
  const auto base = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = unit_up(base);
  const std::uintptr_t last = unit_down(base + size) - kUnit;
  if (last < first + 2 * kUnit) return true;  // too few whole units to tell by
  const std::uintptr_t middle = first + unit_down((last - first) / 2);
  const std::optional<std::uint64_t> before = pmd_mapped_kib();
  if (!before) return true;
  for (std::uintptr_t unit : {first, middle, last}) {
    [[maybe_unused]] const char byte = *reinterpret_cast<const volatile char*>(unit);
  }
  const std::optional<std::uint64_t> after = pmd_mapped_kib();
  // The reader reaches the first two last, and would hold them mapped till then (the last, too,
  // where it splits the file and copies the newer part: scan_older_part() gives that back).
  for (std::uintptr_t unit : {first, middle}) {
    ::madvise(reinterpret_cast<void*>(unit), kUnit, MADV_DONTNEED);
  }
  return !after || *after >= *before + 2 * (kUnit / 1024);
}

}  // namespace

MappedFile::MappedFile(int fd, char* data, std::size_t size, std::string name, int slot)
    : fd_(fd), data_(data), size_(size), name_(std::move(name)), slot_(slot) {}

MappedFile::~MappedFile() {
  unguard(slot_);
  ::munmap(data_, size_);
}

std::unique_ptr<MappedFile> MappedFile::map_if_cached(int fd, off_t size, std::string name) {
  return map_file(fd, size, std::move(name), true);
}

std::unique_ptr<MappedFile> MappedFile::map(int fd, off_t size, std::string name) {
  return map_file(fd, size, std::move(name), false);
}

std::unique_ptr<MappedFile> MappedFile::map_file(int fd, off_t size, std::string name,
                                                 bool cached_only) {
  struct stat st {};
  if (size <= 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  const auto bytes = static_cast<std::size_t>(size);
  void* data = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return nullptr;
  char* const start = static_cast<char*>(data);
  const int slot = guard(start, bytes);
  if (slot < 0 ||
      (cached_only && (!looks_cached(start, bytes) ||
                       (bytes >= kSmallPagesCopyMin && !maps_in_huge_pages(start, bytes))))) {
    if (slot >= 0) unguard(slot);
    ::munmap(data, bytes);
    return nullptr;
  }
  return std::unique_ptr<MappedFile>(new MappedFile(fd, start, bytes, std::move(name), slot));
}

void MappedFile::check() const {
  if (!guarded[slot_].damaged.load(std::memory_order_acquire)) return;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size < static_cast<off_t>(size_)) {
    throw std::system_error(EIO, std::generic_category(), "file shrank while reading " + name_);
  }
  throw std::system_error(EIO, std::generic_category(), "cannot read " + name_);
}

std::size_t MappedFile::release(std::size_t from, std::size_t to) const noexcept {
  to = std::min(to, size_);  // nothing past the mapping: what lies there is not ours
  const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(data_);
  const std::uintptr_t first = unit_up(base + from);
  const std::uintptr_t last = (base + to) & ~(page_size - 1);
  if (first >= last) return to;
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  return first - base;
}

}  // namespace diskfault
