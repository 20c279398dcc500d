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

// Sets `out` from `t[key]` when the key is there; fails on a value not listed.
template <class Enum>
expected<void> optional_choice(const toml::value& t, const char* key, Enum& out,
                               std::initializer_list<std::pair<const char*, Enum>> choices) {
  if (!t.contains(key)) return {};
  auto v = one_of<Enum>(toml::find(t, key), key, choices);
  if (!v) return v.error();
  out = *v;
  return {};
}

// Sets `out` from `t[key]` when the key is there; fails outside [lo, hi].
expected<void> optional_number(const toml::value& t, const char* key, double& out, double lo,
                               double hi) {
  if (!t.contains(key)) return {};
  auto x = number(toml::find(t, key), key, lo, hi);
  if (!x) return x.error();
  out = *x;
  return {};
}

expected<fault_action> parse_action(const toml::value& t) {
  if (!t.contains("action")) return bad("[[faults.rule]] needs an 'action'", t, "here");
  return one_of<fault_action>(toml::find(t, "action"), "action",
                              {{"crash", fault_action::crash},
                               {"drop", fault_action::drop},
                               {"delay", fault_action::delay},
                               {"duplicate", fault_action::duplicate},
                               {"corrupt", fault_action::corrupt},
                               {"slow", fault_action::slow},
                               {"partition", fault_action::partition},
                               {"restart", fault_action::restart},
                               {"poison", fault_action::poison}});
}

// Which nodes and rounds a rule hits: `nodes` (a list or "all") or
// `fraction`, and `rounds` (a list or "every").
expected<void> parse_targets(const toml::value& t, fault_rule& r) {
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
  } else if (auto ok = optional_number(t, "fraction", r.fraction, 0, 1); !ok) {
    return ok;
  }
  if (t.contains("rounds")) {
    auto& v = toml::find(t, "rounds");
    if (!(v.is_string() && v.as_string().str == "every")) {
      auto xs = int_list(v, "rounds");
      if (!xs) return xs.error();
      r.rounds = std::move(*xs);
    }
  }
  return {};
}

// How the rule acts: phase, crash point, drop target, delay and probability.
expected<void> parse_manner(const toml::value& t, fault_rule& r) {
  if (auto ok = optional_choice<fault_phase>(t, "phase", r.phase,
                                             {{"train", fault_phase::train},
                                              {"evaluate", fault_phase::evaluate},
                                              {"any", fault_phase::any}});
      !ok)
    return ok;
  if (auto ok = optional_choice<std::string>(t, "stage", r.stage,
                                             {{"setup", "setup"},
                                              {"share-keys", "share-keys"},
                                              {"collect-masked-vectors", "collect-masked-vectors"},
                                              {"unmask", "unmask"}});
      !ok)
    return ok;
  if (auto ok = optional_choice<crash_point>(t, "when", r.when,
                                             {{"before", crash_point::before},
                                              {"during", crash_point::during},
                                              {"after", crash_point::after}});
      !ok)
    return ok;
  if (auto ok = optional_choice<drop_target>(t, "target", r.target,
                                             {{"instruction", drop_target::instruction},
                                              {"reply", drop_target::reply}});
      !ok)
    return ok;
  if (auto ok = optional_number(t, "delay-ms", r.delay_ms, 0, 3.6e6); !ok) return ok;
  return optional_number(t, "probability", r.probability, 0, 1);
}

// A poison rule's `how`, `factor`, `sigma` and `num-examples`.
expected<void> parse_poison(const toml::value& t, fault_rule& r) {
  static const char* own[] = {"how", "factor", "sigma", "num-examples"};
  if (r.action != fault_action::poison) {
    for (auto* k : own)
      if (t.contains(k))
        return bad("'" + std::string{k} + "' belongs to a 'poison' rule", toml::find(t, k),
                   "here");
    return {};
  }
  if (!t.contains("how"))
    return bad("a 'poison' rule needs 'how' (sign-flip, scale, gaussian, zero or random)", t,
               "here");
  auto how = one_of<poison_kind>(toml::find(t, "how"), "how",
                                 {{"sign-flip", poison_kind::sign_flip},
                                  {"scale", poison_kind::scale},
                                  {"gaussian", poison_kind::gaussian},
                                  {"zero", poison_kind::zero},
                                  {"random", poison_kind::random}});
  if (!how) return how.error();
  r.poison.how = *how;
  if (auto ok = optional_number(t, "factor", r.poison.factor, -1e6, 1e6); !ok) return ok;
  if (auto ok = optional_number(t, "sigma", r.poison.sigma, 0, 1e6); !ok) return ok;
  if (t.contains("num-examples")) {
    auto& v = toml::find(t, "num-examples");
    if (!v.is_integer() || v.as_integer() < 1)
      return bad("'num-examples' must be a positive integer", v, "here");
    r.poison.num_examples = v.as_integer();
  }
  if (r.phase == fault_phase::evaluate)
    return bad("a 'poison' rule changes train replies: phase = \"evaluate\" does not apply", t,
               "here");
  r.phase = fault_phase::train;
  return {};
}

expected<fault_rule> parse_rule(const toml::value& t) {
  static const std::set<std::string> keys{"action",      "nodes",  "fraction", "rounds",
                                          "phase",       "when",   "delay-ms", "probability",
                                          "target",      "how",    "factor",   "sigma",
                                          "num-examples", "stage"};
  if (!t.is_table()) return bad("a [[faults.rule]] must be a table", t, "here");
  for (auto& [k, v] : t.as_table())
    if (keys.count(k) == 0)
      return bad("unknown key '" + k + "' in [[faults.rule]]", v,
                 "expected action, nodes, fraction, rounds, phase, when, delay-ms, probability, "
                 "target, how, factor, sigma or num-examples");
  fault_rule r;
  auto action = parse_action(t);
  if (!action) return action.error();
  r.action = *action;
  if (auto ok = parse_targets(t, r); !ok) return ok.error();
  if (auto ok = parse_manner(t, r); !ok) return ok.error();
  if (auto ok = parse_poison(t, r); !ok) return ok.error();
  if (r.action == fault_action::restart && r.when == crash_point::during)
    return bad("a 'restart' rule takes when = \"before\" or \"after\" (delay-ms is how long the "
               "node stays down)",
               t, "here");
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
