// The reverse line reader: memrchr over blocks read backwards, a partial line carried between them.
#include "reverse_line_reader.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "file_descriptor.hpp"

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

ReverseLineReader::ReverseLineReader(int fd, off_t size, std::string name, std::size_t block_size)
    : fd_(fd),
      name_(std::move(name)),
      block_size_(std::max<std::size_t>(block_size, 1)),
      offset_(size) {}

ReverseLineReader::~ReverseLineReader() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

// Prepends the block that precedes buffer_[0] in the file, keeping the unread partial line.
void ReverseLineReader::refill() {
  const std::size_t keep = cursor_;
  std::size_t want = block_for(keep);
  if (worker_.joinable()) {
    wait_ahead();  // the worker read the block that ends at offset_ into spare_
    want = ahead_size_;
    spare_.resize(want + keep);
    std::memcpy(spare_.data() + want, buffer_.data(), keep);
    buffer_.swap(spare_);
  } else {
    if (buffer_.size() < want + keep) buffer_.resize(want + keep);
    std::memmove(buffer_.data() + want, buffer_.data(), keep);
    read_block(buffer_.data(), want, offset_ - static_cast<off_t>(want));
  }
  offset_ -= static_cast<off_t>(want);
  bytes_read_ += want;
  cursor_ = want + keep;
  unscanned_ = want;  // the partial line kept has no newline: it was searched already
  // A caller that stops inside the first block (follow mode reading back to the start of the
  // current boot, and then its last 64 lines) never pays for a thread, nor makes glibc's malloc
  // lock for the rest of the run; one that has gone past it is walking the file.
  if (block_size_ >= kReadAheadMinBlock && offset_ > 0 && bytes_read_ > want) read_ahead(keep);
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
    if (buffer_[cursor_ - 1] == '\n') --cursor_;  // the final newline ends the last line
  }
  for (;;) {
    const char* hit = newline_before_cursor();
    if (hit != nullptr || offset_ == 0) {
      const std::size_t begin = hit ? static_cast<std::size_t>(hit - buffer_.data()) + 1 : 0;
      const Line line = line_between(buffer_.data(), begin, cursor_);
      ++lines_;
      if (hit) {
        cursor_ = begin - 1;
        unscanned_ = cursor_;
      } else {
        finished_ = true;
      }
      return line;
    }
    refill();
  }
}

}  // namespace diskfault
