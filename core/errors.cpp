// Messages of the suite's errors (core/errors.h).
#include "core/errors.h"

#include <fmt/format.h>

namespace dyt {

std::string Origin::str() const {
  if (file.empty()) return "<default>";
  if (line <= 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

namespace {
std::string format_problems(const std::vector<Problem>& ps) {
  std::string out = ps.size() == 1 ? "config error:" : fmt::format("config errors ({}):", ps.size());
  for (const auto& p : ps) {
    out += "\n  " + p.origin.str() + ": ";
    if (!p.key.empty()) out += p.key + ": ";
    out += p.message;
  }
  return out;
}
}  // namespace

ConfigError::ConfigError(std::vector<Problem> problems)
    : std::runtime_error(format_problems(problems)), problems_(std::move(problems)) {}

ConfigError::ConfigError(const Origin& where, const std::string& key, const std::string& message)
    : ConfigError(std::vector<Problem>{Problem{where, key, message}}) {}

}  // namespace dyt
