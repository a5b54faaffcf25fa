// Reads a log's lines last line first, block by block with pread or in place in a mapping, in
// bounded memory.
#pragma once

#include <string.h>  // memrchr (a GNU extension, not in <cstring>)
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cpu_features.hpp"
#include "mapped_file.hpp"

namespace diskfault {

// One line handed out by ReverseLineReader.
struct Line {
  // The line's bytes without its newline (and without a '\r' before it). A view into the
  // reader's buffer: valid only until the reader's next next() call.
  std::string_view text;
  // 1 for the last line of the file, 2 for the one before it, and so on. The line number from
  // the start is `reader.line_count() - from_end + 1`, known once the reader is exhausted.
  std::uint64_t from_end = 0;
};

// Memory for ReverseLineReader's blocks, on page boundaries (see ReverseLineReader::kPage).
template <class T>
struct PageAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{4096};

  PageAlignedAllocator() = default;
  template <class U>
  PageAlignedAllocator(const PageAlignedAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlignment); }

  template <class U>
  bool operator==(const PageAlignedAllocator<U>&) const noexcept {
    return true;
  }
};

// What to ask the kernel to read ahead of a file read backwards. The kernel reads ahead of
// forward reads only, so a log read from its end off a disk would wait for each block in turn.
// Once a block is not all in the page cache, the kDepth bytes before the block being read are
// kept asked for, kStep at a time and the nearest first (the disk then brings the next block
// first), until kSpan bytes have passed with every block found cached. A log the page cache holds
// is never asked for: asking costs time even for cached pages (about 22 ms a GiB).
class BackwardReadahead {
 public:
  static constexpr off_t kDepth = off_t{8} << 20;
  static constexpr off_t kStep = off_t{2} << 20;
  static constexpr off_t kSpan = off_t{64} << 20;

  struct Range {
    off_t offset = 0;
    off_t length = 0;
  };

  // Told of each block before it is read, going backwards, with whether the page cache held it
  // whole.
  void before_reading(off_t at, bool cached);
  // The next bytes to ask for before reading the block at `at`, or nullopt when enough are.
  std::optional<Range> next_ask(off_t at);

 private:
  static constexpr off_t kNowhere = std::numeric_limits<off_t>::max();
  off_t asked_ = kNowhere;       // from here to the end of the file is asked for, or read
  off_t cold_until_ = kNowhere;  // blocks that start past this keep the asking going
};

// What a scan of the older part of a file on a second thread finds, for skip_while() on the
// first: the lines the scan's `take` refused or did not see, newest first. Every other line of
// the part was taken when offered after the line that follows it. Published as it grows: the
// first thread may use the marks made so far while the scan goes on.
class SkipIndex {
 public:
  struct Break {
    std::uint64_t begin;     // where the line starts in the file
    std::uint64_t newline;   // where the newline that ends it is
    std::uint64_t from_end;  // its number from the end of the part (1 for the part's last)
  };
  // Past this many, the scan stops, and the part's lines before its last mark are read as if
  // there were no index: memory stays bounded on a log whose every line is refused. Room for
  // them is reserved at once, but only the pages written become resident.
  static constexpr std::size_t kMaxBreaks = std::size_t{1} << 16;

  // The scan also copies the lines the first thread will read: each marked line and the line on
  // each side of it. It has them in its cache as it passes; the first thread would otherwise map
  // each 2 MiB of the part once more to read some 70 lines there (BENCHMARKS.md, item 41). The
  // copies go into rings the first thread frees as it reads. Where the rings are full (the first
  // thread is still busy with the newer part), a line is not copied, and that thread reads it
  // from the mapping as before. On the 1 GiB log, rings of 2, 4 and 8 MiB, which leave fewer
  // lines to the mapping, ran no faster than 1 MiB, and each MiB is a MiB of peak RSS.
  static constexpr std::size_t kCopyBytes = std::size_t{1} << 20;
  static constexpr std::size_t kMaxCopies = 8192;  // as many lines of 128 bytes
  struct Copy {
    std::uint64_t begin;    // where the line starts in the file
    std::uint64_t newline;  // where the newline that ends it is
    std::uint64_t at;       // where its text starts, counted from the ring's first use
    std::size_t size;
  };

