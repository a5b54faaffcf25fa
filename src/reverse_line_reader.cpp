// The reverse line reader: memrchr over blocks read backwards, a partial line carried between them.
#include "reverse_line_reader.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "file_descriptor.hpp"
#include "heap_prefault.hpp"

namespace diskfault {

void BackwardReadahead::before_reading(off_t at, bool cached) {
  if (cached) return;
  cold_until_ = at - kSpan;
  asked_ = std::min(asked_, at);  // the block itself is read at once
}

std::optional<BackwardReadahead::Range> BackwardReadahead::next_ask(off_t at) {
  if (at <= cold_until_) return std::nullopt;
  // In steps, not a block at a time: each asking walks the page cache over its range.
  const off_t want = std::max<off_t>(0, at - kDepth);
  if (asked_ <= want || (asked_ - want < kStep && want > 0)) return std::nullopt;
  const off_t from = std::max<off_t>(0, asked_ - kStep);
  const Range ask{from, asked_ - from};
  asked_ = from;
  return ask;
}

ReverseLineReader::ReverseLineReader(int fd, off_t size, std::string name, std::size_t block_size,
                                     ReadMode mode, off_t map_from)
    : fd_(fd),
      name_(std::move(name)),
      block_size_(std::max<std::size_t>(block_size, 1)),
      offset_(size) {
  if (mode == ReadMode::kMapped ||
      (mode == ReadMode::kAuto && size >= map_from && block_size_ >= kReadAheadMinBlock)) {
    map_ = mode == ReadMode::kMapped ? MappedFile::map(fd, size, name_)
                                     : MappedFile::map_if_cached(fd, size, name_);
  }
  if (map_) {
    data_ = map_->data() + map_->size();
    released_ = map_->size();
  }
}

ReverseLineReader::ReverseLineReader(std::shared_ptr<const MappedFile> map, std::string name,
                                     std::size_t block_size)
    : fd_(-1),
      name_(std::move(name)),
      block_size_(block_size),
      map_(std::move(map)),
      offset_(static_cast<off_t>(map_->size())),
      released_(map_->size()) {
  data_ = map_->data() + map_->size();
}

ReverseLineReader::ReverseLineReader(int fd, std::size_t size, std::string name,
                                     std::size_t block_size, SkipIndex* index,
                                     const std::atomic<bool>* stop)
    : fd_(fd),
      name_(std::move(name)),
      block_size_(block_size),
      offset_(static_cast<off_t>(size)),
      marking_(index),
      stop_(stop) {}

std::unique_ptr<ReverseLineReader> ReverseLineReader::rewound(std::size_t block_size) const {
  if (!map_ || marking_) return nullptr;
  return std::unique_ptr<ReverseLineReader>(
      new ReverseLineReader(map_, name_, std::max<std::size_t>(block_size, 1)));
}

ReverseLineReader::~ReverseLineReader() {
  if (part_thread_.joinable()) {
    part_stop_ = true;
    part_thread_.join();
  }
  if (!worker_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

// Prepends the block that precedes data_[0] in the file, keeping the unread partial line.
void ReverseLineReader::refill() {
  // Once the file is split, the newer part is copied too. Mapped, each 2 MiB it passed cost a
  // fault and a release that interrupts the other core, and a unit the page cache holds in small
  // pages a fault per page (BENCHMARKS.md, item 43). From the split down the mapping is read
  // again: the part's lines the scan had no room to copy, and those past its last mark.
  const bool newer_copied = map_ && part_end_ != 0 && static_cast<std::size_t>(offset_) > part_end_;
  if (map_ && !newer_copied) {
    if (data_ != map_->data() + offset_) {  // the split: the kept line is the mapping's too
      data_ = map_->data() + offset_;
      Block().swap(buffer_);  // next() called this: no view into the block is in use
    }
    return slide();
  }
  const std::size_t keep = cursor_;
  std::size_t want = block_for(keep);
  // A split reader never reads ahead (below), so no worker's block overrides this bound.
  if (newer_copied) want = std::min(want, static_cast<std::size_t>(offset_) - part_end_);
  if (worker_.joinable()) {
    wait_ahead();  // the worker read the block that ends at offset_ into spare_
    want = ahead_size_;
    spare_.resize(want + keep);
    std::memcpy(spare_.data() + want, buffer_.data(), keep);
    buffer_.swap(spare_);
  } else {
    buffer_.resize(want + keep);  // no stale bytes past the line kept: mark() looks past a line
    std::memmove(buffer_.data() + want, buffer_.data(), keep);
    read_block(buffer_.data(), want, offset_ - static_cast<off_t>(want));
  }
  data_ = buffer_.data();
  readable_ = buffer_.size();
  offset_ -= static_cast<off_t>(want);
  bytes_read_ += want;
  bytes_copied_ += want;
  cursor_ = want + keep;
  unscanned_ = want;  // the partial line kept has no newline: it was searched already
  // A caller that stops inside the first block (follow mode reading back to the start of the
  // current boot, and then its last 64 lines) never pays for a thread, nor makes glibc's malloc
  // lock for the rest of the run; one that has gone past it is walking the file. A part's reader
  // (marking_) reads on the second core already, from a log the page cache holds; a split file's
  // newer part comes from that log too, while the second core is busy with the part.
  if (marking_ == nullptr && part_end_ == 0 && block_size_ >= kReadAheadMinBlock && offset_ > 0 &&
      bytes_read_ > want) {
    read_ahead(keep);
  }
}

void ReverseLineReader::slide() {
  const auto at = static_cast<std::size_t>(offset_);
  if (part_end_ != 0 && at == part_end_) {
    newer_lines_ = lines_ + 1;  // the partial line kept is the newer part's first
  }
  // The block stops at the split, so that the newer part's lines are counted before the
  // part's are offered.
  const std::size_t floor = part_end_ != 0 && at > part_end_ ? part_end_ : 0;
  // The partial line carried was searched already, and is not copied: blocks need not grow.
  const std::size_t want = std::min(at - floor, block_size_);
  map_->check();  // before the bytes found since the last check are used
  data_ -= want;
  offset_ -= static_cast<off_t>(want);
  readable_ = map_->size() - static_cast<std::size_t>(offset_);
  bytes_read_ += want;
  cursor_ += want;
  unscanned_ = want;
  release_passed();
}

void ReverseLineReader::move_block_to(std::size_t end) {
  map_->check();
  const std::size_t start = end / kPage * kPage;
  if (start < static_cast<std::size_t>(offset_)) bytes_read_ += offset_ - static_cast<off_t>(start);
  offset_ = static_cast<off_t>(start);
  data_ = map_->data() + start;
  readable_ = map_->size() - start;
  cursor_ = end - start;
  unscanned_ = cursor_;
}

void ReverseLineReader::release_passed() {
  // A page past the offered line: the caller may still read the line after it.
  const std::size_t in_use = static_cast<std::size_t>(offset_) + cursor_ + kPage;
  // Once a whole release unit lies past it: each call walks the page tables of what it gives
  // back, and interrupts the other core to flush its TLB.
  if (released_ >= in_use + MappedFile::kReleaseUnit) released_ = map_->release(in_use, released_);
}

void ReverseLineReader::scan_older_part(double fraction, PartScan scan, std::size_t copy_bytes) {
  if (!map_ || fd_ < 0 || part_end_ != 0 || started_) return;
  const char* file = map_->data();
  const auto at = static_cast<std::size_t>(static_cast<double>(map_->size()) * fraction);
  if (at == 0 || at >= map_->size()) return;
  const void* newline = ::memrchr(file, '\n', at);
  if (newline == nullptr) return;
  part_end_ = static_cast<std::size_t>(static_cast<const char*>(newline) - file) + 1;
  const void* after_end = ::memchr(file + part_end_, '\n', map_->size() - part_end_);
  const std::size_t after_size =
      (after_end ? static_cast<const char*>(after_end) : file + map_->size()) - (file + part_end_);
  const std::string_view after(file + part_end_, after_size);
  // The newer part is read by copy from here on (refill()): what is mapped of it past `after`
  // (the last unit maps_in_huge_pages() touched, and the format check's look at the last lines)
  // would otherwise stay resident until the reader reaches the split.
  released_ = map_->release(part_end_ + after_size + kPage, released_);
  part_index_ = std::make_unique<SkipIndex>(copy_bytes);
  indexed_ = true;
  part_thread_ = std::thread([this, scan = std::move(scan), after] {
    try {
      part_index_->prefault();
      ReverseLineReader part(fd_, part_end_, name_, block_size_, part_index_.get(), &part_stop_);
      scan(part, after);
    } catch (...) {
      part_error_ = std::current_exception();  // the reader's thread rethrows it
    }
    part_index_->finish();
  });
}

SkipIndex::Break ReverseLineReader::place_of(std::string_view text, std::uint64_t from_end) const {
  // The byte after the line is its '\r' or its newline, unless the line was carried over from
  // the previous block: its newline stayed behind there, and the block ends with the line.
  const std::size_t at = offset_in(text.data());
  const std::size_t end = at + text.size();
  const auto begin = static_cast<std::uint64_t>(offset_) + at;
  std::uint64_t newline = begin + text.size();
  if (end < readable_ && data_[end] == '\r') ++newline;
  return {begin, newline, from_end};
}

bool ReverseLineReader::mark(const Line& line) {
  if (stop_->load(std::memory_order_relaxed)) return false;
  const SkipIndex::Break place = place_of(line.text, line.from_end);
  marking_->copy(place, line.text);
  return marking_->add(place);
}

void SkipIndex::prefault() noexcept {
  // Where the kernel cannot, the pages fault in as they are written.
  populate_pages(copies_.get(), kMaxCopies * sizeof(Copy));
  populate_pages(text_.get(), copy_bytes_);
}

void SkipIndex::copy(const Break& place, std::string_view text) {
  if (text.size() >= copy_bytes_ ||
      copied_ - freed_.load(std::memory_order_acquire) == kMaxCopies) {
    return;
  }
  std::uint64_t at = text_end_;
  // A copy does not wrap around the ring's end: one that would starts the next round.
  if (at % copy_bytes_ + text.size() > copy_bytes_) at += copy_bytes_ - at % copy_bytes_;
  if (at + text.size() - text_freed_.load(std::memory_order_acquire) > copy_bytes_) return;
  std::memcpy(text_.get() + at % copy_bytes_, text.data(), text.size());
  copies_[copied_ % kMaxCopies] = {place.begin, place.newline, at, text.size()};
  ++copied_;
  text_end_ = at + text.size();
}

const SkipIndex::Copy* SkipIndex::find(std::uint64_t place, std::uint64_t Copy::*by) {
  for (const std::uint64_t n = published_.load(std::memory_order_acquire); read_ < n; ++read_) {
    const Copy& copy = copies_[read_ % kMaxCopies];
    if (copy.*by > place) continue;  // a newer line's, passed over
    if (copy.*by < place) return nullptr;
    ++found_;
    return &copy;
  }
  return nullptr;
}

void SkipIndex::release(std::uint64_t k) {
  if (k <= freed_.load(std::memory_order_relaxed)) return;
  // The text before copy k's is free; with every copy read, all of it that was used.
  std::uint64_t text;
  if (k < published_.load(std::memory_order_acquire)) {
    text = copies_[k % kMaxCopies].at;
  } else {
    const Copy& last = copies_[(k - 1) % kMaxCopies];
    text = last.at + last.size;
  }
  text_freed_.store(text, std::memory_order_release);
  freed_.store(k, std::memory_order_release);
}

bool ReverseLineReader::await_break(std::size_t k) {
  if (part_index_->wait_for(k)) return true;
  // The scan is done: what it met is visible now, and an error is the reader's to report.
  if (part_error_) std::rethrow_exception(std::exchange(part_error_, nullptr));
  indexed_ = false;
  return false;
}

void ReverseLineReader::read_block(char* buffer, std::size_t size, off_t at) {
  std::size_t cached = 0;
  if (nowait_) {
    const std::optional<std::size_t> got = pread_cached(fd_, buffer, size, at);
    nowait_ = got.has_value();
    cached = got.value_or(0);
  }
  // A file that cannot say what is cached is taken as cached: asked for nothing.
  readahead_.before_reading(at, !nowait_ || cached == size);
  while (auto ask = readahead_.next_ask(at)) advise_will_need(fd_, ask->offset, ask->length);
  pread_exact(fd_, buffer + cached, size - cached, at + static_cast<off_t>(cached), name_);
}

std::size_t ReverseLineReader::block_for(std::size_t partial) const {
  // A line longer than a block makes the blocks grow with it, so that it is copied and searched
  // a few times in all rather than once per block.
  const off_t want = std::min<off_t>(offset_, static_cast<off_t>(std::max(block_size_, partial)));
  if (block_size_ < kReadAheadMinBlock) return static_cast<std::size_t>(want);
  const off_t start = (offset_ - want) / static_cast<off_t>(kPage) * static_cast<off_t>(kPage);
  return static_cast<std::size_t>(offset_ - start);
}

void ReverseLineReader::read_ahead(std::size_t partial) {
  const std::size_t want = block_for(partial);
  if (spare_.size() < want) spare_.resize(want);
  {
    std::lock_guard lock(mu_);
    ahead_at_ = offset_ - static_cast<off_t>(want);
    ahead_size_ = want;
    requested_ = true;
  }
  if (worker_.joinable()) {
    cv_.notify_all();
  } else {
    worker_ = std::thread([this] { work(); });
  }
}

void ReverseLineReader::wait_ahead() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !requested_; });
  if (ahead_error_) std::rethrow_exception(std::exchange(ahead_error_, nullptr));
}

