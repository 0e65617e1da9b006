// Loading, composing and validating YAML configs.
//
//  - `base:` (a path or a list of paths, relative to the file) is loaded first and deep-merged,
//    any number of levels; cycles and missing files are errors naming the chain / the file.
//  - Mapping keys may be dotted (`model.norm.type: dyt`), which is the same as nesting.
//  - `key: ~` (null) in a later file or --set removes the key (default value; a variant: dropped).
//  - `--set a.b=v` overrides parse v as YAML (so lists work) and come last.
//  - Every value remembers where it was set (file:line:column or the --set), so a problem found
//    when decoding into the typed option structs points at the right place.
//  - Decoding collects every problem (unknown key with the nearest known one, wrong type, value
//    out of range or not among the choices, cross-field rules) and reports them all at once.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/options.h"

namespace dyt {

struct ConfigTree {
  // yaml-cpp nodes are references: copies of a ConfigTree deep-clone, so editing one (applying a
  // variant, removing a key) never changes another.
  ConfigTree() = default;
  ConfigTree(const ConfigTree& o) : root(YAML::Clone(o.root)), origins(o.origins) {}
  ConfigTree& operator=(const ConfigTree& o) {
    if (this != &o) root.reset(YAML::Clone(o.root)), origins = o.origins;
    return *this;
  }
  ConfigTree(ConfigTree&&) = default;
  ConfigTree& operator=(ConfigTree&&) = default;

  YAML::Node root = YAML::Node(YAML::NodeType::Map);
  std::map<std::string, Origin> origins;  // dotted key -> where its current value was set
  // Where `key` (or its nearest ancestor) was set.
  Origin origin_of(const std::string& key) const;
  // The node at a dotted path, or an undefined node.
  YAML::Node at(const std::string& key) const;
  // Removes a top-level key and its origins.
  void erase(const std::string& top_key);
};

// Loads a YAML file with its `base:` chain resolved.
ConfigTree load_config(const std::filesystem::path& file);
// Parses YAML text; a `base:` in it is not resolved (load_config resolves a file's chain).
ConfigTree parse_config_text(const std::string& text, const std::string& origin_name);
// Deep merge: mappings merge key by key, anything else replaces.
void merge_config(ConfigTree& dst, const ConfigTree& src, const std::string& prefix = "");
// Merges `node` (with its origins given by `origin`) at dotted path `prefix`.
void merge_node(ConfigTree& dst, const YAML::Node& node, const std::string& prefix, const Origin& origin);
// Applies "a.b.c=value" (value parsed as YAML).
void apply_override(ConfigTree& tree, const std::string& assignment);

// The fields of a typed config, as seen by a visitor (usually `[&](FieldVisitor& v) { cfg.visit(v); }`).
using VisitFn = std::function<void(FieldVisitor&)>;

// Decodes `tree` into the struct behind `visit`, validating as it goes. Top-level keys in
// `ignore` are skipped (handled elsewhere, e.g. `variants`). Throws ConfigError listing every
// problem found.
void decode_config(const ConfigTree& tree, const VisitFn& visit, const std::vector<std::string>& ignore = {});

// The struct's current values as YAML (fields of inactive groups left out).
YAML::Node encode_config(const VisitFn& visit);
std::string to_yaml_string(const YAML::Node& node);

// One line per field: key, type, default, allowed values, help. For `dyt list keys` and docs.
std::string describe_config(const VisitFn& visit);
// The same as Markdown, a table per section; under `model` only the active type's keys, whose
// heading gets `model_heading` appended (docs/config_keys.md).
std::string describe_config_markdown(const VisitFn& visit, const std::string& model_heading = "");

}  // namespace dyt
