// Tests of LiteralSearch: the same answer as a plain search for each literal, both ways.
#include "literal_search.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace diskfault;

namespace {

bool plainly_found(const std::vector<std::string>& literals, std::string_view message) {
  if (literals.empty()) return true;
  for (const std::string& literal : literals) {
    if (message.find(literal) != std::string_view::npos) return true;
  }
  return false;
}

// `text` in a heap block of exactly its size, so that ASan reports any read past its end.
struct Exact {
  explicit Exact(const std::string& text) : bytes(new char[text.size()]), size(text.size()) {
    if (size != 0) std::memcpy(bytes.get(), text.data(), size);
  }
  std::string_view view() const { return {bytes.get(), size}; }
  std::unique_ptr<char[]> bytes;
  std::size_t size;
};

// Runs `check` with AVX2 allowed (where the processor has it) and not.
template <class Check>
void both_ways(Check check) {
  for (bool avx2 : {true, false}) {
    CAPTURE(avx2);
    LiteralSearch::allow_avx2(avx2);
    check();
  }
  LiteralSearch::allow_avx2(true);
}

}  // namespace

#if DISKFAULT_AVX2
TEST_CASE("the processor's AVX2 is found where the compiler's own check finds it") {
  // cpu_has_avx2() reads glibc's record where it can; a wrong reading would quietly leave the
  // AVX2 paths unused, which no other test would notice. glibc's tunables may turn a feature off
  // in its record (glibc.cpu.hwcaps=-AVX2), and then the two differ on purpose.
  if (std::getenv("GLIBC_TUNABLES")) {
    MESSAGE("GLIBC_TUNABLES is set: glibc's reading of the processor may differ on purpose");
    return;
  }
  CHECK(cpu_has_avx2() == static_cast<bool>(__builtin_cpu_supports("avx2")));
}
#endif

TEST_CASE("no literals, or an empty one, pass every message") {
  both_ways([] {
    CHECK(LiteralSearch().found_in(""));
    CHECK(LiteralSearch(std::vector<std::string>{})
              .found_in("anything at all, and longer than one window of starts"));
    CHECK(LiteralSearch({"nowhere", ""}).found_in("x"));
  });
}

TEST_CASE("a literal is found at either end of a message, and one byte short of it is not") {
  const std::string filler(70, '.');
  both_ways([&] {
    for (const std::string literal : {"I/O error", "x", "ab", "Filesystem has been shut down"}) {
      CAPTURE(literal);
      const LiteralSearch search({"not here", literal});
      for (std::size_t before = 0; before <= filler.size(); ++before) {
        CAPTURE(before);
        const std::string message = filler.substr(0, before) + literal + filler.substr(before);
        CHECK(search.found_in(Exact(message).view()));
        // The literal cut short by the message's end, and at its start.
        const std::string cut = filler.substr(0, before) + literal.substr(0, literal.size() - 1);
        CHECK_FALSE(search.found_in(Exact(cut).view()));
        const std::string headless = literal.substr(1) + filler.substr(before);
        CHECK_FALSE(search.found_in(Exact(headless).view()));
      }
    }
  });
}

TEST_CASE("first and last bytes that match without the bytes between are not a find") {
  both_ways([] {
    const LiteralSearch search({"Metadata I/O Error"});
    const std::string near =
        std::string(40, ' ') + "Metadata I/O errorMetadata i/O Error" + std::string(40, ' ');
    CHECK_FALSE(search.found_in(Exact(near).view()));
    CHECK(search.found_in(Exact(near + "Metadata I/O Error").view()));
  });
}

TEST_CASE("random literals and messages: the same answer as a search for each literal") {
  std::mt19937 random(20261126);
  // Few bytes, so that literals often nearly match; '\0' and '\xff' as bytes like any other.
  const std::string alphabet("ab \n\0\xff", 6);
  auto text = [&](std::size_t max) {
    std::string s(std::uniform_int_distribution<std::size_t>(0, max)(random), ' ');
    for (char& c : s) c = alphabet[random() % alphabet.size()];
    return s;
  };
  std::size_t found = 0, runs = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::string> literals;
    const auto count = random() % 5;
    for (unsigned i = 0; i < count; ++i) {
      std::string literal = text(40);
      if (literal.empty()) literal = "b";  // an empty one passes everything: tested above
      literals.push_back(literal);
    }
    const LiteralSearch search(literals);
    for (int m = 0; m < 10; ++m) {
      std::string message = text(160);
      // Plant a literal often enough that both answers are common.
      if (!literals.empty() && random() % 2 == 0) {
        const std::string& literal = literals[random() % literals.size()];
        message.insert(random() % (message.size() + 1), literal);
      }
      const Exact exact(message);
      const bool expected = plainly_found(literals, exact.view());
      found += expected;
      ++runs;
      both_ways([&] {
        CAPTURE(message);
        CHECK(search.found_in(exact.view()) == expected);
      });
    }
  }
  // Both answers came up often: the comparison was not one-sided.
  CHECK(found > runs / 4);
  CHECK(found < runs * 3 / 4);
}
