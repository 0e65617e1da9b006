// Name -> entry tables for norms, models, datasets and tasks.
// One small template serves all of them so that every registry reports an unknown name the same
// way: the name, the nearest known one, and the full list. Built-ins are registered explicitly
// (see register_builtin_* functions) because static-initialiser registration is dropped when
// linking static libraries.
#pragma once

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyt {

// Levenshtein distance, used to suggest the nearest known name.
inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate closest to `name`, or "" when none is plausibly a typo of it.
inline std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  if (best.empty() || best_d > std::max<size_t>(2, name.size() / 3)) return "";
  return best;
}

inline std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// "unknown norm 'dytt' (did you mean 'dyt'?); known: dyt, layernorm, rmsnorm"
inline std::string unknown_name_message(const std::string& what, const std::string& name,
                                        const std::vector<std::string>& known) {
  std::string msg = "unknown " + what + " '" + name + "'";
  std::string near = nearest_name(name, known);
  if (!near.empty()) msg += " (did you mean '" + near + "'?)";
  return msg + "; known: " + join(known);
}

template <class Entry>
class Registry {
 public:
  explicit Registry(std::string what) : what_(std::move(what)) {}

  void add(const std::string& name, Entry entry) {
    if (!entries_.emplace(name, std::move(entry)).second)
      throw std::logic_error(what_ + " '" + name + "' registered twice");
  }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const Entry& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) throw std::invalid_argument(unknown_name_message(what_, name, names()));
    return it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : entries_) out.push_back(kv.first);
    return out;
  }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::string& what() const { return what_; }

 private:
  std::string what_;
  std::map<std::string, Entry> entries_;
};

}  // namespace dyt
