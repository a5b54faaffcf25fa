// The reverse line reader: memrchr over blocks read backwards, a partial line carried between them.
#include "reverse_line_reader.hpp"

#include <string.h>  // memrchr (a GNU extension, not in <cstring>)

#include <algorithm>
#include <cstring>

#include "file_descriptor.hpp"

namespace diskfault {

ReverseLineReader::ReverseLineReader(int fd, off_t size, std::string name, std::size_t block_size)
    : fd_(fd),
      name_(std::move(name)),
      block_size_(std::max<std::size_t>(block_size, 1)),
      offset_(size) {}

// Prepends the block that precedes buffer_[0] in the file, keeping the unread partial line.
void ReverseLineReader::refill() {
  const std::size_t want = static_cast<std::size_t>(std::min<off_t>(offset_, block_size_));
  const std::size_t keep = cursor_;
  if (buffer_.size() < want + keep) buffer_.resize(want + keep);
  std::memmove(buffer_.data() + want, buffer_.data(), keep);
  offset_ -= static_cast<off_t>(want);
  pread_exact(fd_, buffer_.data(), want, offset_, name_);
  bytes_read_ += want;
  cursor_ = want + keep;
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
    const void* hit = cursor_ ? ::memrchr(buffer_.data(), '\n', cursor_) : nullptr;
    if (hit != nullptr || offset_ == 0) {
      std::size_t begin =
          hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - buffer_.data()) + 1 : 0;
      std::string_view text(buffer_.data() + begin, cursor_ - begin);
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (hit) {
        cursor_ = begin - 1;
      } else {
        finished_ = true;
      }
      return Line{text, ++lines_};
    }
    refill();
  }
}

}  // namespace diskfault
