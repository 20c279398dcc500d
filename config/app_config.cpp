#include "config/app_config.hpp"

#include <toml.hpp>

#include "config/fault_table.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace stamen {

namespace {

namespace fs = std::filesystem;

failure config_failure(std::string what) { return failure{errc::config_error, std::move(what)}; }

std::string located(const std::string& what, const toml::value& v, const std::string& hint) {
  return toml::format_error(what, v, hint, {}, false);
}

// Keys of a table, in the order they appear in the file.
std::vector<std::string> keys_in_file_order(const toml::value& table) {
  std::vector<std::pair<std::pair<uint32_t, uint32_t>, std::string>> keyed;
  for (auto& [k, v] : table.as_table()) {
    auto loc = v.location();
    keyed.push_back({{static_cast<uint32_t>(loc.line()), static_cast<uint32_t>(loc.column())}, k});
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::string> out;
  for (auto& [pos, k] : keyed) out.push_back(k);
  return out;
}

expected<void> only_keys(const toml::value& table, const std::string& where,
                         std::set<std::string> allowed) {
  for (auto& [k, v] : table.as_table())
    if (allowed.count(k) == 0) {
      std::string list;
      for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return config_failure(located("unknown key '" + k + "' in [" + where + "]", v,
                                    "expected one of: " + list));
    }
  return {};
}

// A TOML value as a ConfigRecord value, or a failure naming `key`.
expected<config_value> to_config_value(const toml::value& v, const std::string& key) {
  switch (v.type()) {
    case toml::value_t::integer: return config_value{static_cast<int64_t>(v.as_integer())};
    case toml::value_t::floating: return config_value{static_cast<double>(v.as_floating())};
    case toml::value_t::boolean: return config_value{static_cast<bool>(v.as_boolean())};
    case toml::value_t::string: return config_value{v.as_string().str};
    case toml::value_t::array: {
      auto& xs = v.as_array();
      if (xs.empty()) return config_value{std::vector<std::string>{}};
      auto t = xs.front().type();
      for (auto& x : xs)
        if (x.type() != t)
          return config_failure(located("'" + key + "' mixes types in one list", x,
                                        "lists must hold a single type"));
      switch (t) {
        case toml::value_t::integer: {
          std::vector<int64_t> out;
          for (auto& x : xs) out.push_back(x.as_integer());
          return config_value{out};
        }
        case toml::value_t::floating: {
          std::vector<double> out;
          for (auto& x : xs) out.push_back(x.as_floating());
          return config_value{out};
        }
        case toml::value_t::boolean: {
          std::vector<bool> out;
          for (auto& x : xs) out.push_back(x.as_boolean());
          return config_value{out};
        }
        case toml::value_t::string: {
          std::vector<std::string> out;
          for (auto& x : xs) out.push_back(x.as_string().str);
          return config_value{out};
        }
        default: break;
      }
      break;
    }
    default: break;
  }
  return config_failure(located("unsupported value for '" + key + "'", v,
                                "use an integer, float, boolean, string or a list of one of those"));
}

const char* type_name(const config_value& v) {
  static const char* names[] = {"an integer", "a float",        "a boolean",     "a string",
                                "bytes",      "an integer list", "a float list", "a boolean list",
                                "a string list", "a bytes list"};
  return names[v.index()];
}

// Checks `value` against the type declared for `key`; an integer is widened
// to a float where a float is declared.
expected<config_value> coerce(const std::string& key, const config_value& declared,
                              config_value value) {
  if (declared.index() == value.index()) return value;
  if (std::holds_alternative<double>(declared))
    if (auto* i = std::get_if<int64_t>(&value)) return config_value{static_cast<double>(*i)};
  if (std::holds_alternative<std::vector<double>>(declared))
    if (auto* is = std::get_if<std::vector<int64_t>>(&value))
      return config_value{std::vector<double>(is->begin(), is->end())};
  return config_failure("run config key '" + key + "' expects " + type_name(declared) +
                        ", got " + type_name(value) + " (" + to_string(value) + ")");
}

// `key = { default = ..., min = ..., ... }`: a table with a default (or
// declared optional) is a value with its domain, not a nested table.
bool declares_domain(const toml::value& v) {
  return v.is_table() && (v.contains("default") || v.contains("optional"));
}

expected<double> bound(const toml::value& v, const std::string& what) {
  if (v.is_integer()) return static_cast<double>(v.as_integer());
  if (v.is_floating()) return v.as_floating();
  return config_failure(located(what + " must be a number", v, "here"));
}

expected<bool> flag(const toml::value& v, const std::string& what) {
  if (v.is_boolean()) return v.as_boolean();
  return config_failure(located(what + " must be true or false", v, "here"));
}

// Parses `{ default = ..., min, max, exclusive-min, exclusive-max, choices }`
// into the default value and its domain; the default must lie in it. With
// `optional = true` instead of a default, the key has no value until given.
expected<std::pair<std::optional<config_value>, value_domain>> parse_domain(
    const toml::value& t, const std::string& key) {
  static const std::set<std::string> keys{"default",       "min",     "max",     "exclusive-min",
                                          "exclusive-max", "choices", "optional"};
  for (auto& [k, v] : t.as_table())
    if (keys.count(k) == 0)
      return config_failure(located("unknown key '" + k + "' in the domain of '" + key + "'", v,
                                    "expected default, min, max, exclusive-min, exclusive-max, "
                                    "choices or optional"));
  bool optional = false;
  if (t.contains("optional")) {
    auto& o = toml::find(t, "optional");
    if (!o.is_boolean() || !o.as_boolean() || t.contains("default"))
      return config_failure(located("'" + key + "' takes either a default or optional = true", o,
                                    "here"));
    optional = true;
  }
  std::optional<config_value> def;
  if (!optional) {
    auto v = to_config_value(toml::find(t, "default"), key);
    if (!v) return v.error();
    def = std::move(*v);
  }
  value_domain d;
  d.optional = optional;
  auto what = [&](const char* k) { return "'" + std::string{k} + "' of '" + key + "'"; };
  for (auto* k : {"min", "max"}) {
    if (!t.contains(k)) continue;
    auto x = bound(toml::find(t, k), what(k));
    if (!x) return x.error();
    (std::string{k} == "min" ? d.min : d.max) = *x;
  }
  for (auto* k : {"exclusive-min", "exclusive-max"}) {
    if (!t.contains(k)) continue;
    auto x = flag(toml::find(t, k), what(k));
    if (!x) return x.error();
    (std::string{k} == "exclusive-min" ? d.exclusive_min : d.exclusive_max) = *x;
  }
  if (def && (d.min || d.max) && !std::holds_alternative<int64_t>(*def) &&
      !std::holds_alternative<double>(*def) &&
      !std::holds_alternative<std::vector<int64_t>>(*def) &&
      !std::holds_alternative<std::vector<double>>(*def))
    return config_failure(located("'" + key + "' has bounds but its default is not a number",
                                  toml::find(t, "default"), "here"));
  if (t.contains("choices")) {
    auto& cs = toml::find(t, "choices");
    if (!cs.is_array() || cs.as_array().empty())
      return config_failure(located(what("choices") + " must be a non-empty list", cs, "here"));
    for (auto& c : cs.as_array()) {
      auto cv = to_config_value(c, key);
      if (!cv) return cv.error();
      d.choices.push_back(std::move(*cv));
    }
  }
  if (def)
    if (auto ok = check_value(key, *def, d); !ok)
      return config_failure(located("the default of '" + key + "' is out of its domain (" +
                                        describe(d) + ")",
                                    toml::find(t, "default"), "here"));
  return std::pair<std::optional<config_value>, value_domain>{std::move(def), std::move(d)};
}

expected<config_record> table_to_record(const toml::value& table, const std::string& prefix = "",
                                        ordered_map<value_domain>* domains = nullptr) {
  config_record out;
  for (auto& k : keys_in_file_order(table)) {
    auto& v = toml::find(table, k);
    auto key = prefix.empty() ? k : prefix + "." + k;
    if (domains != nullptr && declares_domain(v)) {
      auto dv = parse_domain(v, key);
      if (!dv) return dv.error();
      if (dv->first) out.insert_or_assign(key, std::move(*dv->first));
      if (!dv->second.empty()) domains->insert_or_assign(key, std::move(dv->second));
      continue;
    }
    if (v.is_table()) {  // nested tables flatten to dotted keys, as Flower does
      auto sub = table_to_record(v, key, domains);
      if (!sub) return sub.error();
      for (auto& [sk, sv] : *sub) out.insert_or_assign(sk, sv);
      continue;
    }
    auto cv = to_config_value(v, key);
    if (!cv) return cv.error();
    out.insert_or_assign(key, std::move(*cv));
  }
  return out;
}

// Splits "a=1 b='x y'" at spaces outside quotes and brackets.
std::vector<std::string> split_pairs(const std::string& spec) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  int depth = 0;
  for (char c : spec) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    } else if ((c == ' ' || c == '\t' || c == '\n') && depth == 0) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

expected<size_t> positive(const toml::value& v, const std::string& key, bool allow_zero) {
  if (!v.is_integer() || v.as_integer() < (allow_zero ? 0 : 1))
    return config_failure(located("'" + key + "' must be " +
                                      (allow_zero ? "a non-negative" : "a positive") + " integer",
                                  v, "here"));
  return static_cast<size_t>(v.as_integer());
}

expected<federation_config> parse_federation(const std::string& name, const toml::value& t,
                                            const fs::path& dir) {
  federation_config f;
  f.name = name;
  auto where = "federations." + name;
  if (!t.is_table())
    return config_failure(located("[" + where + "] must be a table", t, "here"));
  if (auto ok = only_keys(t, where, {"options", "address", "root-certificates", "certificate",
                                      "private-key", "superlink-name", "superlink-key"});
      !ok)
    return ok.error();
  if (t.contains("address")) {
    auto& a = toml::find(t, "address");
    if (!a.is_string()) return config_failure(located("'address' must be \"host:port\"", a, "here"));
    f.address = a.as_string().str;
  }
  // TLS: all three files or none; relative paths are relative to the app.
  std::string files[3];
  const char* keys[3] = {"root-certificates", "certificate", "private-key"};
  int given = 0;
  for (int i = 0; i < 3; ++i) {
    if (!t.contains(keys[i])) continue;
    auto& v = toml::find(t, keys[i]);
    if (!v.is_string())
      return config_failure(located(std::string{"'"} + keys[i] + "' must be a file path", v, "here"));
    auto path = fs::path{v.as_string().str};
    files[i] = (path.is_relative() ? dir / path : path).string();
    ++given;
  }
  if (given != 0 && given != 3)
    return config_failure("[" + where + "] needs all of root-certificates, certificate and "
                          "private-key for TLS, or none of them");
  if (given == 3) {
    if (!f.address)
      return config_failure("[" + where + "] has TLS files but no 'address' of a superlink");
    f.tls = tls_files{files[0], files[1], files[2]};
  }
  for (auto* key : {"superlink-name", "superlink-key"}) {
    if (!t.contains(key)) continue;
    auto& v = toml::find(t, key);
    if (!v.is_string()) return config_failure(located(std::string{"'"} + key + "' must be a string", v, "here"));
    if (given != 3)
      return config_failure(located(std::string{"'"} + key + "' needs TLS (root-certificates, certificate, "
                                    "private-key)", v, "here"));
    auto text = v.as_string().str;
    if (std::string{key} == "superlink-name") {
      f.superlink_name = text;
    } else {
      bool fingerprint = text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
      f.superlink_key = fingerprint || fs::path{text}.is_absolute() ? text : (dir / text).string();
    }
  }
  if (t.contains("options")) {
    auto& o = toml::find(t, "options");
    if (auto ok = only_keys(o, where + ".options", {"num-supernodes", "compute-threads", "seed"});
        !ok)
      return ok.error();
    if (o.contains("num-supernodes")) {
      auto n = positive(toml::find(o, "num-supernodes"), "num-supernodes", false);
      if (!n) return n.error();
      f.num_supernodes = *n;
      f.num_supernodes_given = true;
    }
    if (o.contains("compute-threads")) {
      auto n = positive(toml::find(o, "compute-threads"), "compute-threads", true);
      if (!n) return n.error();
      f.compute_threads = *n;
    }
    if (o.contains("seed")) {
      auto n = positive(toml::find(o, "seed"), "seed", true);
      if (!n) return n.error();
      f.seed = *n;
    }
  }
  return f;
}

expected<app_config> parse_app_config(const toml::value& root, const fs::path& dir) {
  app_config cfg;
  cfg.dir = dir;
  if (auto ok = only_keys(root, "top level", {"app", "federations", "faults"}); !ok)
    return ok.error();
  if (!root.contains("app")) return config_failure("missing [app] table");
  auto& app = toml::find(root, "app");
  if (auto ok = only_keys(app, "app", {"name", "library", "files", "config"}); !ok) return ok.error();
  try {
    cfg.name = toml::find<std::string>(app, "name");
    cfg.library = toml::find<std::string>(app, "library");
    if (app.contains("files")) {
      auto& files = toml::find(app, "files");
      if (!files.is_array())
        return config_failure(located("[app] files must be a list of paths", files, "here"));
      for (auto& f : files.as_array()) {
        if (!f.is_string())
          return config_failure(located("[app] files must be a list of paths", f, "not a string"));
        cfg.files.push_back(f.as_string().str);
      }
    }
  } catch (const std::exception& e) {
    return config_failure(e.what());
  }
  if (app.contains("config")) {
    auto rc = table_to_record(toml::find(app, "config"), "", &cfg.domains);
    if (!rc) return rc.error();
    cfg.run_config = std::move(*rc);
  }
  if (root.contains("federations")) {
    auto& feds = toml::find(root, "federations");
    for (auto& k : keys_in_file_order(feds)) {
      auto& v = toml::find(feds, k);
      if (k == "default") {
        if (!v.is_string())
          return config_failure(located("'default' must name a federation", v, "here"));
        cfg.default_federation = v.as_string().str;
        continue;
      }
      auto f = parse_federation(k, v, dir);
      if (!f) return f.error();
      cfg.federations.insert_or_assign(k, std::move(*f));
    }
  }
  if (root.contains("faults")) {
    auto plan = parse_fault_table(toml::find(root, "faults"));
    if (!plan) return plan.error();
    cfg.faults = std::move(*plan);
  }
  if (cfg.federations.empty()) {
    federation_config local;
    local.name = "local-simulation";
    cfg.federations.insert_or_assign(local.name, local);
  }
  if (cfg.default_federation.empty()) cfg.default_federation = cfg.federations.begin()->first;
  if (!cfg.federations.contains(cfg.default_federation))
    return config_failure("[federations] default = '" + cfg.default_federation +
                          "' names no federation in " + (dir / app_config_file).string());
  return cfg;
}

}  // namespace