  explicit SkipIndex(std::size_t copy_bytes = kCopyBytes)
      : breaks_(new Break[kMaxBreaks]),
        copy_bytes_(copy_bytes),
        copies_(new Copy[kMaxCopies]),
        text_(new char[copy_bytes]) {}

  // Makes the rings resident in one step (populate_pages()), for the scan to call before its
  // first copy, which would otherwise pay a fault for each of some 300 pages.
  void prefault() noexcept;

  // The scan's side. False when full.
  bool add(const Break& b) {
    const std::uint64_t n = state_.load(std::memory_order_relaxed);
    if (n == kMaxBreaks) return false;
    breaks_[n] = b;
    published_.store(copied_, std::memory_order_release);
    // Sequentially consistent with wait_for()'s store of wanted_ and load of state_: one of the
    // two threads sees the other's store, so a wake is not lost.
    state_.store(n + 1, std::memory_order_seq_cst);
    if (n + 1 >= wanted_.load(std::memory_order_seq_cst)) state_.notify_one();
    return true;
  }
  // Ends the index: the scan reached the start of the file, or stopped.
  void finish() {
    published_.store(copied_, std::memory_order_release);
    state_.store(state_.load(std::memory_order_relaxed) | kDone, std::memory_order_release);
    state_.notify_one();
  }

  // The reading side: waits until break `k` is there or the index is finished. Whether it is.
  bool wait_for(std::size_t k) {
    std::uint64_t state = state_.load(std::memory_order_acquire);
    if ((state & ~kDone) > k) return true;
    if (state & kDone) return false;
    // Caught up with the scan: woken for a batch of marks, not for each, as a wake costs the
    // scan a system call.
    wanted_.store(k + kWakeBatch, std::memory_order_seq_cst);
    for (;;) {
      state = state_.load(std::memory_order_seq_cst);
      if ((state & ~kDone) > k) return true;
      if (state & kDone) return false;
      state_.wait(state, std::memory_order_acquire);
    }
  }
  // Break `k`, once wait_for(k) said it is there.
  const Break& operator[](std::size_t k) const { return breaks_[k]; }

  // The scan's side: copies `text`, the line at `place` (a line handed out after those copied
  // before it), if the ring has room. Published with the next add() or finish().
  void copy(const Break& place, std::string_view text);

  // The reading side, which asks for lines newest first, as it reads them: the text of the line
  // whose newline is at `newline` (or that starts at `begin`), if the scan copied it. Copies of
  // newer lines are passed over and may be reused once released.
  const Copy* copy_ending(std::uint64_t newline) { return find(newline, &Copy::newline); }
  const Copy* copy_starting(std::uint64_t begin) { return find(begin, &Copy::begin); }
  // The text of a copy found, valid until released.
  std::string_view text(const Copy& copy) const {
    return {text_.get() + copy.at % copy_bytes_, copy.size};
  }
  // How many copies the reading side has passed over; the one it found last is the next.
  std::uint64_t copies_read() const noexcept { return read_; }
  // Lets the scan reuse the room of the copies before the `k`th (a value of copies_read()): no
  // view of them is in use any more.
  void release(std::uint64_t k);
  // Lines the reading side found copied, for tests and benchmarks.
  std::uint64_t copies_found() const noexcept { return found_; }

 private:
  const Copy* find(std::uint64_t place, std::uint64_t Copy::*by);

  static constexpr std::uint64_t kDone = std::uint64_t{1} << 63;
  std::unique_ptr<Break[]> breaks_;      // default-initialised: not written, not resident
  std::atomic<std::uint64_t> state_{0};  // breaks published, and kDone once finished
  static constexpr std::uint64_t kWakeBatch = 64;
  std::atomic<std::uint64_t> wanted_{0};  // the reading side sleeps until this many are published

  // The copies: kMaxCopies of them and copy_bytes_ of text, both rings. Counts and places only
  // grow; a place in a ring is taken modulo its size. Each side's own counts on a cache line of
  // their own, away from what the other side writes.
  std::size_t copy_bytes_;
  std::unique_ptr<Copy[]> copies_;
  std::unique_ptr<char[]> text_;
  std::atomic<std::uint64_t> published_{0};  // copies the reading side may read
  std::atomic<std::uint64_t> freed_{0};      // copies, and text, the reading side has let go
  std::atomic<std::uint64_t> text_freed_{0};
  alignas(64) std::uint64_t copied_ = 0;  // the scan's: copies made
  std::uint64_t text_end_ = 0;            // the scan's: where the next copy's text may start
  alignas(64) std::uint64_t read_ = 0;    // the reading side's: copies passed over
  std::uint64_t found_ = 0;
};

