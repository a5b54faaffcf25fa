// Follow events as NDJSON and as environment variables, from the report's own drive fields.
#include "follow_event.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "report_json.hpp"

namespace diskfault {

using nlohmann::ordered_json;

std::string_view reason_name(FollowEvent::Reason reason) {
  switch (reason) {
    case FollowEvent::Reason::kError:
      return "error";
    case FollowEvent::Reason::kRepeats:
      return "repeats";
    case FollowEvent::Reason::kBacklog:
      return "backlog";
  }
  return "?";
}

std::string rfc3339_utc(double seconds) {
  double whole = std::floor(seconds);
  auto millis = static_cast<int>(std::lround((seconds - whole) * 1000));
  if (millis == 1000) {
    whole += 1;
    millis = 0;
  }
  std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[40];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char tail[8];
  std::snprintf(tail, sizeof tail, ".%03dZ", millis);
  return std::string(text, n) + tail;
}

std::string event_json(const FollowEvent& e, std::uint64_t dropped) {
  ordered_json j;
  j["event"] = {
      {"reason", reason_name(e.reason)},
      {"kind", e.kind},
      {"count", e.count},
      {"line", e.line},
      {"line_number", e.line_number},
      {"time", e.time.empty() ? ordered_json(nullptr) : ordered_json(e.time)},
      {"detected_at", rfc3339_utc(e.detected_at)},
      {"log", e.log},
      {"dropped", dropped},
  };
  ordered_json body = e.drive ? drive_json(*e.drive) : unresolved_json(*e.unresolved);
  for (auto& [key, value] : body.items()) j[key] = std::move(value);
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

std::vector<std::string> event_environment(const FollowEvent& e, std::uint64_t dropped) {
  std::vector<std::string> env;
  auto put = [&](const char* name, std::string_view value) {
    value = value.substr(0, value.find('\0'));  // an environment string ends at NUL
    env.push_back(std::string("DISKFAULT_") + name + "=" + std::string(value));
  };
  auto joined = [](const std::vector<std::string>& names) {
    std::string all;
    for (const std::string& n : names) all += (all.empty() ? "" : " ") + n;
    return all;
  };
  auto stated = [](const std::optional<Stated>& s) { return s ? s->value : std::string(); };
  auto plain = [](const std::optional<std::string>& s) { return s ? *s : std::string(); };

  put("REASON", reason_name(e.reason));
  put("KIND", e.kind);
  put("COUNT", std::to_string(e.count));
  put("LINE", e.line);
  put("LINE_NUMBER", std::to_string(e.line_number));
  put("TIME", e.time);
  put("LOG", e.log);
  put("DROPPED", std::to_string(dropped));
  put("DETECTED_AT", rfc3339_utc(e.detected_at));
  if (e.drive) {
    const Finding& f = *e.drive;
    put("SERIAL", stated(f.serial));
    put("DEVICE", joined(f.devices));
    put("PARTITIONS", joined(f.partitions));
    put("HCTL", plain(f.hctl));
    put("MODEL", stated(f.model));
    put("VENDOR", stated(f.vendor));
    put("WWN", stated(f.wwn));
    put("PORT", plain(f.port));
    put("CONTROLLER", plain(f.controller));
    put("SLOT", stated(f.slot));
  } else if (e.unresolved) {
    put("DEVICE", e.unresolved->device);
    for (const char* name :
         {"SERIAL", "PARTITIONS", "HCTL", "MODEL", "VENDOR", "WWN", "PORT", "CONTROLLER", "SLOT"}) {
      put(name, "");
    }
  }
  return env;
}

}  // namespace diskfault
