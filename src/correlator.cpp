// Segments, presences and bindings: the resolution of one boot's matches into findings.
#include "correlator.hpp"

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>

#include "device_names.hpp"

namespace diskfault {

namespace {
constexpr const char* kAdapterUntied =
    "an adapter's error report that the log does not tie to a drive: no SCSI command line of "
    "one drive just before it";
}  // namespace

namespace {

std::string_view capture(const Match& m, Field f) {
  return m.captures[static_cast<std::size_t>(f)];
}

std::string link_of(std::string_view port) { return std::string(port.substr(0, port.find('.'))); }

bool looks_like_hctl(std::string_view id) { return !id.empty() && id[0] >= '0' && id[0] <= '9'; }

template <typename T>
void keep_newest(std::optional<T>& mine, const std::optional<T>& theirs) {
  if (theirs && (!mine || mine->at.older_than(theirs->at))) mine = theirs;
}

}  // namespace

void BootCorrelator::Facts::state(Field field, std::string_view value, const Position& at,
                                  bool inquiry) {
  if (value.empty()) return;
  Stated stated{std::string(value), at};
  auto newest_into = [&](std::map<std::string, Stated>& all) {
    auto [it, fresh] = all.emplace(stated.value, stated);
    if (!fresh && it->second.at.older_than(at)) it->second = stated;
  };
  switch (field) {
    case Field::kSerial:
      newest_into(serials);
      break;
    case Field::kWwn:
      newest_into(wwns);
      break;
    case Field::kVendor:
      keep_newest(vendor, std::optional<Stated>(stated));
      break;
    case Field::kPci:
      keep_newest(pci, std::optional<Stated>(stated));
      break;
    case Field::kSlot:
      keep_newest(slot, std::optional<Stated>(stated));
      break;
    case Field::kModel: {
      int rank = inquiry ? 1 : 2;
      if (rank > model_rank) {
        model = stated;
        model_rank = rank;
      } else if (rank == model_rank) {
        keep_newest(model, std::optional<Stated>(stated));
      }
      break;
    }
    default:
      break;
  }
}

void BootCorrelator::Facts::merge(const Facts& other) {
  for (auto& [value, stated] : other.serials) state(Field::kSerial, value, stated.at, false);
  for (auto& [value, stated] : other.wwns) state(Field::kWwn, value, stated.at, false);
  keep_newest(vendor, other.vendor);
  keep_newest(pci, other.pci);
  keep_newest(slot, other.slot);
  if (other.model) state(Field::kModel, other.model->value, other.model->at, other.model_rank == 1);
}

void BootCorrelator::Fragment::merge(const Fragment& other) {
  errors.merge(other.errors);
  facts.merge(other.facts);
  names.insert(other.names.begin(), other.names.end());
  partitions.insert(other.partitions.begin(), other.partitions.end());
}

void BootCorrelator::add_unresolved(std::string_view device, std::string reason,
                                    const std::string& kind, const Position& at,
                                    std::string_view text, std::uint64_t lines) {
  auto& u = unresolved_[std::string(device)];
  u.device = device;
  u.reason = std::move(reason);
  u.errors.add(kind, at, text, lines);
}

void BootCorrelator::add(const Match& m) {
  std::string_view device = capture(m, Field::kDevice);
  std::string_view hctl = capture(m, Field::kHctl);
  std::string_view port = capture(m, Field::kPort);
  std::string_view controller = capture(m, Field::kController);
  Position at;
  at.source = source_;
  at.from_end = m.from_end;
  at.time = std::string(m.time);

  if (m.type == EventType::kEpisodeEnd) {
    episodes_[link_of(port)].clear();
    return;
  }
  if (m.type == EventType::kEpisodeStart) {
    // The sd lines logged while libata handled this port's error name the port's address,
    // provided they name exactly one.
    auto it = episodes_.find(link_of(port));
    if (it != episodes_.end()) {
      if (it->second.size() == 1 && port.find('.') != std::string_view::npos) {
        port_locations_[std::string(port)].insert(*it->second.begin());
      }
      episodes_.erase(it);
    }
    return;
  }
  if (m.type == EventType::kError && !m.rule->device_from.empty()) {
    adapter_errors_.push_back(AdapterError{m.rule,
                                           std::string(controller.empty() ? device : controller),
                                           std::string(m.text), at, m.lines});
    return;
  }
  if (!adapter_errors_.empty() && !hctl.empty()) {
    // The command line an adapter's report follows names the drive the report is about.
    std::erase_if(adapter_errors_, [&](const AdapterError& e) {
      if (e.rule->device_from != m.rule->name) return false;
      if (m.from_end - e.at.from_end <= kCommandReportLines) {
        fragments_[{{KeyKind::kLocation, std::string(hctl)}, segment_}].errors.add(
            e.rule->kind, e.at, e.text, e.lines);
      } else {
        add_unresolved(e.adapter, kAdapterUntied, e.rule->kind, e.at, e.text, e.lines);
      }
      return true;
    });
  }
  if (m.type == EventType::kDetach) ++segment_;  // the detach line is the old drive's last word

  std::string disk, partition;
  if (!device.empty()) {
    switch (classify_device(device)) {
      case DeviceClass::kDisk:
        disk = disk_of(device);
        if (disk != device) partition = device;
        break;
      case DeviceClass::kStacked:
      case DeviceClass::kUnknown:
        if (m.type == EventType::kError) {
          add_unresolved(device,
                         classify_device(device) == DeviceClass::kStacked
                             ? "a stacked device (device-mapper or md): the log does not say "
                               "which drive beneath it failed"
                             : "not a disk name diskfault knows",
                         m.rule->kind, at, m.text, m.lines);
        }
        return;
      case DeviceClass::kIgnored:
        if (hctl.empty() && port.empty() && controller.empty()) return;
        break;
    }
  }

  // insert, not emplace: every line of a drive states its binding again, and emplace makes (and
  // drops) a node each time.
  if (!disk.empty() && !hctl.empty()) bindings_.insert({segment_, disk, std::string(hctl)});
  if (std::string nvme = nvme_controller_of(disk); !nvme.empty()) {
    bindings_.insert({segment_, disk, std::move(nvme)});
  }
  if (!port.empty() && !hctl.empty()) port_locations_[std::string(port)].insert(std::string(hctl));
  if (!hctl.empty()) {
    for (auto& [link, addresses] : episodes_) addresses.insert(std::string(hctl));
  }

  Key key;
  if (!hctl.empty()) {
    key = {KeyKind::kLocation, std::string(hctl)};
  } else if (!controller.empty()) {
    key = {KeyKind::kLocation, std::string(controller)};
  } else if (!port.empty()) {
    key = {KeyKind::kPort, std::string(port)};
  } else if (!disk.empty()) {
    key = {KeyKind::kName, disk};
  } else {
    return;
  }
  Fragment& fragment = fragments_[{key, segment_}];
  if (!disk.empty()) fragment.names.insert(disk);
  if (!partition.empty()) fragment.partitions.insert(partition);
  const bool inquiry = !capture(m, Field::kVendor).empty();
  for (Field f :
       {Field::kSerial, Field::kVendor, Field::kModel, Field::kWwn, Field::kPci, Field::kSlot}) {
    fragment.facts.state(f, capture(m, f), at, inquiry);
  }
  if (m.type == EventType::kError) fragment.errors.add(m.rule->kind, at, m.text, m.lines);

  if (m.type == EventType::kAppear || m.type == EventType::kAttach ||
      m.type == EventType::kDetach) {
    boundaries_.push_back({m.from_end, segment_, key, m.type});
  }
  if (m.type == EventType::kAppear || m.type == EventType::kAttach) ++segment_;
}

BootCorrelator::Result BootCorrelator::finish(std::uint32_t boot_from_end,
                                              const std::string& boot_key) {
  for (const AdapterError& e : adapter_errors_) {
    add_unresolved(e.adapter, kAdapterUntied, e.rule->kind, e.at, e.text, e.lines);
  }
  adapter_errors_.clear();
  // Only errors make findings. Most boots of most logs have none: their facts need no resolving.
  const bool any_error =
      !unresolved_.empty() || std::any_of(fragments_.begin(), fragments_.end(),
                                          [](const auto& f) { return !f.second.errors.empty(); });
  if (!any_error) {
    forget();
    return {};
  }
  // A libata port stands for the address it is tied to, when the boot ties it to exactly one.
  std::map<std::string, std::string> port_place;
  for (auto& [port, addresses] : port_locations_) {
    if (addresses.size() == 1) port_place[port] = *addresses.begin();
  }
  auto place_of = [&](const Key& key) -> Key {
    if (key.first == KeyKind::kPort) {
      if (auto it = port_place.find(key.second); it != port_place.end()) {
        return {KeyKind::kLocation, it->second};
      }
    }
    return key;
  };

  // Only a presence that an error lands on is reported, and most presences get none (every drive
  // of the boot has one): the facts, names and ports are gathered only for those that do.
  struct Filled {
    Fragment content;
    std::set<std::string> devices, ports;
  };
  struct Presence {
    Key place;
    std::uint32_t hi = 0, lo = 0;  // segments covered: lo (newest) .. hi (oldest)
    std::unique_ptr<Filled> filled;
  };
  std::vector<Presence> presences;

  // Every place of the boot, in order, and its presences: a run of `presences` per place, found by
  // binary search. Sorted vectors, not maps: those took two fifths of this function's time on a log
  // dense in faults (BENCHMARKS.md, item 35).
  std::vector<Key> places;
  places.reserve(boundaries_.size() + fragments_.size() + bindings_.size());
  for (const Boundary& b : boundaries_) places.push_back(place_of(b.key));
  for (auto& [ks, f] : fragments_) {
    if (ks.first.first != KeyKind::kName) places.push_back(place_of(ks.first));
  }
  for (auto& [segment, disk, location] : bindings_)
    places.push_back({KeyKind::kLocation, location});
  std::sort(places.begin(), places.end());
  places.erase(std::unique(places.begin(), places.end()), places.end());
  auto index_of = [&](const Key& place) -> std::optional<std::size_t> {
    auto it = std::lower_bound(places.begin(), places.end(), place);
    if (it == places.end() || *it != place) return std::nullopt;
    return static_cast<std::size_t>(it - places.begin());
  };
  // Each place's boundaries, oldest first.
  std::vector<std::pair<std::size_t, const Boundary*>> by_place;
  by_place.reserve(boundaries_.size());
  for (const Boundary& b : boundaries_) by_place.emplace_back(*index_of(place_of(b.key)), &b);
  std::sort(by_place.begin(), by_place.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->from_end > b.second->from_end;
  });
  const std::uint32_t oldest = std::numeric_limits<std::uint32_t>::max();
  std::vector<std::size_t> first_presence(places.size() + 1);  // place i's: [first[i], first[i+1])
  auto boundary = by_place.begin();
  for (std::size_t i = 0; i < places.size(); ++i) {
    first_presence[i] = presences.size();
    std::uint32_t hi = oldest;
    bool detached = false;
    for (; boundary != by_place.end() && boundary->first == i; ++boundary) {
      const Boundary* b = boundary->second;
      if (b->type == EventType::kAppear || (b->type == EventType::kAttach && detached)) {
        if (b->segment + 1 <= hi)
          presences.push_back(Presence{places[i], hi, b->segment + 1, nullptr});
        hi = b->segment;
        detached = false;
      } else if (b->type == EventType::kDetach) {
        detached = true;
      }
    }
    presences.push_back(Presence{places[i], hi, 0, nullptr});
  }
  first_presence[places.size()] = presences.size();
  auto presences_of = [&](const Key& place) -> std::span<Presence> {
    auto i = index_of(place);
    if (!i) return {};
    return {presences.data() + first_presence[*i], presences.data() + first_presence[*i + 1]};
  };
  // A place's presences cover its segments newest last, without gaps or overlap: the one that
  // covers `segment` is found by binary search. A walk made a boot in which one drive came and
  // went thousands of times take minutes (BENCHMARKS.md, item 42).
  // `run` holds presences (a place's own) or pointers to them (those a disk name was bound to).
  auto covering = []<class Run>(const Run& run, std::uint32_t segment) -> Presence* {
    auto presence = [](auto& entry) -> Presence& {
      if constexpr (std::is_pointer_v<std::remove_cvref_t<decltype(entry)>>) {
        return *entry;
      } else {
        return entry;
      }
    };
    auto it = std::partition_point(run.begin(), run.end(),
                                   [&](auto& entry) { return presence(entry).lo > segment; });
    return it != run.end() && segment <= presence(*it).hi ? &presence(*it) : nullptr;
  };
  auto find = [&](const Key& place, std::uint32_t segment) {
    return covering(presences_of(place), segment);
  };
  // For a fragment known only by a disk's name: the presences that name was bound to, per place,
  // in the same order.
  std::map<std::string, std::map<std::string, std::vector<Presence*>>> bound;
  for (auto& [b_segment, disk, location] : bindings_) {
    if (Presence* p = find({KeyKind::kLocation, location}, b_segment)) {
      bound[disk][location].push_back(p);
    }
  }
  for (auto& [disk, by_location] : bound) {
    for (auto& [location, bound_presences] : by_location) {
      std::sort(bound_presences.begin(), bound_presences.end(),
                [](const Presence* a, const Presence* b) { return a->lo > b->lo; });
      bound_presences.erase(std::unique(bound_presences.begin(), bound_presences.end()),
                            bound_presences.end());
    }
  }