expected<federation_config> app_config::federation(const std::string& name) const {
  auto& key = name.empty() ? default_federation : name;
  if (auto* f = federations.get(key)) return *f;
  std::string known;
  for (auto& [k, v] : federations) known += (known.empty() ? "" : ", ") + k;
  return config_failure("unknown federation '" + key + "' (known: " + known + ")");
}

expected<app_config> load_app_config(const fs::path& app_dir) {
  std::error_code ec;
  if (!fs::is_directory(app_dir, ec))
    return fail(errc::io_error, "app directory '" + app_dir.string() + "' does not exist");
  auto file = app_dir / app_config_file;
  if (!fs::is_regular_file(file, ec))
    return fail(errc::io_error, "app directory '" + app_dir.string() + "' has no " +
                                    app_config_file);
  try {
    auto root = toml::parse(file.string());
    return parse_app_config(root, app_dir);
  } catch (const std::exception& e) {
    // toml11 puts the file, line and a caret under the offending text in what().
    return config_failure(e.what());
  }
}

expected<void> check_run_config(const config_record& run_config,
                                const ordered_map<value_domain>& domains) {
  for (auto& [key, d] : domains)
    if (auto* v = run_config.get(key))
      if (auto ok = check_value(key, *v, d); !ok) return ok;
  return {};
}