// How a reader gets its bytes.
enum class ReadMode {
  kAuto,    // in place, for a regular file from kMapMin (or the reader's `map_from`) that the
            // page cache holds (from MappedFile::kSmallPagesCopyMin, mostly in huge pages); else
            // kCopy
  kCopy,    // pread() into its own blocks
  kMapped,  // in place wherever the file can be mapped (tests)
};

// Reads the first `size` bytes of an open file from the end towards the start in blocks of
// `block_size` bytes, and keeps memory within about block_size + the longest line. A final
// newline ends the last line rather than starting an empty one; bytes are not interpreted
// otherwise (NUL and invalid UTF-8 pass through).
//
// Two ways to the bytes. Copied (small logs, pipes spooled to a file, a log the disk must
// deliver): positional reads only, the descriptor's offset untouched; where blocks come from the
// disk, the kernel is asked to read ahead of them (BackwardReadahead). In place (a log the page
// cache holds, from kMapMin or the caller's bound; a large one only if held mostly in huge pages):
// the file is mapped (MappedFile, which turns a truncation underneath into an error, not SIGBUS),
// nothing is copied, and the pages passed are given back as the reader moves on. The older part of
// the file may then be scanned on a second thread (scan_older_part()), which copies it; from then
// on the newer part is copied too, and the mapping is read only from the split down.
class ReverseLineReader {
 public:
  static constexpr std::size_t kDefaultBlockSize = 1024 * 1024;
  // Blocks at least this large are read one ahead on a second thread while the caller works
  // through the current one, from the second block on; smaller ones (tests use a few bytes) are
  // read in line.
  static constexpr std::size_t kReadAheadMinBlock = 64 * 1024;
  // Blocks at least kReadAheadMinBlock large start on a multiple of kPage in the file, and land on
  // one in memory: the kernel's copy then runs page to page. Where a copy's destination sat a few
  // bytes past its source's place in a page, its loads and stores aliased (4K aliasing): a 1 GiB
  // log whose size was a multiple of 4096 took 711 ms instead of 380 to 400.
  static constexpr std::size_t kPage = 4096;
  // ReadMode::kAuto maps files from this size on, unless the caller gives another bound
  // (`map_from`), with blocks of at least kReadAheadMinBlock. Copied, a log lands in pages of the
  // reader's own, each of which costs a page fault the first time: on a 200 KB log, 47 of its
  // run's 298 faults; the fault-dense one took 7.94 ms copied and 7.04 mapped (medians of 200
  // alternating runs). Where those pages are resident already (the heap's huge page), a copy is
  // the faster way for logs under 2 MiB (kMapFromWithHugeHeap, diagnose.hpp).
  static constexpr off_t kMapMin = off_t{64} << 10;

  // `fd` must stay open until the reader is destroyed (a scan_older_part() thread reads it until
  // then); `name` is used in error messages only.
  ReverseLineReader(int fd, off_t size, std::string name,
                    std::size_t block_size = kDefaultBlockSize, ReadMode mode = ReadMode::kAuto,
                    off_t map_from = kMapMin);
  ~ReverseLineReader();
  // The read-ahead thread writes into the reader: it stays where it was made.
  ReverseLineReader(const ReverseLineReader&) = delete;
  ReverseLineReader& operator=(const ReverseLineReader&) = delete;

  // The previous line, or nullopt when the start of the file has been passed. Throws
  // std::system_error if the file cannot be read.
  std::optional<Line> next();

  // What skip_while() passed over: how many lines `take` kept, and the newest and the oldest of
  // them (views valid until the reader's next call; empty when it kept none).
  struct Run {
    std::uint64_t lines = 0;
    std::string_view newest, oldest;
  };
  // Offers `take` the lines before the next one next() would return, last first, while it
  // returns true and they lie whole in the block at hand; a refused line is left for next().
  // For a scan that passes over most lines: one call per run of lines, none per line.
  // `take(const Line&)` must not call into the reader. `take` is taken by value: the reader's
  // own copy can live in registers, where one reached through a reference is stored at every
  // change and reloaded after it (any byte read from the block might alias it).
  //
  // In the part a scan_older_part() indexed, a `take` with a `pass(const Line&)` is offered only
  // the lines the index names and the first of a run, and passes over the others as a block: it
  // is told the oldest of them by pass(), and must then act as if it had taken each. That holds
  // for a `take` whose answer for a line depends only on the line and the one after it (given
  // that it took that one), as the scan's did.
  template <class Take>
  Run skip_while(Take take);