  // Where each fragment goes; a presence is filled once an error goes there.
  std::map<std::string, Presence> name_only;
  std::vector<std::pair<const Fragment*, Presence*>> targets;
  targets.reserve(fragments_.size());
  for (auto& [key_segment, fragment] : fragments_) {
    const auto& [key, segment] = key_segment;
    Presence* target = nullptr;
    if (key.first != KeyKind::kName) {
      target = find(place_of(key), segment);
    } else {
      // At most one presence of each place covers the segment.
      std::size_t candidates = 0;
      if (auto it = bound.find(key.second); it != bound.end()) {
        for (auto& [location, bound_presences] : it->second) {
          if (Presence* p = covering(bound_presences, segment)) {
            ++candidates;
            target = p;
          }
        }
      }
      if (candidates != 1) {
        Presence& alone = name_only[key.second];
        alone.place = key;
        target = &alone;
      }
    }
    if (!target) continue;
    if (!fragment.errors.empty() && !target->filled) target->filled = std::make_unique<Filled>();
    targets.emplace_back(&fragment, target);
  }

  // A name-only presence's name is among its fragments' names; a port's fragment goes to its own
  // presence, or to its address's, which the ports tied to that address are given here.
  for (auto& [port, location] : port_place) {
    for (Presence& p : presences_of({KeyKind::kLocation, location})) {
      if (p.filled) p.filled->ports.insert(port);
    }
  }
  for (auto& [segment, disk, location] : bindings_) {
    Presence* p = find({KeyKind::kLocation, location}, segment);
    if (p && p->filled) p->filled->devices.insert(disk);
  }
  for (auto& [fragment, target] : targets) {
    if (!target->filled) continue;
    Filled& f = *target->filled;
    f.content.merge(*fragment);
    f.devices.insert(fragment->names.begin(), fragment->names.end());
  }