expected<void> check_fault_plan(const fault_plan& plan, const federation_config& fed) {
  for (size_t r = 0; r < plan.rules.size(); ++r)
    for (auto n : plan.rules[r].nodes)
      if (n < 0 || static_cast<size_t>(n) >= fed.num_supernodes)
        return config_failure("fault rule " + std::to_string(r + 1) + " (" +
                              to_string(plan.rules[r].action) + ") names node " +
                              std::to_string(n) + ", but federation '" + fed.name + "' has " +
                              std::to_string(fed.num_supernodes) + " SuperNodes (0 to " +
                              std::to_string(fed.num_supernodes - 1) + ")");
  return {};
}

expected<fault_plan> load_fault_plan(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return fail(errc::io_error, "fault plan '" + file.string() + "' does not exist");
  try {
    auto root = toml::parse(file.string());
    if (!root.contains("faults")) return config_failure("'" + file.string() + "' has no [faults] table");
    return parse_fault_table(toml::find(root, "faults"));
  } catch (const std::exception& e) {
    return config_failure(e.what());
  }
}

expected<config_record> parse_key_values(const std::string& spec) {
  config_record out;
  for (auto& pair : split_pairs(spec)) {
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0)
      return config_failure("expected key=value, got '" + pair + "'");
    auto key = pair.substr(0, eq);
    auto text = pair.substr(eq + 1);
    config_value value = text;  // a bare word is a string
    try {
      std::istringstream in("v = " + text);
      auto doc = toml::parse(in, "--run-config");
      auto cv = to_config_value(toml::find(doc, "v"), key);
      if (!cv) return cv.error();
      value = std::move(*cv);
    } catch (const std::exception&) {
      // Not TOML (e.g. cifar10): keep it as the string it is.
    }
    out.insert_or_assign(key, std::move(value));
  }
  return out;
}

