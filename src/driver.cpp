// The driver generator: one backward pass, boot by boot.
#include "driver.hpp"

#include "correlator.hpp"

namespace diskfault {

Generator<Traced> trace_drives(SendGenerator<Match, Want> matcher, std::size_t source,
                               TraceStats* stats) {
  BootCorrelator boot(source);
  std::uint32_t boot_from_end = 0;
  // The seed's driver asks for one thing at a time and so skips every error between an error
  // and the serial line it then looks for. Here every event type stays wanted for the whole pass:
  // an identity line after an error counts as much as one before it, and any error may still be
  // met, so there is nothing the matcher could safely skip.
  const Want want = Want::all();
  while (Match* match = matcher.send(want)) {
    if (match->type != EventType::kBoot) {
      boot.add(*match);
      continue;
    }
    if (stats) ++stats->boots;
    auto result = boot.finish(boot_from_end, std::string(match->text));
    ++boot_from_end;
    for (Finding& f : result.drives) co_yield Traced(std::move(f));
    for (Unresolved& u : result.unresolved) co_yield Traced(std::move(u));
  }
}

}  // namespace diskfault
