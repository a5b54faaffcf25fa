// A log mapped into memory for reading in place, safe against a file that shrinks underneath.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

namespace diskfault {

// A regular file mapped read-only, for a reader that would otherwise copy every byte out of the
// page cache. A mapped file that is truncated while it is read (logrotate's `copytruncate`), or
// whose pages the disk cannot deliver, would kill the process with SIGBUS: while a MappedFile
// lives, a SIGBUS handler lays a page of zeros over the faulting page of any mapping made here,
// and the file is marked damaged; check() then throws, and the reader stops before it uses the
// zeros. Signals in other memory go to whatever handled SIGBUS before.
class MappedFile {
 public:
  // Maps the first `size` bytes of `fd` if it is a regular file whose pages the page cache holds
  // (every page of a log up to 2 MiB, a sample of a larger one: a log the disk must deliver is
  // read faster with pread and read-ahead, and cannot fail under a mapping) and, from
  // kSmallPagesCopyMin, maps mostly in huge pages (two of three units sampled); otherwise nullptr.
  // `name` is for error messages.
  static std::unique_ptr<MappedFile> map_if_cached(int fd, off_t size, std::string name);
  // A log the page cache holds in small pages (as it holds one written in small appends, the way
  // syslog daemons write) costs page faults by the thousand (28 575 for 1 GiB, against 1 035
  // copied, `perf stat`) and a page-table entry per 4 KiB given back, and from about this size a
  // copy is faster: written in 4 KiB writes and so held, 12 MiB took 15.6 ms mapped and 26.8
  // copied, 32 MiB 31.4 and 29.9, 100 MiB 78.6 and 44.0, 1 GiB 764 and 211 (`benchmarks/alternate`,
  // medians). Held in 2 MiB folios, the 1 GiB log took 155 ms mapped.
  static constexpr std::size_t kSmallPagesCopyMin = std::size_t{32} << 20;
  // The same, whether or not the page cache holds the file (tests), nullptr only for a file that
  // cannot be mapped.
  static std::unique_ptr<MappedFile> map(int fd, off_t size, std::string name);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  // Throws std::system_error naming the file if a page of it could not be read since the
  // mapping was made: "file shrank while reading" where it is now shorter, else EIO. Bytes read
  // from the mapping are the file's only if this did not throw after they were read.
  void check() const;

  // Where release() works: spans of this many bytes, at addresses that are multiples of it (the
  // size a huge page maps on x86-64). The kernel keeps a large file in the page cache as folios
  // of up to this size and maps each with one entry; giving back part of one splits that entry
  // first: the 1 GiB bench log took 219 ms with releases of whole pages, 157 ms with whole
  // units (medians, `benchmarks/alternate 15`, the log read in by `cat`).
  static constexpr std::size_t kReleaseUnit = std::size_t{2} << 20;

  // Lets the kernel drop this process's mapping of the whole release units within [from, to)
  // and of the pages from the last unit's end to `to` (they stay in the page cache, and are
  // mapped again if touched): the resident memory of a reader that walks a large file stays
  // bounded. `to` past the mapping's end counts as its end. Returns where the bytes given back
  // now begin: `to` if none were.
  std::size_t release(std::size_t from, std::size_t to) const noexcept;

 private:
  MappedFile(int fd, char* data, std::size_t size, std::string name, int slot);
  static std::unique_ptr<MappedFile> map_file(int fd, off_t size, std::string name,
                                              bool cached_only);

  int fd_;
  char* data_;
  std::size_t size_;
  std::string name_;
  int slot_;  // in the SIGBUS handler's table
};

}  // namespace diskfault
