// Reads a log's lines last line first, block by block with pread, in bounded memory.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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
  static constexpr std::size_t kDefaultBlockSize = 1024 * 1024;
  // Blocks at least this large are read one ahead on a second thread while the caller works
  // through the current one; smaller ones (tests use a few bytes) are read in line.
  static constexpr std::size_t kReadAheadMinBlock = 64 * 1024;

  // `fd` must stay open while the reader is used; `name` is used in error messages only.
  ReverseLineReader(int fd, off_t size, std::string name,
                    std::size_t block_size = kDefaultBlockSize);
  ~ReverseLineReader();
  // The read-ahead thread writes into the reader: it stays where it was made.
  ReverseLineReader(const ReverseLineReader&) = delete;
  ReverseLineReader& operator=(const ReverseLineReader&) = delete;

  // The previous line, or nullopt when the start of the file has been passed. Throws
  // std::system_error if the file cannot be read.
  std::optional<Line> next();

  // Lines handed out so far; the file's line count once next() has returned nullopt.
  std::uint64_t line_count() const noexcept { return lines_; }
  // Bytes read from the file so far.
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }

 private:
  void refill();
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
  std::vector<char> buffer_;
  off_t offset_;            // file offset of buffer_[0]
  std::size_t cursor_ = 0;  // buffer_[0, cursor_) is not handed out yet
  // buffer_[0, unscanned_) may hold newlines; past it, up to cursor_, lies a partial line that
  // was searched already (a long line is searched once, not once per block).
  std::size_t unscanned_ = 0;
  bool started_ = false;
  bool finished_ = false;
  std::uint64_t lines_ = 0;
  std::uint64_t bytes_read_ = 0;
  // Reading ahead: one worker thread, started with the first read ahead, and one request at a
  // time, handed over under mu_.
  std::vector<char> spare_;  // the block being read ahead
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // a read of spare_ is asked for or under way
  bool stopping_ = false;
  off_t ahead_at_ = 0;  // where the requested read starts, and how much it reads
  std::size_t ahead_size_ = 0;
  std::exception_ptr ahead_error_;
  std::thread worker_;  // last: it starts after, and is joined before, what it uses goes away
};

}  // namespace diskfault
