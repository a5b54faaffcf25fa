// src/hot_functions.txt in the binary: where meson links with it (lld and a static runtime), the
// functions it names lie in the binary in about its order, which is what spares a small log's run
// its page faults (BENCHMARKS.md, item 31).
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#if DISKFAULT_HOT_ORDER

namespace {

// The binary's functions and their addresses, as nm lists them.
std::map<std::string, unsigned long long> function_addresses(const std::string& binary) {
  std::map<std::string, unsigned long long> addresses;
  FILE* nm = ::popen(("nm --defined-only '" + binary + "'").c_str(), "r");
  REQUIRE(nm != nullptr);
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, nm) != nullptr) {
    std::istringstream line(buffer);
    std::string address, type, name;
    if (line >> address >> type >> name && type.size() == 1 &&
        std::string("tTwW").find(type[0]) != std::string::npos) {
      addresses.emplace(name, std::stoull(address, nullptr, 16));
    }
  }
  REQUIRE(::pclose(nm) == 0);
  return addresses;
}

}  // namespace

TEST_CASE("the binary lays out the functions of src/hot_functions.txt in the file's order") {
  const auto addresses = function_addresses(DISKFAULT_BINARY);
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