expected<void> apply_run_config_overrides(config_record& run_config, const std::string& spec,
                                          const ordered_map<value_domain>* domains) {
  config_record overrides;
  std::error_code ec;
  if (spec.find('=') == std::string::npos && fs::is_regular_file(spec, ec)) {
    try {
      auto doc = toml::parse(spec);
      auto rec = table_to_record(doc);
      if (!rec) return rec.error();
      overrides = std::move(*rec);
    } catch (const std::exception& e) {
      return config_failure(e.what());
    }
  } else if (spec.find('=') == std::string::npos) {
    return config_failure("--run-config '" + spec + "' is neither key=value pairs nor a TOML file");
  } else {
    auto kv = parse_key_values(spec);
    if (!kv) return kv.error();
    overrides = std::move(*kv);
  }
  // Check everything before changing anything.
  config_record checked;
  for (auto& [k, v] : overrides) {
    auto* declared = run_config.get(k);
    const value_domain* domain = domains ? domains->get(k) : nullptr;
    if (declared == nullptr && domain != nullptr && domain->optional) {
      // No default to take the type from: the domain says what fits.
      if ((domain->min || domain->max) && !std::holds_alternative<int64_t>(v) &&
          !std::holds_alternative<double>(v))
        return config_failure("run config key '" + k + "' expects a number, got " + to_string(v));
      checked.insert_or_assign(k, v);
      continue;
    }
    if (declared == nullptr) {
      std::string known;
      for (auto& [dk, dv] : run_config) known += (known.empty() ? "" : ", ") + dk;
      if (domains)
        for (auto& [dk, dd] : *domains)
          if (dd.optional && !run_config.contains(dk)) known += (known.empty() ? "" : ", ") + dk;
      return config_failure("unknown run config key '" + k + "' (the app declares: " + known + ")");
    }
    auto c = coerce(k, *declared, v);
    if (!c) return c.error();
    checked.insert_or_assign(k, std::move(*c));
  }
  for (auto& [k, v] : checked) run_config.insert_or_assign(k, std::move(v));
  return {};
}

}  // namespace stamen

