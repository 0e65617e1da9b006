// YAML configs: base: chains, dotted keys, --set overrides, origins, and the typed decoder (config.h).
#include "runner/experiment/config.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "core/registry.h"

namespace dyt {
namespace fs = std::filesystem;

// ---- key paths and origins -----------------------------------------------------------------------
namespace {

std::string join_key(const std::string& prefix, const std::string& key) { return prefix.empty() ? key : prefix + "." + key; }

bool has_prefix(const std::string& key, const std::string& prefix) {
  return key == prefix || (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
                           key[prefix.size()] == '.');
}

void erase_origins(std::map<std::string, Origin>& origins, const std::string& prefix) {
  for (auto it = origins.begin(); it != origins.end();) {
    if (has_prefix(it->first, prefix)) it = origins.erase(it);
    else ++it;
  }
}

std::vector<std::string> split_dots(const std::string& key) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : key) {
    if (c == '.') parts.push_back(cur), cur.clear();
    else cur += c;
  }
  parts.push_back(cur);
  return parts;
}

Origin mark_origin(const std::string& file, const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  return Origin{file, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0};
}

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Scalar: return "a scalar";
    default: return "nothing";
  }
}

// Copies `src` (a mapping) into `dst` (a mapping) at `prefix`: dotted keys become nested
// mappings, mappings merge, anything else replaces; origins are recorded per key.
void absorb(YAML::Node dst, const YAML::Node& src, const std::string& prefix, const std::string& file,
            std::map<std::string, Origin>& origins, std::vector<Problem>& problems) {
  for (const auto& kv : src) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      problems.push_back({mark_origin(file, kv.first), prefix, "mapping keys must be non-empty plain names"});
      continue;
    }
    const std::vector<std::string> parts = split_dots(kv.first.Scalar());
    YAML::Node cur;
    cur.reset(dst);
    std::string path = prefix;
    bool bad = false;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (parts[i].empty()) bad = true;
      path = join_key(path, parts[i]);
      if (!cur[parts[i]].IsDefined() || !cur[parts[i]].IsMap()) {
        cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
        erase_origins(origins, path);
        origins[path] = mark_origin(file, kv.first);
      }
      YAML::Node next = cur[parts[i]];
      cur.reset(next);
    }
    const std::string& leaf = parts.back();
    if (bad || leaf.empty()) {
      problems.push_back({mark_origin(file, kv.first), kv.first.Scalar(), "empty part in dotted key"});
      continue;
    }
    path = join_key(path, leaf);
    const YAML::Node& value = kv.second;
    if (value.IsMap()) {
      if (!cur[leaf].IsDefined() || !cur[leaf].IsMap()) {
        cur[leaf] = YAML::Node(YAML::NodeType::Map);
        erase_origins(origins, path);
      }
      origins[path] = mark_origin(file, kv.first);
      absorb(cur[leaf], value, path, file, origins, problems);
    } else {
      cur[leaf] = YAML::Clone(value);
      erase_origins(origins, path);
      origins[path] = mark_origin(file, value.IsNull() ? kv.first : value);
    }
  }
}

ConfigTree tree_from_node(const YAML::Node& node, const std::string& file) {
  ConfigTree t;
  std::vector<Problem> problems;
  if (node.IsDefined() && !node.IsNull()) {
    if (!node.IsMap())
      throw ConfigError(mark_origin(file, node), "", std::string("the top level must be a mapping of keys, found ") +
                                                         node_kind(node));
    absorb(t.root, node, "", file, t.origins, problems);
  }
  if (!problems.empty()) throw ConfigError(problems);
  return t;
}

