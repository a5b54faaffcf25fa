// src/hot_functions.txt in the binary: where meson links with it (lld and a static runtime), the
// functions it names lie in the binary in about its order, which is what spares a small log's run
// its page faults (BENCHMARKS.md, item 31).
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "test_support.hpp"

#if DISKFAULT_HOT_ORDER

TEST_CASE("the binary lays out the functions of src/hot_functions.txt in the file's order") {
  const auto addresses = diskfault::test::function_addresses(DISKFAULT_BINARY);
  std::ifstream list(DISKFAULT_SOURCE_ROOT "/src/hot_functions.txt");
  REQUIRE(list);
  std::vector<unsigned long long> placed;  // the named functions' addresses, in the file's order
  for (std::string name; std::getline(list, name);) {
    if (name.empty() || name[0] == '#') continue;
    if (auto it = addresses.find(name); it != addresses.end()) placed.push_back(it->second);
  }
  // Most of the list names functions of this build (a stale list would name fewer).
  REQUIRE(placed.size() >= 300);
  std::size_t ascending = 0;
  for (std::size_t i = 1; i < placed.size(); ++i) ascending += placed[i] >= placed[i - 1];
  // Not every pair: a section that holds several functions (RE2's and glibc's objects are not
  // split into one section a function) moves whole. In the usual layout about half the pairs
  // ascend (48% in the build before item 31), with the order 86%.
  const double share = static_cast<double>(ascending) / static_cast<double>(placed.size() - 1);
  INFO("ascending pairs: " << ascending << " of " << placed.size() - 1);
  CHECK(share >= 0.7);
}

#endif
