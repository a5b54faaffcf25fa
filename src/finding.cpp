// Error tallies: counts by kind and a small, representative choice of evidence lines.
#include "finding.hpp"

#include <algorithm>

namespace diskfault {

void ErrorTally::offer(const Evidence& e) {
  if (!first_ || e.at.older_than(first_->at)) first_ = e;
  auto it = newest_by_kind_.find(e.kind);
  if (it == newest_by_kind_.end()) {
    newest_by_kind_.emplace(e.kind, e);
  } else if (it->second.at.older_than(e.at)) {
    it->second = e;
  }
  // newest_ stays sorted newest first and short.
  auto pos = std::find_if(newest_.begin(), newest_.end(),
                          [&](const Evidence& x) { return x.at.older_than(e.at); });
  if (static_cast<std::size_t>(pos - newest_.begin()) < kEvidenceLimit) {
    newest_.insert(pos, e);
    if (newest_.size() > kEvidenceLimit) newest_.pop_back();
  }
}

void ErrorTally::add(const std::string& kind, const Position& at, std::string_view text,
                     std::uint64_t lines) {
  total_ += lines;
  by_kind_[kind] += lines;
  // Copies of the text are made only for lines that can still be chosen: a flood of errors in
  // the backward scan mostly offers lines older than the newest ones, which replace only first_.
  bool wanted = !first_ || at.older_than(first_->at) || newest_.size() < kEvidenceLimit ||
                newest_.back().at.older_than(at) || !newest_by_kind_.contains(kind);
  if (wanted) offer(Evidence{at, kind, std::string(text)});
}

void ErrorTally::merge(const ErrorTally& other) {
  total_ += other.total_;
  for (auto& [kind, n] : other.by_kind_) by_kind_[kind] += n;
  if (other.first_) offer(*other.first_);
  for (auto& [kind, e] : other.newest_by_kind_) offer(e);
  for (auto& e : other.newest_) offer(e);
}

std::vector<Evidence> ErrorTally::evidence() const {
  std::vector<Evidence> chosen;
  auto take = [&](const Evidence& e) {
    if (chosen.size() >= kEvidenceLimit) return;
    for (auto& c : chosen) {
      if (c.at.source == e.at.source && c.at.from_end == e.at.from_end) return;
    }
    chosen.push_back(e);
  };
  if (first_) take(*first_);
  std::vector<const Evidence*> kinds;
  for (auto& [kind, e] : newest_by_kind_) kinds.push_back(&e);
  std::sort(kinds.begin(), kinds.end(),
            [](const Evidence* a, const Evidence* b) { return b->at.older_than(a->at); });
  for (auto* e : kinds) take(*e);
  for (auto& e : newest_) take(e);
  std::sort(chosen.begin(), chosen.end(),
            [](const Evidence& a, const Evidence& b) { return a.at.older_than(b.at); });
  return chosen;
}

}  // namespace diskfault