void merge_map(YAML::Node dst, const YAML::Node& src, const std::string& prefix,
               const std::map<std::string, Origin>& src_origins, std::map<std::string, Origin>& dst_origins) {
  for (const auto& kv : src) {
    const std::string key = kv.first.Scalar();
    const std::string path = join_key(prefix, key);
    auto it = src_origins.find(path);
    if (kv.second.IsNull()) {  // `key: ~` in a later file removes what earlier ones set
      dst.remove(key);
      erase_origins(dst_origins, path);
    } else if (kv.second.IsMap() && dst[key].IsDefined() && dst[key].IsMap()) {
      merge_map(dst[key], kv.second, path, src_origins, dst_origins);
      if (it != src_origins.end()) dst_origins[path] = it->second;
    } else {
      dst[key] = YAML::Clone(kv.second);
      erase_origins(dst_origins, path);
      for (const auto& [k, o] : src_origins)
        if (has_prefix(k, path)) dst_origins[k] = o;
    }
  }
}

ConfigTree load_recursive(const fs::path& file, std::vector<fs::path>& chain, const Origin& included_from) {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(file, ec);
  if (!fs::exists(file)) {
    std::string msg = fmt::format("config file '{}' not found", file.string());
    if (!chain.empty()) msg = fmt::format("base file '{}' not found (resolved to {})", file.filename().string(), canon.string());
    throw ConfigError(included_from, chain.empty() ? "" : "base", msg + "; check the path (bases are relative to the file that names them)");
  }
  for (const auto& c : chain) {
    if (c == canon) {
      std::string cycle;
      for (const auto& p : chain) cycle += p.filename().string() + " -> ";
      throw ConfigError(included_from, "base", "cycle of base files: " + cycle + canon.filename().string() +
                                                   "; remove one of these base: entries");
    }
  }
  YAML::Node node;
  try {
    node = YAML::LoadFile(file.string());
  } catch (const YAML::ParserException& e) {
    throw ConfigError(Origin{file.string(), e.mark.line + 1, e.mark.column + 1}, "",
                      "malformed YAML: " + e.msg + " (check indentation, colons and quotes around this place)");
  } catch (const YAML::BadFile&) {
    throw ConfigError(Origin{file.string()}, "", "cannot read the file (permissions?)");
  }
  ConfigTree own = tree_from_node(node, file.string());
  chain.push_back(canon);
  ConfigTree result;
  YAML::Node bases = own.root["base"];
  if (bases.IsDefined() && !bases.IsNull()) {
    std::vector<std::pair<std::string, YAML::Node>> list;
    if (bases.IsScalar()) list.emplace_back(bases.Scalar(), bases);
    else if (bases.IsSequence())
      for (const auto& b : bases) {
        if (!b.IsScalar()) throw ConfigError(mark_origin(file.string(), b), "base", "expected a file path");
        list.emplace_back(b.Scalar(), b);
      }
    else throw ConfigError(own.origin_of("base"), "base", "expected a file path or a list of file paths");
    for (const auto& [rel, n] : list) {
      ConfigTree base = load_recursive(file.parent_path() / rel, chain, own.origin_of("base"));
      merge_config(result, base);
    }
  }
  own.erase("base");
  merge_config(result, own);
  chain.pop_back();
  return result;
}

// ---- scalar parsing -------------------------------------------------------------------------------
bool parse_bool(const std::string& s, bool& out) {
  static const std::set<std::string> t{"true", "True", "TRUE", "yes", "Yes", "on", "On"},
      f{"false", "False", "FALSE", "no", "No", "off", "Off"};
  if (t.count(s)) return out = true, true;
  if (f.count(s)) return out = false, true;
  return false;
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_double(const std::string& s, double& out) {
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return out = INFINITY, true;
  if (s == "-.inf" || s == "-.Inf") return out = -INFINITY, true;
  if (s == ".nan" || s == ".NaN") return out = NAN, true;
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || *end != '\0') return false;
  out = v;
  return true;
}