  // Whether the reader reads in place (and scan_older_part() can work).
  bool mapped() const noexcept { return map_ != nullptr; }
  // The size of the file it maps; 0 if it reads by copy.
  std::size_t mapped_size() const noexcept { return map_ ? map_->size() : 0; }
  // Another reader of the same mapped file from its end, for a look at its last lines that
  // neither maps nor copies it again; null if this one reads by copy or is a part's reader.
  std::unique_ptr<ReverseLineReader> rewound(std::size_t block_size) const;
  // Whether scan_older_part() split the file.
  bool split() const noexcept { return part_end_ != 0; }

  // Scans the older part of a mapped file on a second thread while the caller reads the newer:
  // splits the file at the start of a line near `fraction` of its size and calls
  // `scan(part, after)` there, with `part` a reader of the lines before the split and `after`
  // the first line after it. The scan marks the lines it wants skip_while() to offer again with
  // part.mark(line), and returns when part.mark() or part.next() says to stop; skip_while() uses
  // the marks as they are made, waiting for the next where it has caught up. What the scan
  // throws (its reader's errors) skip_while() rethrows when it runs out of marks. Does nothing
  // on a file read by copy, one without a line end to split at, or after the first line is
  // read, or on a rewound() reader (it has no descriptor). What `scan` uses must outlive this
  // reader, which stops and joins the thread when it is destroyed.
  //
  // `part` reads by copy. In place, each 2 MiB it passed cost a fault and a release (50 to 90 µs
  // on the VM of BENCHMARKS.md, item 40). The caller, in turn, reads its own newer part by copy
  // too (item 43), and the marked lines from the scan's copies (SkipIndex::copy(), item 41) where
  // the scan had room for them; it maps the part only for the others. `copy_bytes` is that room
  // (tests give less).
  using PartScan = std::function<void(ReverseLineReader& part, std::string_view after)>;
  void scan_older_part(double fraction, PartScan scan,
                       std::size_t copy_bytes = SkipIndex::kCopyBytes);
  // For a scan: records `line` (just handed out by next()) as one to offer again. False when the
  // scan should stop: the index is full, or the reader it serves is going away.
  bool mark(const Line& line);

  // Whether skip_while() may find line ends with AVX2 where the processor has it (the default);
  // tests turn it off to run the portable way too.
  static void allow_avx2(bool allowed) noexcept { avx2_allowed_ = allowed; }

  // Lines handed out so far; the file's line count once next() has returned nullopt.
  std::uint64_t line_count() const noexcept { return lines_; }
  // Bytes read from the file so far (in place: the bytes the reader moved its block over).
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  // Of those, the bytes read by copy, with pread().
  std::uint64_t bytes_copied() const noexcept { return bytes_copied_; }
  // Lines of the part read from the scan's copies rather than from the mapping.
  std::uint64_t lines_read_from_copies() const noexcept {
    return part_index_ ? part_index_->copies_found() : 0;
  }

 private:
  // A reader of `map` from its end, for rewound().
  ReverseLineReader(std::shared_ptr<const MappedFile> map, std::string name,
                    std::size_t block_size);
  // A reader of the first `size` bytes of `fd`, for scan_older_part(): by copy, and with no
  // thread of its own to read ahead (the file is in the page cache, and both cores are busy).
  ReverseLineReader(int fd, std::size_t size, std::string name, std::size_t block_size,
                    SkipIndex* index, const std::atomic<bool>* stop);

