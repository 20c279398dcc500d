#include "config/fault_table.hpp"

#include <set>

namespace stamen {

namespace {

failure bad(const std::string& what, const toml::value& v, const std::string& hint) {
  return failure{errc::config_error, toml::format_error(what, v, hint, {}, false)};
}

template <class Enum>
expected<Enum> one_of(const toml::value& v, const std::string& key,
                      std::initializer_list<std::pair<const char*, Enum>> choices) {
  std::string list;
  for (auto& [name, e] : choices) list += (list.empty() ? "" : ", ") + std::string{name};
  if (v.is_string())
    for (auto& [name, e] : choices)
      if (v.as_string().str == name) return e;
  return bad("'" + key + "' must be one of: " + list, v, "here");
}

expected<std::vector<int64_t>> int_list(const toml::value& v, const std::string& key) {
  if (!v.is_array()) return bad("'" + key + "' must be a list of integers", v, "here");
  std::vector<int64_t> out;
  for (auto& x : v.as_array()) {
    if (!x.is_integer() || x.as_integer() < 0)
      return bad("'" + key + "' must hold non-negative integers", x, "here");
    out.push_back(x.as_integer());
  }
  return out;
}

expected<double> number(const toml::value& v, const std::string& key, double lo, double hi) {
  double x;
  if (v.is_integer()) x = static_cast<double>(v.as_integer());
  else if (v.is_floating()) x = v.as_floating();
  else return bad("'" + key + "' must be a number", v, "here");
  if (x < lo || x > hi)
    return bad("'" + key + "' must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
               v, "here");
  return x;
}

expected<fault_rule> parse_rule(const toml::value& t) {
  static const std::set<std::string> keys{"action", "nodes",    "fraction",    "rounds", "phase",
                                          "when",   "delay-ms", "probability", "target"};
  if (!t.is_table()) return bad("a [[faults.rule]] must be a table", t, "here");
  for (auto& [k, v] : t.as_table())
    if (keys.count(k) == 0)
      return bad("unknown key '" + k + "' in [[faults.rule]]", v,
                 "expected action, nodes, fraction, rounds, phase, when, delay-ms, probability "
                 "or target");
  fault_rule r;
  if (!t.contains("action")) return bad("[[faults.rule]] needs an 'action'", t, "here");
  auto action = one_of<fault_action>(toml::find(t, "action"), "action",
                                     {{"crash", fault_action::crash},
                                      {"drop", fault_action::drop},
                                      {"delay", fault_action::delay},
                                      {"duplicate", fault_action::duplicate},
                                      {"corrupt", fault_action::corrupt},
                                      {"slow", fault_action::slow},
                                      {"partition", fault_action::partition}});
  if (!action) return action.error();
  r.action = *action;
  bool has_nodes = t.contains("nodes"), has_fraction = t.contains("fraction");
  if (has_nodes == has_fraction)
    return bad("[[faults.rule]] needs exactly one of 'nodes' and 'fraction'", t, "here");
  if (has_nodes) {
    auto& n = toml::find(t, "nodes");
    if (n.is_string() && n.as_string().str == "all") {
      r.all = true;
    } else {
      auto xs = int_list(n, "nodes");
      if (!xs) return xs.error();
      r.nodes = std::move(*xs);
    }
  } else {
    auto f = number(toml::find(t, "fraction"), "fraction", 0, 1);
    if (!f) return f.error();
    r.fraction = *f;
  }
  if (t.contains("rounds")) {
    auto& v = toml::find(t, "rounds");
    if (!(v.is_string() && v.as_string().str == "every")) {
      auto xs = int_list(v, "rounds");
      if (!xs) return xs.error();
      r.rounds = std::move(*xs);
    }
  }
  if (t.contains("phase")) {
    auto p = one_of<fault_phase>(toml::find(t, "phase"), "phase",
                                 {{"train", fault_phase::train},
                                  {"evaluate", fault_phase::evaluate},
                                  {"any", fault_phase::any}});
    if (!p) return p.error();
    r.phase = *p;
  }
  if (t.contains("when")) {
    auto w = one_of<crash_point>(toml::find(t, "when"), "when",
                                 {{"before", crash_point::before},
                                  {"during", crash_point::during},
                                  {"after", crash_point::after}});
    if (!w) return w.error();
    r.when = *w;
  }
  if (t.contains("target")) {
    auto d = one_of<drop_target>(toml::find(t, "target"), "target",
                                 {{"instruction", drop_target::instruction},
                                  {"reply", drop_target::reply}});
    if (!d) return d.error();
    r.target = *d;
  }
  if (t.contains("delay-ms")) {
    auto d = number(toml::find(t, "delay-ms"), "delay-ms", 0, 3.6e6);
    if (!d) return d.error();
    r.delay_ms = *d;
  }
  if (t.contains("probability")) {
    auto p = number(toml::find(t, "probability"), "probability", 0, 1);
    if (!p) return p.error();
    r.probability = *p;
  }
  if ((r.action == fault_action::delay || r.action == fault_action::slow) && r.delay_ms <= 0)
    return bad("a '" + std::string{to_string(r.action)} + "' rule needs delay-ms > 0", t, "here");
  return r;
}

}  // namespace

expected<fault_plan> parse_fault_table(const toml::value& faults) {
  fault_plan plan;
  if (!faults.is_table()) return bad("[faults] must be a table", faults, "here");
  for (auto& [k, v] : faults.as_table())
    if (k != "seed" && k != "rule")
      return bad("unknown key '" + k + "' in [faults]", v, "expected seed or [[faults.rule]]");
  if (faults.contains("seed")) {
    auto& s = toml::find(faults, "seed");
    if (!s.is_integer() || s.as_integer() < 0)
      return bad("'seed' must be a non-negative integer", s, "here");
    plan.seed = static_cast<uint64_t>(s.as_integer());
  }
  if (faults.contains("rule")) {
    auto& rules = toml::find(faults, "rule");
    if (!rules.is_array()) return bad("'rule' must be [[faults.rule]] tables", rules, "here");
    for (auto& r : rules.as_array()) {
      auto rule = parse_rule(r);
      if (!rule) return rule.error();
      plan.rules.push_back(std::move(*rule));
    }
  }
  return plan;
}

}  // namespace stamen