namespace stamen {

expected<void> apply_federation_overrides(federation_config& fed, const std::string& spec) {
  auto kv = parse_key_values(spec);
  if (!kv) return kv.error();
  federation_config out = fed;
  std::optional<tls_files> tls = fed.tls;
  for (auto& [k, v] : *kv) {
    auto* text = std::get_if<std::string>(&v);
    auto* number = std::get_if<int64_t>(&v);
    auto need_text = [&]() -> expected<void> {
      if (text == nullptr) return config_failure("--federation-config: '" + k + "' takes a string");
      return {};
    };
    auto need_count = [&](bool allow_zero) -> expected<size_t> {
      if (number == nullptr || *number < (allow_zero ? 0 : 1))
        return config_failure("--federation-config: '" + k + "' takes a " +
                              (allow_zero ? "non-negative" : "positive") + " integer");
      return static_cast<size_t>(*number);
    };
    if (k == "address") {
      if (auto ok = need_text(); !ok) return ok.error();
      out.address = *text;
    } else if (k == "root-certificates" || k == "certificate" || k == "private-key") {
      if (auto ok = need_text(); !ok) return ok.error();
      if (!tls) tls = tls_files{};
      (k == "root-certificates" ? tls->ca : k == "certificate" ? tls->certificate : tls->key) = *text;
    } else if (k == "superlink-name" || k == "superlink-key") {
      if (auto ok = need_text(); !ok) return ok.error();
      (k == "superlink-name" ? out.superlink_name : out.superlink_key) = *text;
    } else if (k == "num-supernodes" || k == "compute-threads" || k == "seed") {
      auto n = need_count(k != "num-supernodes");
      if (!n) return n.error();
      (k == "num-supernodes" ? out.num_supernodes : k == "compute-threads" ? out.compute_threads : out.seed) = *n;
      if (k == "num-supernodes") out.num_supernodes_given = true;
    } else {
      return config_failure("--federation-config: unknown key '" + k +
                            "' (known: address, root-certificates, certificate, private-key, "
                            "superlink-name, superlink-key, num-supernodes, compute-threads, seed)");
    }
  }
  if (tls && (tls->ca.empty() || tls->certificate.empty() || tls->key.empty()))
    return config_failure("--federation-config: TLS needs root-certificates, certificate and private-key");
  if (tls && !out.address)
    return config_failure("--federation-config: TLS files given for a federation without an address");
  if ((!out.superlink_name.empty() || !out.superlink_key.empty()) && !tls)
    return config_failure("--federation-config: superlink-name and superlink-key need TLS (root-certificates, "
                          "certificate, private-key)");
  out.tls = tls;
  fed = std::move(out);
  return {};
}

}  // namespace stamen