void ReverseLineReader::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return requested_ || stopping_; });
    if (stopping_) return;
    const off_t at = ahead_at_;
    const std::size_t size = ahead_size_;
    lock.unlock();
    std::exception_ptr error;
    try {
      read_block(spare_.data(), size, at);
    } catch (...) {
      error = std::current_exception();  // handed to the reader's thread, which reports it
    }
    lock.lock();
    ahead_error_ = error;
    requested_ = false;
    cv_.notify_all();
  }
}

std::optional<Line> ReverseLineReader::next() {
  if (finished_) return std::nullopt;
  if (!started_) {
    started_ = true;
    if (offset_ == 0) {
      finished_ = true;
      return std::nullopt;
    }
    refill();
    if (data_[cursor_ - 1] == '\n') --cursor_;  // the final newline ends the last line
  }
  if (indexed_ && static_cast<std::size_t>(offset_) + cursor_ < part_end_) {
    // No view handed out before is in use any more.
    line_copy_ = kNoCopy;
    part_index_->release(part_index_->copies_read());
    const SkipIndex::Copy* copy =
        part_index_->copy_ending(static_cast<std::size_t>(offset_) + cursor_);
    if (copy != nullptr && copy->begin != 0) {  // the file's first line ends the reading below
      line_copy_ = part_index_->copies_read();
      move_block_to(copy->begin - 1);
      return Line{part_index_->text(*copy), ++lines_};
    }
  }
  for (;;) {
    const char* hit = newline_before_cursor();
    if (hit != nullptr || offset_ == 0) {
      const std::size_t begin = hit ? static_cast<std::size_t>(hit - data_) + 1 : 0;
      const Line line = line_between(data_, begin, cursor_);
      ++lines_;
      if (hit) {
        cursor_ = begin - 1;
        unscanned_ = cursor_;
      } else {
        finished_ = true;
        // Every byte has been looked at: a page that vanished on the way now shows.
        if (map_) map_->check();
      }
      return line;
    }
    refill();
  }
}

}  // namespace diskfault
