// Follow mode: learning the current boot, the stage coroutines, and the poll loop that drives them.
#include "follow.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <variant>
#include <vector>

#include "boot_boundary.hpp"
#include "diagnose.hpp"
#include "file_descriptor.hpp"
#include "follow_correlator.hpp"
#include "follow_event.hpp"
#include "follow_sinks.hpp"
#include "follow_source.hpp"
#include "host_enrich.hpp"
#include "matcher.hpp"
#include "pipeline.hpp"
#include "reverse_line_reader.hpp"

namespace diskfault {
namespace {

using Clock = std::chrono::steady_clock;

// One write per message, so lines from the sink threads do not interleave.
void say(const std::string& text) {
  std::string line = "diskfault: follow: " + text + "\n";
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

// Tells systemd (Type=notify) how we are doing; nothing happens outside systemd.
void notify_systemd(const char* state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (!socket_path || (socket_path[0] != '/' && socket_path[0] != '@')) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::size_t length = std::strlen(socket_path);
  if (length >= sizeof address.sun_path) return;
  std::memcpy(address.sun_path, socket_path, length);
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';  // an abstract socket
  FileDescriptor fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return;
  ::sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL,
           reinterpret_cast<const sockaddr*>(&address),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length));
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// --- What flows between the stages. Views stay valid for the push that carries them. ---

// A line taken apart by its format.
struct Parsed {
  std::string_view text;
  Record record;
  std::string_view device;  // a kmsg record's DEVICE=+scsi:H:C:T:L, or ""
  std::uint64_t number = 0;
};

// A line the rules matched, or the start of a boot.
struct RuleHit {
  bool boundary = false;
  std::size_t rule = 0;
  Captures captures;
  std::string_view time, text;
  std::uint64_t number = 0;
};

// An error line, tied to what it belongs to.
struct Fault {
  std::string key, kind, text, time;
  std::uint64_t number = 0;
};
// The clock reached the end of a quiet period (or the follower is leaving: `final`).
struct Tick {
  bool final = false;
};
// --from-start: report the errors of the current boot learned at start-up.
struct Backlog {};
using FoldInput = std::variant<Fault, Tick, Backlog>;

// What the stages share. It lives in follow()'s frame and outlives every stage, which holds a
// pointer to it.
struct Follower {
  std::string log_name;
  std::shared_ptr<const RuleSet> rules;
  std::optional<LogFormat> format;
  std::optional<ForwardBootTracker> tracker;
  FollowCorrelator correlator{"", ""};
  std::uint64_t lines = 0;  // lines of the stream so far
  std::chrono::seconds quiet_period{600};
  std::optional<Clock::time_point> next_tick;  // when the fold stage wants a Tick
  HostOptions host;
  std::set<std::string> unreadable_said;  // host files already reported as unreadable
};

// The host's serials and slots for what happened in its current boot, as the report adds them
// (following /dev/kmsg always is; a file only under --this-host or a matching boot id).
void add_host_facts(Follower* f, Report& report) {
  for (const std::string& problem : apply_host_facts(report, f->host)) {
    if (f->unreadable_said.insert(problem).second) {
      std::cerr << "diskfault: follow: cannot read " << problem << "\n";
    }
  }
}

void set_format(Follower* f, LogFormat format) {
  f->format = format;
  f->tracker.emplace();
  f->correlator.set_format_name(std::string(format_name(format)));
}

// --- The stages. Each takes its parameters by value; the pointers point into follow()'s frame
// (the Follower, the next stage) and outlive the coroutine. ---

// format: splits each line as the log's format. A kmsg record is held until its continuation
// lines have passed (the batch that read it ends), because its DEVICE= line names its address.
// When the format is not known yet (the file was empty), the first batch decides it.
Consumer<SourceItem> format_stage(Follower* f, Consumer<Parsed>* next) {
  std::vector<std::pair<std::string, std::uint64_t>> undecided;
  std::string held, device;
  std::uint64_t held_number = 0;
  bool holding = false;

  auto release = [&] {
    if (!holding) return;
    holding = false;
    next->push(Parsed{held, parse_line(LogFormat::kKmsg, held), device, held_number});
  };
  auto take = [&](std::string_view text, std::uint64_t number) {
    if (*f->format != LogFormat::kKmsg) {
      next->push(Parsed{text, parse_line(*f->format, text), {}, number});
      return;
    }
    Record record = parse_line(LogFormat::kKmsg, text);
    if (record.kind == RecordKind::kContinuation) {
      if (holding && record.message.starts_with("DEVICE=+scsi:")) {
        device.assign(record.message.substr(13));
      }
      return;
    }
    release();
    held.assign(text);
    held_number = number;
    device.clear();
    holding = true;
  };

  for (;;) {
    SourceItem item = co_await Consumer<SourceItem>::receive();
    if (item.what == SourceItem::What::kLine) f->lines = item.number;
    if (!f->format) {
      if (item.what == SourceItem::What::kLine) {
        undecided.emplace_back(std::string(item.text), item.number);
        continue;
      }
      if (undecided.empty()) continue;
      std::vector<std::string> sample;
      for (auto& [text, number] : undecided) sample.push_back(text);
      set_format(f, detect_format(sample));
      say(f->log_name + " looks like " + std::string(format_name(*f->format)));
      for (auto& [text, number] : undecided) take(text, number);
      undecided.clear();
    } else if (item.what == SourceItem::What::kLine) {
      take(item.text, item.number);
      continue;
    }
    release();  // the batch has ended: a held kmsg record is complete
  }
}

// rules: runs the rules over each message and finds the boot boundaries, as the matcher does.
Consumer<Parsed> rules_stage(Follower* f, Consumer<RuleHit>* next) {
  std::string time_text;  // a kmsg stamp in seconds; the pushed view points here
  for (;;) {
    Parsed p = co_await Consumer<Parsed>::receive();
    if (p.record.kind == RecordKind::kContinuation || p.record.kind == RecordKind::kMeta) continue;
    const RuleSet& rules = *f->rules;
    auto hit = rules.match(p.record);
    const Rule* rule = hit ? &rules.rules()[hit->rule] : nullptr;
    const bool boot_rule = rule && rule->yields == EventType::kBoot;
    if (f->tracker->starts_boot(p.record, boot_rule)) {
      RuleHit boundary;
      boundary.boundary = true;
      boundary.text = p.text;
      boundary.number = p.number;
      next->push(boundary);
    }
    if (!rule || boot_rule) continue;
    RuleHit match;
    match.rule = hit->rule;
    match.captures = hit->captures;
    auto& hctl = match.captures[static_cast<std::size_t>(Field::kHctl)];
    if (hctl.empty() && !p.device.empty()) hctl = p.device;
    match.text = p.text;
    match.number = p.number;
    if (*f->format == LogFormat::kKmsg && !p.record.time.empty()) {
      time_text = kmsg_seconds(p.record.time);
      match.time = time_text;
    } else {
      match.time = p.record.time;
    }
    next->push(match);
  }
}

// correlate: keeps the current boot's matched lines (a boot boundary forgets them) and ties
// each error to the drive it belongs to.
Consumer<RuleHit> correlate_stage(Follower* f, Consumer<FoldInput>* next) {
  for (;;) {
    RuleHit hit = co_await Consumer<RuleHit>::receive();
    if (hit.boundary) {
      f->correlator.start_boot(std::string(hit.text));
      continue;
    }
    RetainedMatch kept;
    kept.rules = f->rules;
    kept.rule = hit.rule;
    for (std::size_t i = 0; i < kFieldCount; ++i) kept.captures[i].assign(hit.captures[i]);
    kept.number = hit.number;
    kept.time.assign(hit.time);
    kept.text.assign(hit.text);
    const Rule& rule = f->rules->rules()[hit.rule];
    f->correlator.retain(std::move(kept));
    if (rule.yields != EventType::kError) continue;
    auto key = f->correlator.newest_error_key();
    if (!key) continue;
    next->push(Fault{std::move(*key), rule.kind, std::string(hit.text), std::string(hit.time),
                     hit.number});
  }
}

// fold: one event per drive and kind per quiet period; what comes in between is counted and
// told when the period ends.
Consumer<FoldInput> fold_stage(Follower* f, Consumer<Published>* next) {
  struct Window {
    Clock::time_point ends;
    std::uint64_t pending = 0;  // lines folded since the last event
    std::string text, time;     // the newest of them
    std::uint64_t number = 0;
    std::shared_ptr<const FollowEvent> last;  // describes the drive if it is gone from the boot
  };
  std::map<std::pair<std::string, std::string>, Window> windows;  // (key, kind) -> window

  // Describes `key` as the current boot's report has it and pushes the event; returns it.
  auto publish = [&](FollowEvent::Reason reason, const std::string& key, const std::string& kind,
                     const std::string& text, const std::string& time, std::uint64_t number,
                     std::uint64_t count, const std::shared_ptr<const FollowEvent>& fallback) {
    auto report = std::make_shared<Report>(f->correlator.report(f->lines));
    auto event = std::make_shared<FollowEvent>();
    // Found by the log's identity first: the host's serial would change the key.
    std::optional<std::size_t> drive, unresolved;
    for (std::size_t i = 0; i < report->drives.size(); ++i) {
      if (fold_key(report->drives[i], f->correlator.boot()) == key) drive = i;
    }
    for (std::size_t i = 0; i < report->unresolved.size(); ++i) {
      if (fold_key(report->unresolved[i], f->correlator.boot()) == key) unresolved = i;
    }
    add_host_facts(f, *report);
    if (drive) event->drive = report->drives[*drive];
    if (unresolved) event->unresolved = report->unresolved[*unresolved];
    if (!event->drive && !event->unresolved && fallback) {
      event->drive = fallback->drive;
      event->unresolved = fallback->unresolved;
    }
    if (!event->drive && !event->unresolved) return std::shared_ptr<const FollowEvent>();
    event->reason = reason;
    event->kind = kind;
    event->line = text;
    event->time = time;
    event->line_number = number;
    event->count = count;
    event->detected_at = wall_seconds();
    event->log = f->log_name;
    std::shared_ptr<const FollowEvent> published = event;
    next->push(Published{published, std::move(report)});
    return published;
  };
  auto schedule = [&] {
    f->next_tick.reset();
    for (auto& [id, w] : windows) {
      if (w.pending > 0 && (!f->next_tick || w.ends < *f->next_tick)) f->next_tick = w.ends;
    }
  };

  for (;;) {
    FoldInput input = co_await Consumer<FoldInput>::receive();
    const Clock::time_point now = Clock::now();
    if (auto* fault = std::get_if<Fault>(&input)) {
      auto id = std::make_pair(fault->key, fault->kind);
      auto it = windows.find(id);
      if (it != windows.end() && now < it->second.ends) {
        Window& w = it->second;
        ++w.pending;
        w.text = std::move(fault->text);
        w.time = std::move(fault->time);
        w.number = fault->number;
      } else {
        auto fallback = it != windows.end() ? it->second.last : nullptr;
        auto event = publish(FollowEvent::Reason::kError, fault->key, fault->kind, fault->text,
                             fault->time, fault->number, 1, fallback);
        if (f->quiet_period.count() > 0 && event) {
          windows.insert_or_assign(id, Window{now + f->quiet_period, 0, {}, {}, 0, event});
        }
      }
    } else if (auto* tick = std::get_if<Tick>(&input)) {
      for (auto it = windows.begin(); it != windows.end();) {
        Window& w = it->second;
        if (!tick->final && now < w.ends) {
          ++it;
          continue;
        }
        if (w.pending == 0 || tick->final) {
          if (w.pending > 0) {
            publish(FollowEvent::Reason::kRepeats, it->first.first, it->first.second, w.text,
                    w.time, w.number, w.pending, w.last);
          }
          it = windows.erase(it);
          continue;
        }
        // The period ended with lines folded: tell them, and fold for another period.
        auto event = publish(FollowEvent::Reason::kRepeats, it->first.first, it->first.second,
                             w.text, w.time, w.number, w.pending, w.last);
        if (event) w.last = event;
        w.pending = 0;
        w.ends = now + f->quiet_period;
        ++it;
      }
    } else {
      // The errors already in the log, one event per drive and kind, from the batch report of
      // the current boot.
      auto report = std::make_shared<Report>(f->correlator.report(f->lines));
      add_host_facts(f, *report);
      auto backlog = [&](const auto& item, auto set) {
        const std::vector<Evidence> evidence = item.errors.evidence();  // `newest` points in
        for (auto& [kind, n] : item.errors.by_kind()) {
          const Evidence* newest = nullptr;
          for (const Evidence& e : evidence) {
            if (e.kind == kind) newest = &e;  // evidence() is oldest first
          }
          auto event = std::make_shared<FollowEvent>();
          set(*event, item);
          event->reason = FollowEvent::Reason::kBacklog;
          event->kind = kind;
          if (newest) {
            event->line = newest->text;
            event->time = newest->at.time;
            event->line_number = newest->at.line;
          }
          event->count = n;
          event->detected_at = wall_seconds();
          event->log = f->log_name;
          std::shared_ptr<const FollowEvent> published = event;
          next->push(Published{published, report});
          std::string key = fold_key(item, f->correlator.boot());
          if (f->quiet_period.count() > 0) {
            windows.insert_or_assign({key, kind},
                                     Window{now + f->quiet_period, 0, {}, {}, 0, published});
          }
        }
      };
      for (const Finding& d : report->drives) {
        backlog(d, [](FollowEvent& e, const Finding& x) { e.drive = x; });
      }
      for (const Unresolved& u : report->unresolved) {
        backlog(u, [](FollowEvent& e, const Unresolved& x) { e.unresolved = x; });
      }
    }
    schedule();
  }
}

// broadcast: every sink gets every item; a sink's queue, not this stage, absorbs its slowness.
Consumer<Published> broadcast_stage(std::vector<QueuedSink*> sinks) {
  for (;;) {
    Published item = co_await Consumer<Published>::receive();
    auto shared = std::make_shared<const Published>(std::move(item));
    for (QueuedSink* sink : sinks) sink->offer(shared);
  }
}

// Reads the log's existing content backwards with the batch matcher, up to the start of the
// current boot, and keeps that boot's matched lines: the identity facts in force. Returns the
// number kept. The tracker is left as if it had read the last existing line.
std::size_t learn(Follower& f, const FollowSource::Backlog& backlog) {
  if (backlog.fd < 0 || backlog.size == 0) return 0;
  std::vector<RetainedMatch> newest_first;
  std::map<std::string, std::size_t> per_entity;
  // Copied, not mapped: the reading mostly stops within the newest boot, before the reader
  // would check that no page of a mapping vanished under it (MappedFile::check()).
  ReverseLineReader reader(backlog.fd, backlog.size, f.log_name,
                           ReverseLineReader::kDefaultBlockSize, ReadMode::kCopy);
  auto matcher = match_lines(reader, *f.format, *f.rules);
  while (Match* m = matcher.send(Want::all())) {
    if (m->type == EventType::kBoot) {
      f.correlator.set_boot_key(std::string(m->text));
      break;
    }
    RetainedMatch kept;
    kept.rules = f.rules;
    kept.rule = static_cast<std::size_t>(m->rule - f.rules->rules().data());
    for (std::size_t i = 0; i < kFieldCount; ++i) kept.captures[i].assign(m->captures[i]);
    kept.number = backlog.lines - m->from_end + 1;
    kept.time.assign(m->time);
    kept.text.assign(m->text);
    // A flood of one error keeps only its newest lines, as FollowCorrelator would.
    if (++per_entity[entity_key(kept)] > FollowCorrelator::kKeepPerEntity) continue;
    newest_first.push_back(std::move(kept));
  }
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
    f.correlator.retain(std::move(*it));
  }

