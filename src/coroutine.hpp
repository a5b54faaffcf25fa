// Coroutine owners: a pull generator and a send()-style generator (Python's generator.send).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <utility>

namespace diskfault {

// A lazily started, move-only pull generator. next() resumes the body until its next co_yield and
// returns a pointer to the yielded value, or nullptr once the body has finished. The pointer stays
// valid until the following next() call. An exception thrown by the body is rethrown from next().
template <typename T>
class [[nodiscard]] Generator {
 public:
  struct promise_type {
    T* current_ = nullptr;
    std::exception_ptr error_;

    Generator get_return_object() {
      return Generator(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    // The yielded object lives in the coroutine frame until the body resumes, so a pointer to
    // it is enough; nothing is copied.
    std::suspend_always yield_value(T& value) noexcept {
      current_ = &value;
      return {};
    }
    std::suspend_always yield_value(T&& value) noexcept {
      current_ = &value;
      return {};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error_ = std::current_exception(); }
  };

  Generator(Generator&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  ~Generator() { reset(); }

  // Resumes the body. Returns the next value, or nullptr when the body has returned (and on
  // every later call). Rethrows an exception that escaped the body.
  T* next() {
    if (!handle_ || handle_.done()) return nullptr;
    handle_.promise().current_ = nullptr;
    handle_.resume();
    if (auto error = std::exchange(handle_.promise().error_, nullptr))
      std::rethrow_exception(error);
    return handle_.done() ? nullptr : handle_.promise().current_;
  }

  bool done() const noexcept { return !handle_ || handle_.done(); }

 private:
  explicit Generator(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  std::coroutine_handle<promise_type> handle_;
};

// A lazily started, move-only coroutine that takes a Request at every resumption and yields a
// Reply, like Python's generator.send(). Inside the body, `Request r = co_await first_request();`
// reads what the first send() passed, and `r = co_yield reply;` hands out a reply and receives the
// next request. send() returns a pointer to the reply (valid until the next send()) or nullptr once
// the body has finished; sending to a finished coroutine returns nullptr again, it never resumes a
// dead frame. An exception thrown by the body is rethrown from send().
template <typename Reply, typename Request>
class [[nodiscard]] SendGenerator {
 public:
  struct promise_type {
    Reply* current_ = nullptr;
    std::optional<Request> request_;
    std::exception_ptr error_;

    SendGenerator get_return_object() {
      return SendGenerator(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }

    struct YieldAwaiter {
      promise_type* promise;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<>) const noexcept {}
      Request await_resume() const { return std::move(*promise->request_); }
    };
    YieldAwaiter yield_value(Reply& value) noexcept {
      current_ = &value;
      return YieldAwaiter{this};
    }
    YieldAwaiter yield_value(Reply&& value) noexcept {
      current_ = &value;
      return YieldAwaiter{this};
    }

    // co_await first_request() inside the body: reads the request that started it without
    // suspending.
    struct FirstRequest {};
    struct FirstRequestAwaiter {
      promise_type* promise;
      bool await_ready() const noexcept { return true; }
      void await_suspend(std::coroutine_handle<>) const noexcept {}
      Request await_resume() const { return std::move(*promise->request_); }
    };
    FirstRequestAwaiter await_transform(FirstRequest) noexcept { return FirstRequestAwaiter{this}; }

    void return_void() noexcept {}
    void unhandled_exception() noexcept { error_ = std::current_exception(); }
  };

  static typename promise_type::FirstRequest first_request() { return {}; }

  SendGenerator(SendGenerator&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  SendGenerator& operator=(SendGenerator&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  SendGenerator(const SendGenerator&) = delete;
  SendGenerator& operator=(const SendGenerator&) = delete;
  ~SendGenerator() { reset(); }

  // Passes `request` to the body, resumes it until its next co_yield and returns the reply, or
  // nullptr when the body has returned (now or before).
  Reply* send(Request request) {
    if (!handle_ || handle_.done()) return nullptr;
    auto& promise = handle_.promise();
    promise.request_ = std::move(request);
    promise.current_ = nullptr;
    handle_.resume();
    if (auto error = std::exchange(promise.error_, nullptr)) std::rethrow_exception(error);
    return handle_.done() ? nullptr : promise.current_;
  }

  bool done() const noexcept { return !handle_ || handle_.done(); }

 private:
  explicit SendGenerator(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace diskfault
