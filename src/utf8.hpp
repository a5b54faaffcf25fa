// UTF-8 hygiene for text that came from a log and goes into a format that must be valid UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace diskfault {

// Returns `text` with every byte that is not part of a well-formed UTF-8 sequence (stray
// continuation bytes, truncated or overlong sequences, surrogates, code points above U+10FFFF)
// replaced by U+FFFD. Valid input comes back unchanged, so the function is idempotent: a string
// that went through it once survives any later round trip through JSON unchanged.
std::string valid_utf8(std::string_view text);

}  // namespace diskfault