  // The last lines, read forward, set the tracker's clock and its memory of the last sign of a
  // reboot: a log that ends in the prelude of a boot must not see that boot start again when
  // its next sign ("Linux version" after a separator) arrives. What they say is not used.
  constexpr std::size_t kTailLines = 64;
  std::vector<std::string> tail;
  ReverseLineReader tail_reader(backlog.fd, backlog.size, f.log_name, 64 * 1024, ReadMode::kCopy);
  while (tail.size() < kTailLines) {
    auto line = tail_reader.next();
    if (!line) break;
    tail.emplace_back(line->text);
  }
  for (auto it = tail.rbegin(); it != tail.rend(); ++it) {
    Record record = parse_line(*f.format, *it);
    auto hit = f.rules->match(record);
    f.tracker->starts_boot(record, hit && f.rules->rules()[hit->rule].yields == EventType::kBoot);
  }
  return newest_first.size();
}

FileDescriptor signal_descriptor() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  // Blocked before any sink thread starts, so that every thread inherits the mask and the
  // signals wait in the signalfd for the poll loop.
  if (int error = ::pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0) {
    throw std::system_error(error, std::generic_category(), "cannot block signals");
  }
  FileDescriptor fd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) throw_errno("cannot create", "a signalfd");
  return fd;
}

