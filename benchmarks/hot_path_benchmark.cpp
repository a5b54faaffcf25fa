// Micro-benchmarks of the per-line hot path: reverse reading, prefix stripping, rule matching.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "line_format.hpp"
#include "literal_search.hpp"
#include "matcher.hpp"
#include "reverse_line_reader.hpp"
#include "rule_prefilter.hpp"
#include "rules.hpp"

namespace diskfault {
namespace {

// Kernel messages of the kinds that fill real logs and match no rule (or only a fact rule).
const std::vector<std::string>& noise_messages() {
  static const std::vector<std::string> messages{
      "[UFW BLOCK] IN=eno1 OUT= MAC=3c:ec:ef:12:34:56:00:1b:21:ab:cd:ef:08:00 SRC=203.0.113.7 "
      "DST=198.51.100.20 LEN=40 TOS=0x00 PREC=0x00 TTL=244 ID=54321 PROTO=TCP SPT=41234 DPT=23 "
      "WINDOW=1024 RES=0x00 SYN URGP=0",
      "audit: type=1400 audit(1700001234.567:8910): apparmor=\"DENIED\" operation=\"open\" "
      "profile=\"/usr/sbin/cupsd\" name=\"/etc/ssl/openssl.cnf\" pid=1234 comm=\"cupsd\" "
      "requested_mask=\"r\" denied_mask=\"r\" fsuid=0 ouid=0",
      "br-1a2b3c4d5e6f: port 3(veth1a2b3c4) entered forwarding state",
      "IPv6: ADDRCONF(NETDEV_CHANGE): veth1a2b3c4: link becomes ready",
      "usb 1-1.2: new high-speed USB device number 12 using xhci_hcd",
      "systemd[1]: Started Session 1234 of User admin.",
      "kauditd_printk_skb: 12 callbacks suppressed",
      "XFS (sdb1): Mounting V5 Filesystem",
      "EXT4-fs (sda2): mounted filesystem with ordered data mode. Quota mode: none.",
      "sda3: WRITE SAME failed. Manually zeroing.",
      "nf_conntrack: nf_conntrack: table full, dropping packet",
      "ata3: SATA link up 6.0 Gbps (SStatus 133 SControl 300)",
  };
  return messages;
}

// The shipped rules' sample lines (the built-in copy leaves them out): every one matches a rule.
std::vector<std::string> matching_messages() {
  std::vector<std::string> lines;
  for (const Rule& rule : load_rules_file(DISKFAULT_SOURCE_ROOT "/rules/default.json")) {
    if (!rule.program.empty()) continue;
    for (const RuleSample& sample : rule.samples) lines.push_back(sample.line);
  }
  return lines;
}

// A dmesg log of `lines` lines, mostly noise with one rule-matching line in 50; each line begins
// with `lead` (a syslog time, host and tag make it a syslog log).
std::string make_log(std::size_t lines, const char* lead = "") {
  std::mt19937 rng(42);
  const auto& noise = noise_messages();
  auto hits = matching_messages();
  std::string text;
  char stamp[32];
  for (std::size_t i = 0; i < lines; ++i) {
    std::snprintf(stamp, sizeof stamp, "[%5zu.%06u] ", 100 + i / 4,
                  static_cast<unsigned>(rng() % 1000000));
    text += lead;
    text += stamp;
    text += rng() % 50 == 0 ? hits[rng() % hits.size()] : noise[rng() % noise.size()];
    text += '\n';
  }
  return text;
}

const RuleSet& default_rule_set() {
  static const RuleSet rules(default_rules());
  return rules;
}

// An unlinked temporary file holding `text`, so the reader runs on a page-cached file.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/diskfault-bench-XXXXXX";
    fd_ = ::mkstemp(name);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
    ::unlink(name);
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw std::system_error(errno, std::generic_category(), "write");
    }
  }
  ~TempFile() { ::close(fd_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

void BM_ReverseLineReader(benchmark::State& state) {
  const std::string text = make_log(200000);
  TempFile file(text);
  for (auto _ : state) {
    ReverseLineReader reader(file.fd(), static_cast<off_t>(text.size()), "bench",
                             static_cast<std::size_t>(state.range(0)));
    std::size_t bytes = 0;
    while (auto line = reader.next()) bytes += line->text.size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 200000));
}
BENCHMARK(BM_ReverseLineReader)->Arg(4096)->Arg(64 * 1024)->Arg(256 * 1024);

void BM_ParseLine(benchmark::State& state, LogFormat format, const char* prefix) {
  std::vector<std::string> lines;
  for (const auto& m : noise_messages()) lines.push_back(prefix + m);
  std::size_t i = 0;
  for (auto _ : state) {
    Record r = parse_line(format, lines[i++ % lines.size()]);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_ParseLine, dmesg, LogFormat::kDmesg, "[12345.678901] ");
BENCHMARK_CAPTURE(BM_ParseLine, syslog, LogFormat::kSyslog,
                  "Nov 22 02:43:01 store-07 kernel: [12345.678901] ");
BENCHMARK_CAPTURE(BM_ParseLine, kmsg, LogFormat::kKmsg, "6,1234,12345678901,-;");

void BM_RuleSetMatch(benchmark::State& state, bool matching) {
  const RuleSet& rules = default_rule_set();
  std::vector<std::string> messages = matching ? matching_messages() : noise_messages();
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    hits += rules.match(messages[i++ % messages.size()], "", true).has_value();
  }
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_RuleSetMatch, noise, false);
BENCHMARK_CAPTURE(BM_RuleSetMatch, matching, true);

// The prefilter's last test: xfs-error's fourteen literals looked for in everyday noise (the
// "XFS (sdb1): Mounting V5 Filesystem" kind reaches it), AVX2 against a search per literal.
void BM_LiteralSearch(benchmark::State& state, bool avx2) {
  std::vector<std::string> literals;
  for (const Rule& rule : default_rules()) {
    if (rule.name == "xfs-error") literals = RulePrefilter::required_literals(rule.pattern);
  }
  const LiteralSearch search(literals);
  LiteralSearch::allow_avx2(avx2);
  const auto& messages = noise_messages();
  std::size_t i = 0, found = 0;
  for (auto _ : state) found += search.found_in(messages[i++ % messages.size()]);
  LiteralSearch::allow_avx2(true);
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_LiteralSearch, avx2, true);
BENCHMARK_CAPTURE(BM_LiteralSearch, per_literal, false);

// Start-up: parsing the built-in rules and compiling them (paid once per run).
void BM_RuleSetCompile(benchmark::State& state) {
  for (auto _ : state) {
    RuleSet rules(default_rules());
    benchmark::DoNotOptimize(rules);
  }
}
BENCHMARK(BM_RuleSetCompile)->Unit(benchmark::kMillisecond);

// The whole matcher over a page-cached log: reader, format, rules, boot tracking.
void BM_Matcher(benchmark::State& state, LogFormat format, const char* lead) {
  const RuleSet& rules = default_rule_set();
  const std::string text = make_log(200000, lead);
  TempFile file(text);
  for (auto _ : state) {
    ReverseLineReader reader(file.fd(), static_cast<off_t>(text.size()), "bench");
    auto matcher = match_lines(reader, format, rules);
    std::size_t matches = 0;
    while (matcher.send(Want::all()) != nullptr) ++matches;
    benchmark::DoNotOptimize(matches);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * 200000));
}
BENCHMARK_CAPTURE(BM_Matcher, dmesg, LogFormat::kDmesg, "")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Matcher, syslog, LogFormat::kSyslog, "Nov 22 02:43:01 node17 kernel: ")
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace diskfault

BENCHMARK_MAIN();
