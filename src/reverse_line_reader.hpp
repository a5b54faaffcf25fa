// Reads a log's lines last line first, block by block with pread, in bounded memory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// Reads the first `size` bytes of an open file from the end towards the start in blocks of
// `block_size` bytes, using pread only (the descriptor's offset is untouched, and nothing is
// mapped, so a file truncated underneath gives an error, not SIGBUS). Memory stays within
// about block_size + the longest line. A final newline ends the last line rather than starting
// an empty one; bytes are not interpreted otherwise (NUL and invalid UTF-8 pass through).
class ReverseLineReader {
 public:
  static constexpr std::size_t kDefaultBlockSize = 256 * 1024;

  // `fd` must stay open while the reader is used; `name` is used in error messages only.
  ReverseLineReader(int fd, off_t size, std::string name,
                    std::size_t block_size = kDefaultBlockSize);

  // The previous line, or nullopt when the start of the file has been passed. Throws
  // std::system_error if the file cannot be read.
  std::optional<Line> next();

  // Lines handed out so far; the file's line count once next() has returned nullopt.
  std::uint64_t line_count() const noexcept { return lines_; }
  // Bytes read from the file so far.
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }

 private:
  void refill();

  int fd_;
  std::string name_;
  std::size_t block_size_;
  std::vector<char> buffer_;
  off_t offset_;            // file offset of buffer_[0]
  std::size_t cursor_ = 0;  // buffer_[0, cursor_) is not handed out yet
  bool started_ = false;
  bool finished_ = false;
  std::uint64_t lines_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace diskfault