  Result result;
  auto emit = [&](Presence& presence) {
    if (!presence.filled) return;
    Filled& p = *presence.filled;
    Finding f;
    const Facts& facts = p.content.facts;
    if (facts.serials.size() == 1) {
      f.serial = facts.serials.begin()->second;
    } else if (facts.serials.size() > 1) {
      std::string all;
      for (auto& [value, stated] : facts.serials) all += (all.empty() ? "" : ", ") + value;
      f.notes.push_back("the log states several serials for this drive (" + all +
                        "); none is reported");
    }
    if (facts.wwns.size() == 1) f.wwn = facts.wwns.begin()->second;
    f.vendor = facts.vendor;
    f.model = facts.model;
    f.pci = facts.pci;
    f.slot = facts.slot;
    const auto& [kind, id] = presence.place;
    if (kind == KeyKind::kLocation) {
      if (looks_like_hctl(id)) {
        f.hctl = id;
      } else {
        f.controller = id;
      }
    }
    if (kind == KeyKind::kPort) f.port = id;
    if (!f.port && !p.ports.empty()) f.port = *p.ports.begin();
    f.devices.assign(p.devices.begin(), p.devices.end());
    f.partitions.assign(p.content.partitions.begin(), p.content.partitions.end());
    f.errors = std::move(p.content.errors);
    auto tag = [&](Position& at) { at.boot_from_end = boot_from_end; };
    f.errors.fix_positions(tag);
    for (auto* stated : {&f.serial, &f.vendor, &f.model, &f.wwn, &f.pci, &f.slot}) {
      if (*stated) tag((*stated)->at);
    }
    f.source = source_;
    f.boot_from_end = boot_from_end;
    f.boot_key = boot_key;
    result.drives.push_back(std::move(f));
  };
  for (Presence& p : presences) emit(p);
  for (auto& [name, p] : name_only) emit(p);
  for (auto& [name, u] : unresolved_) {
    u.source = source_;
    u.boot_from_end = boot_from_end;
    u.errors.fix_positions([&](Position& at) { at.boot_from_end = boot_from_end; });
    u.boot_key = boot_key;
    result.unresolved.push_back(std::move(u));
  }

  forget();
  return result;
}

void BootCorrelator::forget() {
  segment_ = 0;
  fragments_.clear();
  bindings_.clear();
  port_locations_.clear();
  episodes_.clear();
  boundaries_.clear();
  unresolved_.clear();
}

}  // namespace diskfault
