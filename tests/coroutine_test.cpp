// Tests of the coroutine owners: laziness, values, exceptions, the end.
#include "coroutine.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <type_traits>

using diskfault::Generator;
using diskfault::SendGenerator;

namespace {

Generator<int> count_to(int n, bool* started) {
  *started = true;
  for (int i = 1; i <= n; ++i) co_yield i;
}

Generator<int> throw_after_first() {
  co_yield 1;
  throw std::runtime_error("boom");
}

// Echoes each request back with a running total, like a tally.
SendGenerator<int, int> tally() {
  int total = co_await SendGenerator<int, int>::first_request();
  for (;;) {
    int more = co_yield total;
    if (more < 0) co_return;
    total += more;
  }
}

SendGenerator<std::string, int> fail_on_second_request() {
  int first = co_await SendGenerator<std::string, int>::first_request();
  co_yield std::to_string(first);
  throw std::logic_error("second request refused");
}

}  // namespace

static_assert(!std::is_copy_constructible_v<Generator<int>>);
static_assert(std::is_nothrow_move_constructible_v<Generator<int>>);
static_assert(!std::is_copy_constructible_v<SendGenerator<int, int>>);

TEST_CASE("a generator doesn't start until it is first resumed") {
  bool started = false;
  auto g = count_to(3, &started);
  CHECK_FALSE(started);
  REQUIRE(g.next() != nullptr);
  CHECK(started);
}

TEST_CASE("a generator yields its values in order, then nullptr for good") {
  bool started = false;
  auto g = count_to(3, &started);
  int sum = 0;
  while (int* v = g.next()) sum = sum * 10 + *v;
  CHECK(sum == 123);
  CHECK(g.done());
  CHECK(g.next() == nullptr);
}

TEST_CASE("throwing after the first element rethrows out of next()") {
  auto g = throw_after_first();
  REQUIRE(g.next() != nullptr);
  CHECK_THROWS_WITH_AS(g.next(), "boom", std::runtime_error);
  CHECK(g.next() == nullptr);
}

TEST_CASE("a moved-from generator is empty and safe to destroy") {
  bool started = false;
  auto a = count_to(2, &started);
  auto b = std::move(a);
  CHECK(a.done());
  CHECK(a.next() == nullptr);
  REQUIRE(b.next() != nullptr);
}

TEST_CASE("send() passes the first request in and every later one through co_yield") {
  auto t = tally();
  REQUIRE(t.send(5) != nullptr);
  CHECK(*t.send(0) == 5);
  CHECK(*t.send(3) == 8);
  CHECK(*t.send(2) == 10);
}

TEST_CASE("send() after the body has returned says so with nullptr, repeatedly") {
  auto t = tally();
  t.send(1);
  CHECK(t.send(-1) == nullptr);
  CHECK(t.done());
  CHECK(t.send(4) == nullptr);
}

TEST_CASE("an exception on resumption is rethrown from send()") {
  auto g = fail_on_second_request();
  std::string* first = g.send(42);
  REQUIRE(first != nullptr);
  CHECK(*first == "42");
  CHECK_THROWS_AS(g.send(1), std::logic_error);
  CHECK(g.send(1) == nullptr);
}