std::string format_double(double v) {
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  if (std::isnan(v)) return ".nan";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string format_bound(double v) {
  if (std::isfinite(v) && std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<int64_t>(v));
  return format_double(v);
}

std::string bounds_text(const FieldSpec& s) {
  std::string lo = s.min ? fmt::format("{} {}", s.min_open ? ">" : ">=", format_bound(*s.min)) : "";
  std::string hi = s.max ? fmt::format("{} {}", s.max_open ? "<" : "<=", format_bound(*s.max)) : "";
  if (!lo.empty() && !hi.empty()) return lo + " and " + hi;
  return lo + hi;
}

bool in_bounds(double v, const FieldSpec& s) {
  if (std::isnan(v)) return !s.min && !s.max;
  if (s.min && (s.min_open ? v <= *s.min : v < *s.min)) return false;
  if (s.max && (s.max_open ? v >= *s.max : v > *s.max)) return false;
  return true;
}

// ---- decoding -------------------------------------------------------------------------------------
class Decoder : public FieldVisitor {
 public:
  Decoder(const ConfigTree& tree, std::vector<Problem>& problems) : tree_(tree), problems_(problems) {
    frames_.push_back({tree.root, "", {}});
  }

  void field(const std::string& key, bool& v, const FieldSpec& s) override {
    scalar(key, s, "true or false", [&](const std::string& text) { return parse_bool(text, v); });
  }
  void field(const std::string& key, int64_t& v, const FieldSpec& s) override {
    int64_t tmp = v;
    if (scalar(key, s, "an integer", [&](const std::string& text) { return parse_int(text, tmp); })) {
      if (check_bounds(key, static_cast<double>(tmp), std::to_string(tmp), s)) v = tmp;
    }
  }
  void field(const std::string& key, double& v, const FieldSpec& s) override {
    double tmp = v;
    std::string raw;
    if (scalar(key, s, "a number", [&](const std::string& text) { return raw = text, parse_double(text, tmp); })) {
      if (check_bounds(key, tmp, raw, s)) v = tmp;
    }
  }
  void field(const std::string& key, std::string& v, const FieldSpec& s) override {
    std::string tmp = v;
    if (scalar(key, s, "a string", [&](const std::string& text) { return tmp = text, true; })) {
      if (check_choice(key, tmp, s)) v = tmp;
    }
  }
  void field(const std::string& key, std::vector<int64_t>& v, const FieldSpec& s) override {
    list<int64_t>(key, v, s, "integers", [](const std::string& t, int64_t& o) { return parse_int(t, o); });
  }
  void field(const std::string& key, std::vector<double>& v, const FieldSpec& s) override {
    list<double>(key, v, s, "numbers", [](const std::string& t, double& o) { return parse_double(t, o); });
  }
  void field(const std::string& key, std::vector<std::string>& v, const FieldSpec& s) override {
    list<std::string>(key, v, s, "strings", [](const std::string& t, std::string& o) { return o = t, true; });
  }

  void section(const std::string& key, const std::string&, const std::function<void()>& body) override {
    YAML::Node n = lookup(key);
    const std::string path = join_key(frames_.back().path, key);
    YAML::Node child(YAML::NodeType::Map);
    if (n.IsDefined() && !n.IsNull()) {
      if (n.IsMap()) child.reset(n);
      else report(path, fmt::format("expected a mapping of keys, got {} '{}'", node_kind(n), brief(n)));
    }
    frames_.push_back({child, path, {}});
    body();
    finish_frame({});
    frames_.pop_back();
  }

  void group(bool active, const std::function<void()>& body) override {
    if (!active) ++inactive_;
    body();
    if (!active) --inactive_;
  }

  void check(bool ok, const std::string& key, const std::string& message) override {
    const std::string path = join_key(frames_.back().path, key);
    // A rule about a value already reported (and so left at its default) would only add noise.
    if (!ok && inactive_ == 0 && !reported_.count(path)) report(path, message);
  }

  // Reports keys present in the YAML of the current frame that no field visited.
  void finish_frame(const std::vector<std::string>& ignore) {
    Frame& f = frames_.back();
    std::vector<std::string> known(f.seen.begin(), f.seen.end());
    for (const auto& kv : f.node) {
      const std::string k = kv.first.Scalar();
      if (f.seen.count(k) || std::find(ignore.begin(), ignore.end(), k) != ignore.end()) continue;
      std::string msg = "unknown key";
      std::string near = nearest_name(k, known);
      if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
      msg += "; keys here: " + join(known);
      report(join_key(f.path, k), msg);
    }
  }

 private:
  struct Frame {
    YAML::Node node;
    std::string path;
    std::set<std::string> seen;
  };

  YAML::Node lookup(const std::string& key) {
    Frame& f = frames_.back();
    f.seen.insert(key);
    const YAML::Node& cnode = f.node;  // const access: never inserts
    return cnode[key];
  }

  static std::string brief(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    std::string s = to_yaml_string(n);
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s.size() > 40 ? s.substr(0, 37) + "..." : s;
  }

  void report(const std::string& path, const std::string& message) {
    problems_.push_back({tree_.origin_of(path), path, message});
    reported_.insert(path);
  }

  template <class Parse>
  bool scalar(const std::string& key, const FieldSpec&, const char* expected, Parse parse) {
    YAML::Node n = lookup(key);
    if (!n.IsDefined() || n.IsNull()) return false;  // keep the default
    const std::string path = join_key(frames_.back().path, key);
    if (!n.IsScalar() || !parse(n.Scalar())) {
      report(path, n.IsScalar() ? fmt::format("expected {}, got '{}'", expected, brief(n))
                                : fmt::format("expected {}, got {} '{}'", expected, node_kind(n), brief(n)));
      return false;
    }
    return true;
  }

  bool check_bounds(const std::string& key, double v, const std::string& text, const FieldSpec& s) {
    if (!std::isfinite(v)) {  // no setting of the suite means anything at NaN or infinity
      report(join_key(frames_.back().path, key), fmt::format("{} is not a finite number; give a finite value", text));
      return false;
    }
    if (in_bounds(v, s)) return true;
    report(join_key(frames_.back().path, key), fmt::format("value {} is out of range: must be {}", text, bounds_text(s)));
    return false;
  }

  bool check_choice(const std::string& key, const std::string& v, const FieldSpec& s) {
    const std::string path = join_key(frames_.back().path, key);
    if (s.non_empty && v.empty()) {
      report(path, "must not be empty");
      return false;
    }
    if (s.choices.empty() || std::find(s.choices.begin(), s.choices.end(), v) != s.choices.end()) return true;
    std::string msg = fmt::format("'{}' is not allowed", v);
    std::string near = nearest_name(v, s.choices);
    if (!near.empty()) msg += fmt::format(" (did you mean '{}'?)", near);
    report(path, msg + "; allowed: " + join(s.choices));
    return false;
  }

  template <class T, class Parse>
  void list(const std::string& key, std::vector<T>& v, const FieldSpec& s, const char* what, Parse parse) {
    YAML::Node n = lookup(key);
    if (!n.IsDefined() || n.IsNull()) return;
    const std::string path = join_key(frames_.back().path, key);
    std::vector<YAML::Node> items;
    if (n.IsScalar()) items.push_back(n);  // a single value is a one-element list
    else if (n.IsSequence())
      for (const auto& item : n) items.push_back(item);
    else {
      report(path, fmt::format("expected a list of {}, got {}", what, node_kind(n)));
      return;
    }
    std::vector<T> out;
    for (size_t i = 0; i < items.size(); ++i) {
      T value{};
      if (!items[i].IsScalar() || !parse(items[i].Scalar(), value)) {
        report(path, fmt::format("element {} ('{}') is not one of the expected {}", i, brief(items[i]), what));
        return;
      }
      if constexpr (std::is_arithmetic_v<T>) {
        if (!std::isfinite(static_cast<double>(value))) {
          report(path, fmt::format("element {} = {} is not a finite number; give a finite value", i, brief(items[i])));
          return;
        }
        if (!in_bounds(static_cast<double>(value), s)) {
          report(path, fmt::format("element {} = {} is out of range: must be {}", i, brief(items[i]), bounds_text(s)));
          return;
        }
      } else {
        if (!s.choices.empty() && !check_choice(key, value, s)) return;
      }
      out.push_back(value);
    }
    if (s.non_empty && out.empty()) {
      report(path, "must not be empty");
      return;
    }
    v = std::move(out);
  }

  const ConfigTree& tree_;
  std::vector<Problem>& problems_;
  std::vector<Frame> frames_;
  std::set<std::string> reported_;
  int inactive_ = 0;
};

// ---- encoding -------------------------------------------------------------------------------------
class Encoder : public FieldVisitor {
 public:
  Encoder() { stack_.push_back(YAML::Node(YAML::NodeType::Map)); }
  YAML::Node result() const { return stack_.front(); }

  void field(const std::string& k, bool& v, const FieldSpec&) override { put(k, YAML::Node(v ? "true" : "false")); }
  void field(const std::string& k, int64_t& v, const FieldSpec&) override { put(k, YAML::Node(std::to_string(v))); }
  void field(const std::string& k, double& v, const FieldSpec&) override { put(k, YAML::Node(format_double(v))); }
  void field(const std::string& k, std::string& v, const FieldSpec&) override { put(k, YAML::Node(v)); }
  void field(const std::string& k, std::vector<int64_t>& v, const FieldSpec&) override {
    put_list(k, v, [](int64_t x) { return std::to_string(x); });
  }
  void field(const std::string& k, std::vector<double>& v, const FieldSpec&) override {
    put_list(k, v, [](double x) { return format_double(x); });
  }
  void field(const std::string& k, std::vector<std::string>& v, const FieldSpec&) override {
    put_list(k, v, [](const std::string& x) { return x; });
  }
  void section(const std::string& k, const std::string&, const std::function<void()>& body) override {
    if (inactive_) return;
    stack_.push_back(YAML::Node(YAML::NodeType::Map));
    body();
    YAML::Node m = stack_.back();
    stack_.pop_back();
    stack_.back()[k] = m;
  }
  void group(bool active, const std::function<void()>& body) override {
    if (!active) ++inactive_;
    body();
    if (!active) --inactive_;
  }
  void check(bool, const std::string&, const std::string&) override {}

 private:
  void put(const std::string& k, const YAML::Node& n) {
    if (!inactive_) stack_.back()[k] = n;
  }
  template <class T, class Fmt>
  void put_list(const std::string& k, const std::vector<T>& v, Fmt fmt) {
    YAML::Node seq(YAML::NodeType::Sequence);
    seq.SetStyle(YAML::EmitterStyle::Flow);
    for (const auto& x : v) seq.push_back(YAML::Node(fmt(x)));
    put(k, seq);
  }
  std::vector<YAML::Node> stack_;
  int inactive_ = 0;
};

// ---- schema description -----------------------------------------------------------------------------
class Describer : public FieldVisitor {
 public:
  std::string out;
  void field(const std::string& k, bool& v, const FieldSpec& s) override { line(k, "bool", v ? "true" : "false", s); }
  void field(const std::string& k, int64_t& v, const FieldSpec& s) override { line(k, "int", std::to_string(v), s); }
  void field(const std::string& k, double& v, const FieldSpec& s) override { line(k, "float", format_double(v), s); }
  void field(const std::string& k, std::string& v, const FieldSpec& s) override {
    line(k, "string", v.empty() ? "\"\"" : v, s);
  }
  void field(const std::string& k, std::vector<int64_t>& v, const FieldSpec& s) override {
    std::vector<std::string> t;
    for (auto x : v) t.push_back(std::to_string(x));
    line(k, "int list", "[" + join(t) + "]", s);
  }
  void field(const std::string& k, std::vector<double>& v, const FieldSpec& s) override {
    std::vector<std::string> t;
    for (auto x : v) t.push_back(format_double(x));
    line(k, "float list", "[" + join(t) + "]", s);
  }
  void field(const std::string& k, std::vector<std::string>& v, const FieldSpec& s) override {
    line(k, "string list", "[" + join(v) + "]", s);
  }
  void section(const std::string& k, const std::string& help, const std::function<void()>& body) override {
    const std::string key = join_key(prefix_, k);
    if (seen_.insert(key).second) out += fmt::format("{:<34} {}\n", key + ":", help);
    std::string saved = prefix_;
    prefix_ = key;
    body();
    prefix_ = saved;
  }
  void group(bool, const std::function<void()>& body) override { body(); }
  void check(bool, const std::string&, const std::string&) override {}

 private:
  void line(const std::string& k, const char* type, const std::string& def, const FieldSpec& s) {
    const std::string key = join_key(prefix_, k);
    if (!seen_.insert(key).second) return;
    std::string extra;
    if (!s.choices.empty()) extra = " {" + join(s.choices, "|") + "}";
    std::string b = bounds_text(s);
    if (!b.empty()) extra += " (" + b + ")";
    out += fmt::format("  {:<32} {:<11} {:<14} {}{}\n", key, type, def, s.help, extra);
  }
  std::string prefix_;
  std::set<std::string> seen_;
};

// The same schema as Markdown tables, one per section (docs/config_keys.md). Under `model`, only
// the active model type's keys (model_type decides); everywhere else every group is shown.
class MarkdownDescriber : public FieldVisitor {
 public:
  void field(const std::string& k, bool& v, const FieldSpec& s) override { row(k, "bool", v ? "true" : "false", s); }
  void field(const std::string& k, int64_t& v, const FieldSpec& s) override { row(k, "int", std::to_string(v), s); }
  void field(const std::string& k, double& v, const FieldSpec& s) override { row(k, "float", format_double(v), s); }
  void field(const std::string& k, std::string& v, const FieldSpec& s) override { row(k, "string", v.empty() ? "\"\"" : v, s); }
  void field(const std::string& k, std::vector<int64_t>& v, const FieldSpec& s) override {
    std::vector<std::string> t;
    for (auto x : v) t.push_back(std::to_string(x));
    row(k, "int list", "[" + join(t) + "]", s);
  }
  void field(const std::string& k, std::vector<double>& v, const FieldSpec& s) override {
    std::vector<std::string> t;
    for (auto x : v) t.push_back(format_double(x));
    row(k, "float list", "[" + join(t) + "]", s);
  }
  void field(const std::string& k, std::vector<std::string>& v, const FieldSpec& s) override {
    row(k, "string list", "[" + join(v) + "]", s);
  }
  void section(const std::string& k, const std::string& help, const std::function<void()>& body) override {
    const std::string key = join_key(prefix_, k);
    if (!helps_.count(key)) order_.push_back(key), helps_[key] = help;
    std::string saved = prefix_;
    prefix_ = key;
    body();
    prefix_ = saved;
  }
  void group(bool active, const std::function<void()>& body) override {
    if (active || prefix_ != "model") body();
  }
  void check(bool, const std::string&, const std::string&) override {}

  std::string render(const std::string& heading_suffix) const {
    std::string out;
    for (const auto& sec : order_) {
      auto it = rows_.find(sec);
      if (it == rows_.end()) continue;
      out += fmt::format("## {}{}\n\n", sec.empty() ? "top level" : "`" + sec + "`", sec == "model" ? heading_suffix : "");
      if (!helps_.at(sec).empty()) out += helps_.at(sec) + ".\n\n";
      out += "| key | type | default | description |\n|---|---|---|---|\n" + it->second + "\n";
    }
    return out;
  }

 private:
  static std::string cell(std::string s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  }
  void row(const std::string& k, const char* type, const std::string& def, const FieldSpec& s) {
    const std::string key = join_key(prefix_, k);
    if (!seen_.insert(key).second) return;
    if (!helps_.count(prefix_)) order_.push_back(prefix_), helps_[prefix_] = "";
    std::string extra;
    if (!s.choices.empty()) extra = "; one of " + join(s.choices, ", ");
    const std::string b = bounds_text(s);
    if (!b.empty()) extra += "; " + b;
    rows_[prefix_] += fmt::format("| `{}` | {} | `{}` | {}{} |\n", key, type, cell(def), cell(s.help), cell(extra));
  }
  std::string prefix_;
  std::set<std::string> seen_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> helps_, rows_;
};

}  // namespace

