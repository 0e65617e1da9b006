// libFuzzer target for the config path: YAML text -> ConfigTree (dotted keys, merges) ->
// variants x --set overrides -> typed ExperimentConfig -> resolved YAML -> decoded again.
// The property is in config_property.h.
//   make fuzz   (a bounded run; corpus in tests/fuzz/corpus, crashes saved to tests/fuzz/regressions)
#include <cstdint>
#include <string>

#include "tests/fuzz/config_property.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dyt::fuzz::check_config_text(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