  template <class Take>
  Run skip_lines(Take take);
#if DISKFAULT_AVX2
  template <class Take>
  Run skip_lines_avx2(Take take);
  static bool avx2() noexcept { return cpu_has_avx2() && avx2_allowed_; }
#endif
  template <class Take>
  Run skip_indexed(Take& take);
  static inline bool avx2_allowed_ = true;
  // `text` as the line `ahead` lines after the next one handed out.
  [[gnu::always_inline]] Line numbered(std::string_view text, std::uint64_t ahead) const {
    return Line{text, lines_ + ahead + 1};
  }
  // The line data[begin, end) of the block at `data`, without a '\r' at its end, numbered `ahead`
  // lines after the next one handed out.
  [[gnu::always_inline]] Line line_between(const char* data, std::size_t begin, std::size_t end,
                                           std::uint64_t ahead = 0) const {
    if (end != begin && data[end - 1] == '\r') --end;
    return numbered({data + begin, end - begin}, ahead);
  }
  // For skip_lines*(): the reader moves past a run of `taken` lines, from the one that ends at
  // cursor_ back to the one after the newline at `cursor`.
  Run end_run(std::uint64_t taken, std::size_t cursor) {
    Run run{taken, {}, {}};
    if (taken == 0) return run;  // next() finds the refused line again
    // The run's ends are found again here, once per run, rather than kept at every line.
    const char* data = data_;
    const std::size_t oldest = cursor + 1;
    const void* before_newest = ::memrchr(data + oldest, '\n', cursor_ - oldest);
    const void* after_oldest = ::memchr(data + oldest, '\n', cursor_ - oldest);
    run.newest =
        line_between(data, before_newest ? offset_in(before_newest) + 1 : oldest, cursor_).text;
    run.oldest = line_between(data, oldest, after_oldest ? offset_in(after_oldest) : cursor_).text;
    if (marking_ != nullptr) {
      copy_out(run.newest);
      if (taken > 1) copy_out(run.oldest);
    }
    lines_ += taken;
    cursor_ = cursor;
    unscanned_ = cursor;
    return run;
  }
  std::size_t offset_in(const void* p) const {
    return static_cast<std::size_t>(static_cast<const char*>(p) - data_);
  }
  // For a part's reader: where in the file `text`, a line of the block at hand, lies; and its
  // copy for the index (SkipIndex::copy()).
  SkipIndex::Break place_of(std::string_view text, std::uint64_t from_end = 0) const;
  void copy_out(std::string_view text) { marking_->copy(place_of(text), text); }

  void refill();
  // refill() for a mapped file: the block moves back over the mapping.
  void slide();
  // Moves the block of a mapped file so that it ends at `end` (a place in the file) and starts
  // at a page boundary at or before it, with no line handed out from it yet. Releases nothing.
  void move_block_to(std::size_t end);
  // Gives back the mapped pages well past the block at hand. Lines handed out from them stay
  // readable (a page is mapped again if touched), but one touched after its release stays mapped.
  void release_passed();
  // For skip_indexed(): waits until the scan has marked its `k`th line; false if it never will.
  // Rethrows what the scan met.
  bool await_break(std::size_t k);
  // Reads the `size` bytes at `at` into `buffer`, asking the kernel first to read ahead of them
  // where they were not in the page cache.
  void read_block(char* buffer, std::size_t size, off_t at);
  // The newline that ends the line before the one ending at cursor_, if the block's unscanned
  // part holds it.
  const char* newline_before_cursor() const {
    const std::size_t search = std::min(cursor_, unscanned_);
    return search != 0 ? static_cast<const char*>(::memrchr(data_, '\n', search)) : nullptr;
  }
  // How much to read before offset_ when the partial line carried is `partial` bytes long.
  std::size_t block_for(std::size_t partial) const;
  // Asks the worker to read the block before offset_ into spare_.
  void read_ahead(std::size_t partial);
  // Waits for that read; rethrows what it met.
  void wait_ahead();
  void work();

  int fd_;
  std::string name_;
  std::size_t block_size_;
  using Block = std::vector<char, PageAlignedAllocator<char>>;
  static_assert(static_cast<std::size_t>(PageAlignedAllocator<char>::kAlignment) == kPage);

