// Typed option structs describe themselves to a FieldVisitor.
// Each options struct (ViTOptions, NormOptions, TrainOptions, ...) has a `visit(FieldVisitor&)`
// that names its fields, their help text and their allowed values. The runner implements the
// visitor to decode YAML (with validation), to encode the resolved config, and to print the
// schema, so key names, defaults and docs have one source: the struct. Models never see YAML.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dyt {

// Help text and constraints of one field.
struct FieldSpec {
  std::string help;
  std::vector<std::string> choices;  // allowed values of a string field; empty = any
  std::optional<double> min, max;    // numeric bounds (for lists: of every element)
  bool min_open = false, max_open = false;
  bool non_empty = false;            // string or list must not be empty

  FieldSpec& ge(double v) { min = v; min_open = false; return *this; }
  FieldSpec& gt(double v) { min = v; min_open = true; return *this; }
  FieldSpec& le(double v) { max = v; max_open = false; return *this; }
  FieldSpec& lt(double v) { max = v; max_open = true; return *this; }
  FieldSpec& one_of(std::vector<std::string> c) { choices = std::move(c); return *this; }
  FieldSpec& required() { non_empty = true; return *this; }
};

inline FieldSpec doc(std::string help) { FieldSpec s; s.help = std::move(help); return s; }

class FieldVisitor {
 public:
  virtual ~FieldVisitor() = default;
  virtual void field(const std::string& key, bool& v, const FieldSpec& s) = 0;
  virtual void field(const std::string& key, int64_t& v, const FieldSpec& s) = 0;
  virtual void field(const std::string& key, double& v, const FieldSpec& s) = 0;
  virtual void field(const std::string& key, std::string& v, const FieldSpec& s) = 0;
  virtual void field(const std::string& key, std::vector<int64_t>& v, const FieldSpec& s) = 0;
  virtual void field(const std::string& key, std::vector<double>& v, const FieldSpec& s) = 0;
  virtual void field(const std::string& key, std::vector<std::string>& v, const FieldSpec& s) = 0;
  // A nested mapping; `body` visits its fields.
  virtual void section(const std::string& key, const std::string& help,
                       const std::function<void()>& body) = 0;
  // Fields that apply only in some settings (e.g. DyT's alpha_init while the norm is LayerNorm):
  // decoders always accept and check them, so one config can switch types through variants,
  // while encoders write them only when `active`, so the resolved config shows what is used.
  virtual void group(bool active, const std::function<void()>& body) = 0;
  // A rule across fields (e.g. heads divide the width). When `ok` is false a decoder reports
  // `message` at `key` (relative to the current section); other visitors ignore it.
  virtual void check(bool ok, const std::string& key, const std::string& message) = 0;
};

}  // namespace dyt
