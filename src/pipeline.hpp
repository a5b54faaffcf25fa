// A push coroutine (Python's primed coroutine with send()): the stage type of follow's pipeline.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace diskfault {

// A lazily started, move-only consumer of values: the producer calls push(value), the body takes
// it with `T value = co_await Consumer<T>::receive();`, does its one job (often pushing something
// on to the next stage, which it owns) and waits for the next value. push() returns when the body
// waits again, so a whole pipeline runs synchronously on the producer's thread and a value may
// hold views into the producer's buffer: they stay valid for the whole push. An exception
// thrown by the body is rethrown from push(); after the body has returned (or thrown), push()
// returns false and never resumes the dead frame. Destroying the owner destroys the frame and
// with it the stages the body owns.
template <typename T>
class [[nodiscard]] Consumer {
 public:
  struct promise_type {
    std::optional<T> value_;
    std::exception_ptr error_;

    Consumer get_return_object() {
      return Consumer(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error_ = std::current_exception(); }

    // The only thing a body may co_await: the next pushed value. It is there already on the
    // first co_await after a push, so the body suspends only once it has used it.
    struct Receive {};
    struct ReceiveAwaiter {
      promise_type* promise;
      bool await_ready() const noexcept { return promise->value_.has_value(); }
      void await_suspend(std::coroutine_handle<>) const noexcept {}
      T await_resume() const {
        T value = std::move(*promise->value_);
        promise->value_.reset();
        return value;
      }
    };
    ReceiveAwaiter await_transform(Receive) noexcept { return ReceiveAwaiter{this}; }
  };

  static typename promise_type::Receive receive() { return {}; }

  Consumer(Consumer&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Consumer& operator=(Consumer&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer() { reset(); }

  // Hands `value` to the body and runs it until it waits for the next value. Returns false,
  // without running anything, when the body has finished. Rethrows what escaped the body.
  bool push(T value) {
    if (!handle_ || handle_.done()) return false;
    auto& promise = handle_.promise();
    promise.value_.emplace(std::move(value));
    handle_.resume();
    promise.value_.reset();  // a body that returned without taking it leaves nothing behind
    if (auto error = std::exchange(promise.error_, nullptr)) std::rethrow_exception(error);
    return true;
  }

  bool done() const noexcept { return !handle_ || handle_.done(); }

 private:
  explicit Consumer(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  void reset() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace diskfault