  std::shared_ptr<const MappedFile> map_;  // null when the file is read by copy
  Block buffer_;                           // the block at hand, when copied
  const char* data_ = nullptr;             // the block at hand: buffer_, or the mapping at offset_
  std::size_t readable_ = 0;               // the file's bytes from data_ on, all loadable
  off_t offset_;                           // file offset of data_[0]
  std::size_t cursor_ = 0;                 // data_[0, cursor_) is not handed out yet
  // data_[0, unscanned_) may hold newlines; past it, up to cursor_, lies a partial line that
  // was searched already (a long line is searched once, not once per block).
  std::size_t unscanned_ = 0;
  bool started_ = false;
  bool finished_ = false;
  std::uint64_t lines_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_copied_ = 0;
  std::size_t released_ = 0;  // the mapping from here to its end is given back
  // Used by whichever thread reads: this one until the worker starts, the worker after.
  bool nowait_ = true;  // pread_cached() works on this file
  BackwardReadahead readahead_;

  // The older part's scan: where the part ends, the lines of the newer part (known once the
  // block passes the split), the index the scan builds, and how far skip_while() has used it.
  std::size_t part_end_ = 0;  // 0: no part
  std::uint64_t newer_lines_ = 0;
  std::unique_ptr<SkipIndex> part_index_;  // made with the scan: most readers never split
  bool indexed_ = false;                   // skip_while() uses part_index_
  std::size_t next_break_ = 0;
  // The copy (SkipIndex::copies_read()) that next() last handed out a line from, or none.
  std::uint64_t line_copy_ = kNoCopy;
  static constexpr std::uint64_t kNoCopy = std::numeric_limits<std::uint64_t>::max();
  std::atomic<bool> part_stop_{false};
  std::exception_ptr part_error_;
  // For a part's own reader: the index it marks lines in, and its owner's wish that it stop.
  SkipIndex* marking_ = nullptr;
  const std::atomic<bool>* stop_ = nullptr;

  // Reading ahead: one worker thread, started with the first read ahead, and one request at a
  // time, handed over under mu_.
  Block spare_;  // the block being read ahead
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // a read of spare_ is asked for or under way
  bool stopping_ = false;
  off_t ahead_at_ = 0;  // where the requested read starts, and how much it reads
  std::size_t ahead_size_ = 0;
  std::exception_ptr ahead_error_;
  std::thread worker_;       // these last: they start after, and are joined before, what they
  std::thread part_thread_;  // use goes away
};

template <class Take>
ReverseLineReader::Run ReverseLineReader::skip_while(Take take) {
  if (!started_ || finished_) return {};  // next() reads the first block and ends the file
  if (indexed_ && static_cast<std::size_t>(offset_) + cursor_ < part_end_) {
    if constexpr (requires(Take & t, const Line& line) { t.pass(line); }) {
      return skip_indexed(take);
    }
  }
#if DISKFAULT_AVX2
  if (avx2()) return skip_lines_avx2(std::move(take));
#endif
  return skip_lines(std::move(take));
}

template <class Take>
ReverseLineReader::Run ReverseLineReader::skip_lines(Take take) {
  // In locals: members would be stored and reloaded around every call.
  const char* const data = data_;
  std::size_t cursor = cursor_;
  std::size_t search = std::min(cursor_, unscanned_);  // data[search, cursor) holds no newline
  std::uint64_t taken = 0;
  while (search != 0) {
    const void* hit = ::memrchr(data, '\n', search);
    if (hit == nullptr) break;  // the line may begin in an earlier block
    const std::size_t newline = static_cast<std::size_t>(static_cast<const char*>(hit) - data);
    if (!take(line_between(data, newline + 1, cursor, taken))) break;
    ++taken;
    cursor = newline;
    search = newline;
  }
  return end_run(taken, cursor);
}