Origin ConfigTree::origin_of(const std::string& key) const {
  std::string k = key;
  while (true) {
    auto it = origins.find(k);
    if (it != origins.end()) return it->second;
    auto dot = k.rfind('.');
    if (dot == std::string::npos) break;
    k = k.substr(0, dot);
  }
  return Origin{};
}

YAML::Node ConfigTree::at(const std::string& key) const {
  YAML::Node cur = YAML::Clone(root);  // cheap at config sizes; avoids yaml-cpp's aliasing pitfalls
  for (const auto& part : split_dots(key)) {
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& c = cur;
    YAML::Node next = c[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(next);
  }
  return cur;
}

void ConfigTree::erase(const std::string& top_key) {
  root.remove(top_key);
  erase_origins(origins, top_key);
}

ConfigTree load_config(const fs::path& file) {
  std::vector<fs::path> chain;
  return load_recursive(file, chain, Origin{file.string()});
}

ConfigTree parse_config_text(const std::string& text, const std::string& origin_name) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(Origin{origin_name, e.mark.line + 1, e.mark.column + 1}, "", "malformed YAML: " + e.msg);
  }
  return tree_from_node(node, origin_name);
}

void merge_config(ConfigTree& dst, const ConfigTree& src, const std::string& prefix) {
  YAML::Node target;
  target.reset(dst.root);
  std::string path;
  if (!prefix.empty()) {
    for (const auto& part : split_dots(prefix)) {
      path = join_key(path, part);
      if (!target[part].IsDefined() || !target[part].IsMap()) {
        target[part] = YAML::Node(YAML::NodeType::Map);
        erase_origins(dst.origins, path);
      }
      YAML::Node next = target[part];
      target.reset(next);
    }
  }
  std::map<std::string, Origin> shifted;
  for (const auto& [k, o] : src.origins) shifted[join_key(prefix, k)] = o;
  merge_map(target, src.root, prefix, shifted, dst.origins);
}