void arm(int timer, const std::optional<Clock::time_point>& when) {
  itimerspec spec{};
  if (when) {
    auto since = when->time_since_epoch();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    spec.it_value.tv_sec = static_cast<time_t>(secs.count());
    spec.it_value.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count());
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  // steady_clock is CLOCK_MONOTONIC, the timer's clock.
  if (::timerfd_settime(timer, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    throw_errno("cannot arm", "the quiet-period timer");
  }
}

}  // namespace

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || value < 0) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  long long scale = 0;
  if (unit.empty() || unit == "s") scale = 1;
  if (unit == "m") scale = 60;
  if (unit == "h") scale = 3600;
  if (unit == "d") scale = 86400;
  if (scale == 0 || value > (1LL << 40) / scale) return std::nullopt;
  return std::chrono::seconds(value * scale);
}

int follow(const FollowOptions& options) {
  FileDescriptor signals = signal_descriptor();
  ::signal(SIGPIPE, SIG_IGN);  // a closed reader shows as EPIPE where we write

  Follower f;
  f.quiet_period = options.quiet_period;
  f.host = options.host;
  f.rules = std::make_shared<const RuleSet>(options.load_rules());
  std::unique_ptr<FollowSource> source =
      options.log.empty() ? follow_kernel_log(say) : follow_file(options.log, say);
  f.log_name = source->name();
  f.correlator = FollowCorrelator(f.log_name, "");
  FollowSource::Backlog backlog = source->backlog();
  f.lines = backlog.lines;
  if (options.log.empty()) {
    set_format(&f, LogFormat::kKmsg);
  } else if (options.format) {
    set_format(&f, *options.format);
  } else if (backlog.fd >= 0 && backlog.size > 0) {
    set_format(&f, detect_source_format(backlog.fd, backlog.size, f.log_name));
  }
  std::size_t learned = 0;
  if (f.format) {
    try {
      learned = learn(f, backlog);
    } catch (const std::system_error& e) {
      // The file was truncated under the scan: what it held is gone; start from nothing.
      say(std::string("could not learn from the existing log: ") + e.what());
    }
  }
  source->release_backlog();

  // The sinks, then the stages from the last to the first: each stage points to the next one,
  // which therefore lives longer.
  std::atomic<bool> stdout_closed = false;
  FileDescriptor wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) throw_errno("cannot create", "an eventfd");
  std::vector<std::unique_ptr<QueuedSink>> sinks;
  sinks.push_back(std::make_unique<QueuedSink>(
      stdout_delivery(STDOUT_FILENO,
                      [&] {
                        stdout_closed = true;
                        std::uint64_t one = 1;
                        [[maybe_unused]] ssize_t ignored = ::write(wake.get(), &one, sizeof one);
                      }),
      options.queue_capacity, say));
  for (const std::string& command : options.exec_commands) {
    sinks.push_back(std::make_unique<QueuedSink>(exec_delivery(command, options.exec_timeout, say),
                                                 options.queue_capacity, say));
  }
  if (!options.textfile_dir.empty()) {
    sinks.push_back(std::make_unique<QueuedSink>(textfile_delivery(options.textfile_dir), 1, say));
  }
  std::vector<QueuedSink*> sink_pointers;
  for (auto& s : sinks) sink_pointers.push_back(s.get());

  Consumer<Published> broadcast = broadcast_stage(sink_pointers);
  Consumer<FoldInput> fold = fold_stage(&f, &broadcast);
  Consumer<RuleHit> correlate = correlate_stage(&f, &fold);
  Consumer<Parsed> rules = rules_stage(&f, &correlate);
  Consumer<SourceItem> format = format_stage(&f, &rules);

  if (!options.textfile_dir.empty()) {
    broadcast.push(Published{nullptr, std::make_shared<Report>(f.correlator.report(f.lines))});
  }
  if (options.from_start) fold.push(Backlog{});

  FileDescriptor timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer.valid()) throw_errno("cannot create", "a timerfd");

  say("following " + f.log_name + " (" +
      (f.format ? std::string(format_name(*f.format)) : std::string("format not known yet")) +
      "): " + std::to_string(f.lines) + " lines there, " + std::to_string(learned) +
      " identity and error lines of the current boot learned");
  notify_systemd("READY=1");

  source->pump(format);  // whatever arrived while we were learning
  arm(timer.get(), f.next_tick);
  bool running = true;
  while (running) {
    pollfd fds[4] = {{signals.get(), POLLIN, 0},
                     {source->poll_fd(), POLLIN, 0},
                     {timer.get(), POLLIN, 0},
                     {wake.get(), POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot wait for", f.log_name);
    }
    if (fds[1].revents) source->pump(format);
    if (fds[2].revents) {
      std::uint64_t expirations = 0;
      [[maybe_unused]] ssize_t ignored = ::read(timer.get(), &expirations, sizeof expirations);
      fold.push(Tick{});
    }
    if (fds[3].revents) {
      std::uint64_t count = 0;
      [[maybe_unused]] ssize_t ignored = ::read(wake.get(), &count, sizeof count);
      bool others = false;
      for (std::size_t i = 1; i < sinks.size(); ++i) others = others || sinks[i]->wants_events();
      if (stdout_closed && !others) {
        say("standard output was closed; leaving");
        running = false;
      }
    }
    if (fds[0].revents) {
      signalfd_siginfo info{};
      while (::read(signals.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGHUP) {
          try {
            f.rules = std::make_shared<const RuleSet>(options.load_rules());
            say("rules reloaded (" + std::to_string(f.rules->rules().size()) + " rules)");
          } catch (const std::exception& e) {
            say(std::string("rules not reloaded, the old ones stay: ") + e.what());
          }
          source->reopen(format);
        } else {
          running = false;
        }
      }
    }
    arm(timer.get(), f.next_tick);
  }

  notify_systemd("STOPPING=1");
  fold.push(Tick{true});  // what the quiet periods folded is told now, not lost
  if (!options.textfile_dir.empty()) {
    broadcast.push(Published{nullptr, std::make_shared<Report>(f.correlator.report(f.lines))});
  }
  const auto deadline = Clock::now() + options.drain_limit;
  for (auto& sink : sinks) sink->finish(deadline);
  if (f.correlator.let_go() > 0) {
    say(std::to_string(f.correlator.let_go()) + " repeated lines were not kept (at most " +
        std::to_string(FollowCorrelator::kKeepPerEntity) + " per device and error)");
  }
  return 0;
}

}  // namespace diskfault