// skip_while() in the indexed part: the lines between two the index names were each taken after
// the line that follows them, as they would be again, so `take` is offered only the named lines
// and the first of the run. Works on places in the file, and leaves the block at the run's end.
template <class Take>
ReverseLineReader::Run ReverseLineReader::skip_indexed(Take& take) {
  // Here, not at the end: the caller reads the run's newest line after it, which a release then
  // would map again, past the reach of the next release.
  release_passed();
  // The views the last call handed out are done with; the line next() handed out is not.
  part_index_->release(std::min(part_index_->copies_read(), line_copy_));
  const char* const file = map_->data();
  SkipIndex& breaks = *part_index_;
  std::size_t cursor = static_cast<std::size_t>(offset_) + cursor_;  // the offered line ends here
  std::size_t k = next_break_;
  std::uint64_t taken = 0;
  Run run;
  for (;;) {
    while (await_break(k) && breaks[k].begin > cursor) ++k;
    if (!indexed_) break;  // past the index's last line: an index cut short
    std::size_t begin;
    Line line;
    if (const SkipIndex::Copy* copy = breaks.copy_ending(cursor)) {
      if (copy->begin == 0) break;  // the file's first line: next() hands it out
      begin = copy->begin;
      line = numbered(breaks.text(*copy), taken);
    } else {
      const void* newline = ::memrchr(file, '\n', cursor);
      if (newline == nullptr) break;  // the file's first line: next() hands it out
      begin = static_cast<std::size_t>(static_cast<const char*>(newline) - file) + 1;
      line = line_between(file, begin, cursor, taken);
    }
    if (!take(line)) break;
    if (taken++ == 0) run.newest = line.text;
    run.oldest = line.text;
    cursor = begin - 1;
    if (breaks[k].begin == begin) ++k;  // it was marked itself
    if (!await_break(k) || breaks[k].newline == cursor) continue;
    // The lines after the next marked one, up to this one, were all taken in the scan.
    const SkipIndex::Break& named = breaks[k];
    const std::uint64_t number = lines_ + taken - newer_lines_;  // this line's, in the part
    const std::uint64_t between = named.from_end - number - 1;
    const std::size_t first = named.newline + 1;
    Line oldest;
    if (const SkipIndex::Copy* copy = breaks.copy_starting(first)) {
      oldest = numbered(breaks.text(*copy), taken + between - 1);
    } else {
      const void* end = ::memchr(file + first, '\n', cursor - first);
      const std::size_t last =
          end ? static_cast<std::size_t>(static_cast<const char*>(end) - file) : cursor;
      oldest = line_between(file, first, last, taken + between - 1);
    }
    take.pass(oldest);
    taken += between;
    run.oldest = oldest.text;
    cursor = named.newline;
  }
  next_break_ = k;
  run.lines = taken;
  lines_ += taken;
  move_block_to(cursor);
  return run;
}

#if DISKFAULT_AVX2
// Bit i set where p[i] is a newline, for the 64 bytes at `p`.
[[gnu::target("avx2"), gnu::always_inline]] inline std::uint64_t avx2_newlines(const char* p) {
  const __m256i newline = _mm256_set1_epi8('\n');
  const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  const auto low_bits =
      static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, newline)));
  const auto high_bits =
      static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, newline)));
  return std::uint64_t{high_bits} << 32 | low_bits;
}

// skip_lines() with the newlines of each 64 bytes found at once, kept as bits and used up line by
// line: a memrchr() call per line costs about twice as many instructions (52 a line of 147 bytes,
// by callgrind). A `take` marked always_inline is compiled into it; GCC does not otherwise inline
// a plain function into one built for AVX2.
template <class Take>
[[gnu::target("avx2")]] ReverseLineReader::Run ReverseLineReader::skip_lines_avx2(Take take) {
  const char* const data = data_;
  std::size_t cursor = cursor_;
  const std::size_t search = std::min(cursor_, unscanned_);  // data[search, cursor): no newline
  std::size_t chunk = search & ~std::size_t{63};  // the 64 bytes `bits` describes start here
  std::uint64_t bits = 0;                         // their newlines before `search`, not yet used
  if (const std::size_t part = search - chunk; part != 0) {
    if (chunk + 64 <= readable_) {
      bits = avx2_newlines(data + chunk) & ((std::uint64_t{1} << part) - 1);
    } else {  // the buffer ends before 64 bytes do
      for (std::size_t i = 0; i < part; ++i) bits |= std::uint64_t{data[chunk + i] == '\n'} << i;
    }
  }
  std::uint64_t taken = 0;
  for (;;) {
    while (bits == 0 && chunk != 0) {
      chunk -= 64;
      bits = avx2_newlines(data + chunk);
    }
    if (bits == 0) break;  // the line may begin in an earlier block
    const int top = 63 - std::countl_zero(bits);
    bits ^= std::uint64_t{1} << top;
    const std::size_t newline = chunk + static_cast<std::size_t>(top);
    if (!take(line_between(data, newline + 1, cursor, taken))) break;
    ++taken;
    cursor = newline;
  }
  return end_run(taken, cursor);
}
#endif

}  // namespace diskfault
