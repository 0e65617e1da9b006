// The suite's three kinds of expected failure, each with its exit status (runner/cli/main.cpp):
// a bad config or command line (2), a bad data file (3), a failed read or write of the suite's
// own files (4). Messages name the file, the key or value, and the fix.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace dyt {

// Where a config value was set: file:line:column, a "--set key=value", or "" when unknown.
struct Origin {
  std::string file;
  int line = 0, column = 0;
  std::string str() const;
};

struct Problem {
  Origin origin;
  std::string key;      // full dotted key path
  std::string message;  // what is wrong and how to fix it
};

// A config error: one or more problems, all reported. Exit status 2.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Problem> problems);
  ConfigError(const Origin& where, const std::string& key, const std::string& message);
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

// A missing, unreadable, truncated or corrupt data file. Exit status 3.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failed read or write of the suite's own files (disk full, permissions). Exit status 4.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dyt