void merge_node(ConfigTree& dst, const YAML::Node& node, const std::string& prefix, const Origin& origin) {
  ConfigTree layer = tree_from_node(node, origin.file);
  for (auto& [k, o] : layer.origins) o = origin;  // the declaration site stands for all of it
  merge_config(dst, layer, prefix);
}

void apply_override(ConfigTree& tree, const std::string& assignment) {
  const Origin where{"--set " + assignment};
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(where, "", "expected KEY=VALUE, e.g. --set optim.lr=1e-3");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  for (const auto& part : split_dots(key))
    if (part.empty()) throw ConfigError(where, key, "empty part in the dotted key");
  YAML::Node value;
  try {
    value = text.empty() ? YAML::Node(std::string()) : YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(where, key, "cannot parse the value as YAML: " + e.msg);
  }
  YAML::Node wrapper(YAML::NodeType::Map);
  wrapper[key] = value;
  ConfigTree layer = tree_from_node(wrapper, where.file);
  for (auto& [k, o] : layer.origins) o = where;
  merge_config(tree, layer);
}

void decode_config(const ConfigTree& tree, const VisitFn& visit, const std::vector<std::string>& ignore) {
  std::vector<Problem> problems;
  Decoder d(tree, problems);
  visit(d);
  d.finish_frame(ignore);
  // A section visited by several groups (the norm inside each model type) reports once.
  std::vector<Problem> unique;
  for (const auto& p : problems) {
    bool dup = false;
    for (const auto& q : unique) dup |= q.key == p.key && q.message == p.message;
    if (!dup) unique.push_back(p);
  }
  problems.swap(unique);
  // In file order, the way a user reads and fixes them.
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.origin.file, a.origin.line, a.origin.column) < std::tie(b.origin.file, b.origin.line, b.origin.column);
  });
  if (!problems.empty()) throw ConfigError(problems);
}

YAML::Node encode_config(const VisitFn& visit) {
  Encoder e;
  visit(e);
  return e.result();
}

std::string to_yaml_string(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

std::string describe_config(const VisitFn& visit) {
  Describer d;
  visit(d);
  return d.out;
}

std::string describe_config_markdown(const VisitFn& visit, const std::string& model_heading) {
  MarkdownDescriber d;
  visit(d);
  return d.render(model_heading);
}

}  // namespace dyt
