// Follow mode's sinks: standard output, --exec commands and the Prometheus textfile, each behind a
// queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "file_descriptor.hpp"
#include "follow_event.hpp"
#include "report.hpp"

namespace diskfault {

// What the broadcast stage hands every sink: an event (null when only the report changed, as at
// start-up) and the current boot's report (null when unchanged).
struct Published {
  std::shared_ptr<const FollowEvent> event;
  std::shared_ptr<const Report> report;
};

// How one sink delivers; called on the sink's own thread only.
class Delivery {
 public:
  virtual ~Delivery() = default;
  // What the sink calls itself in messages ("standard output", "--exec 'page-oncall'").
  virtual std::string name() const = 0;
  // True for a sink of reports (the textfile): it takes the items with a report, and only the
  // newest queued one matters, so a full queue replaces rather than drops. Otherwise the sink
  // takes the items with an event.
  virtual bool wants_reports() const { return false; }
  // Delivers `item`; `dropped` events were dropped since the last delivery. Must give up soon
  // after `abort_fd` becomes readable (the follower is leaving and the sink is too slow). May
  // throw: the message is reported and the sink goes on with the next item.
  virtual void deliver(const Published& item, std::uint64_t dropped, int abort_fd) = 0;
};

// One sink: a bounded queue and a thread that empties it, so that a slow or failing sink never
// holds up the reading of the log or the other sinks. When the queue is full, new events are
// dropped and counted: the count is said on stderr when dropping starts and when it ends, handed
// to the next delivered event, and said again at exit.
class QueuedSink {
 public:
  using Say = std::function<void(const std::string&)>;  // must be callable from any thread

  QueuedSink(std::unique_ptr<Delivery> delivery, std::size_t capacity, Say say);
  ~QueuedSink();  // finishes at once (see finish()) if finish() was not called
  QueuedSink(const QueuedSink&) = delete;
  QueuedSink& operator=(const QueuedSink&) = delete;

  // Queues `item` if the sink wants it; never blocks.
  void offer(const std::shared_ptr<const Published>& item);
  // Stops taking items and delivers what is queued until `deadline`; then interrupts the
  // delivery in progress, drops the rest and joins the thread.
  void finish(std::chrono::steady_clock::time_point deadline);

  std::uint64_t dropped() const;
  bool wants_events() const { return !reports_; }
  std::string name() const { return delivery_->name(); }

 private:
  void run();

  std::unique_ptr<Delivery> delivery_;
  std::size_t capacity_;
  Say say_;
  bool reports_ = false;
  FileDescriptor abort_;  // an eventfd: readable once the deliveries must give up
  mutable std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::deque<std::shared_ptr<const Published>> queue_;
  bool stopping_ = false, aborted_ = false, done_ = false;
  std::uint64_t dropped_total_ = 0, dropped_streak_ = 0;
  std::thread worker_;
};

// Writes each event as one NDJSON line to `fd` (standard output). Calls `closed` once when the
// reader has gone away (EPIPE); later events are ignored.
std::unique_ptr<Delivery> stdout_delivery(int fd, std::function<void()> closed);

// Runs `/bin/sh -c command` for each event, with the event's JSON on its standard input, its
// fields in the environment (event_environment()), its standard output sent to our standard
// error (standard output carries the NDJSON stream), in a process group of its own, with default
// signal handling. One command at a time per sink; a non-zero exit is reported on stderr. A
// command still running after `timeout` (0: no limit) is killed with its process group.
std::unique_ptr<Delivery> exec_delivery(std::string command, std::chrono::seconds timeout,
                                        QueuedSink::Say say);

// Keeps `directory`/diskfault.prom (node_exporter's textfile collector) equal to the current
// boot's report, replacing it atomically.
std::unique_ptr<Delivery> textfile_delivery(std::string directory);

}  // namespace diskfault
