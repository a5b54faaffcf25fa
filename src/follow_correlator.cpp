// Replaying the current boot's matched lines through the batch correlator.
#include "follow_correlator.hpp"

#include <iterator>

namespace diskfault {
std::string entity_key(const RetainedMatch& m) {
  std::string key = m.rules->rules()[m.rule].name;
  for (const std::string& c : m.captures) {
    key += '\x1f';
    key += c;
  }
  return key;
}

FollowCorrelator::FollowCorrelator(std::string source_name, std::string format_name)
    : source_name_(std::move(source_name)), format_name_(std::move(format_name)) {}

void FollowCorrelator::start_boot(std::string boot_key) {
  boot_key_ = std::move(boot_key);
  ++boot_;
  matches_.clear();
  by_entity_.clear();
  key_cache_.clear();
  newest_entity_.clear();
}

void FollowCorrelator::retain(RetainedMatch match) {
  std::string entity = entity_key(match);
  const bool error = match.rules->rules()[match.rule].yields == EventType::kError;
  // An identity line may change what any error resolves to; so may an error never seen before
  // (one that names a disk and its address binds them). A repeat of a known error does not.
  if (!error || !key_cache_.contains(entity)) key_cache_.clear();

  auto& numbers = by_entity_[entity];
  numbers.push_back(match.number);
  if (numbers.size() > kKeepPerEntity) {
    // The second oldest line goes and the oldest counts it: under a flood the entity keeps its
    // first line (first seen stays true), its newest lines, and a true total.
    const auto second = std::next(numbers.begin());
    auto gone = matches_.find(*second);
    const std::uint64_t lines = gone->second.lines;
    matches_.erase(gone);
    numbers.erase(second);
    matches_.at(numbers.front()).lines += lines;
    ++let_go_;
  }
  matches_.insert_or_assign(match.number, std::move(match));
  newest_entity_ = std::move(entity);
}

BootCorrelator::Result FollowCorrelator::replay(std::uint64_t newest) const {
  BootCorrelator correlator(0);
  for (auto it = matches_.rbegin(); it != matches_.rend(); ++it) {
    const RetainedMatch& m = it->second;
    const Rule& rule = m.rules->rules()[m.rule];
    Match view;
    view.type = rule.yields;
    view.rule = &rule;
    for (std::size_t i = 0; i < kFieldCount; ++i) view.captures[i] = m.captures[i];
    view.from_end = newest - m.number + 1;
    view.time = m.time;
    view.text = m.text;
    view.lines = m.lines;
    correlator.add(view);
  }
  return correlator.finish(0, boot_key_);
}

std::optional<std::string> FollowCorrelator::newest_error_key() {
  if (matches_.empty()) return std::nullopt;
  if (auto it = key_cache_.find(newest_entity_); it != key_cache_.end()) return it->second;
  // The newest match is the error asked about: from the end, it is line 1.
  auto result = replay(matches_.rbegin()->first);
  std::optional<std::string> key;
  for (const Finding& f : result.drives) {
    if (f.errors.last().from_end == 1) key = fold_key(f, boot_);
  }
  for (const Unresolved& u : result.unresolved) {
    if (u.errors.last().from_end == 1) key = fold_key(u, boot_);
  }
  key_cache_.emplace(newest_entity_, key);
  return key;
}

Report FollowCorrelator::report(std::uint64_t lines) const {
  if (!matches_.empty()) lines = std::max(lines, matches_.rbegin()->first);
  auto result = replay(lines);
  ReportBuilder builder;
  std::size_t index = builder.add_source(source_name_, format_name_);
  for (Finding& f : result.drives) builder.add(std::move(f));
  for (Unresolved& u : result.unresolved) builder.add(std::move(u));
  builder.finish_source(index, lines, boot_);
  return std::move(builder).build();
}

std::string fold_key(const Finding& f, std::uint32_t boot) {
  if (f.serial) return "serial " + f.serial->value;
  std::string in_boot = "boot " + std::to_string(boot) + " ";
  if (f.hctl) return in_boot + "hctl " + *f.hctl;
  if (f.controller) return in_boot + "controller " + *f.controller;
  if (f.port) return in_boot + "port " + *f.port;
  std::string devices;
  for (const std::string& d : f.devices) devices += " " + d;
  return in_boot + "device" + devices;
}

std::string fold_key(const Unresolved& u, std::uint32_t boot) {
  return "boot " + std::to_string(boot) + " unresolved " + u.device;
}

}  // namespace diskfault
