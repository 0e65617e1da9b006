// The property the config fuzzer checks, shared with the unit tests that replay the corpus and
// every input the fuzzer ever crashed on (tests/fuzz/regressions/).
//  - No input crashes, hangs, or escapes as anything but ConfigError.
//  - Whatever decodes cleanly encodes to YAML that decodes to the same config, so a resolved
//    config.yaml can always be read back.
// Input: YAML text, optionally with lines "#--set a.b=v" (command-line overrides).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runner/experiment/config.h"
#include "runner/experiment/experiment.h"

namespace dyt::fuzz {

inline std::string resolved_yaml(ExperimentConfig& cfg) {
  return to_yaml_string(encode_config([&](FieldVisitor& v) { cfg.visit(v); }));
}

inline void check_config_text(const std::string& text) {
  std::vector<std::string> sets;
  for (size_t pos = text.find("#--set "); pos != std::string::npos; pos = text.find("#--set ", pos + 1)) {
    size_t end = text.find('\n', pos);
    sets.push_back(text.substr(pos + 7, end == std::string::npos ? std::string::npos : end - pos - 7));
  }
  try {
    Experiment e = experiment_from_tree("fuzz", "fuzz.yaml", parse_config_text(text, "fuzz.yaml"));
    PlanRequest req;
    req.sets = sets;
    req.out = "/nonexistent";
    for (auto& run : plan_runs(e, req)) {
      const std::string once = resolved_yaml(run.config);
      ExperimentConfig again;
      decode_config(parse_config_text(once, "resolved.yaml"), [&](FieldVisitor& v) { again.visit(v); });
      if (resolved_yaml(again) != once) {
        std::fprintf(stderr, "round trip changed the config:\n%s\n---\n%s\n", once.c_str(), resolved_yaml(again).c_str());
        std::abort();
      }
    }
  } catch (const ConfigError&) {
    // the expected way to reject bad input
  }
}

}  // namespace dyt::fuzz
