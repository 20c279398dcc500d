#include "runtime/fault/fault_plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

namespace stamen {

namespace {

// SplitMix64: a good 64-bit mix, so that every (seed, rule, round, node)
// draws its own number.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return mix(mix(mix(mix(a) ^ b) ^ c) ^ d);
}

}  // namespace

const char* to_string(fault_action x) {
  switch (x) {
    case fault_action::crash: return "crash";
    case fault_action::drop: return "drop";
    case fault_action::delay: return "delay";
    case fault_action::duplicate: return "duplicate";
    case fault_action::corrupt: return "corrupt";
    case fault_action::slow: return "slow";
    case fault_action::partition: return "partition";
    case fault_action::restart: return "restart";
    case fault_action::poison: return "poison";
  }
  return "?";
}

const char* to_string(fault_phase x) {
  switch (x) {
    case fault_phase::train: return "train";
    case fault_phase::evaluate: return "evaluate";
    case fault_phase::any: return "any";
  }
  return "?";
}

fault_phase phase_of(const std::string& type) {
  auto cat = type.substr(0, type.find('.'));
  if (cat == "train") return fault_phase::train;
  if (cat == "evaluate") return fault_phase::evaluate;
  return fault_phase::any;
}

fault_injector::fault_injector(fault_plan plan, std::unordered_map<uint64_t, int64_t> node_index,
                               size_t num_nodes)
    : plan_(std::move(plan)), node_index_(std::move(node_index)) {
  chosen_.resize(plan_.rules.size());
  for (size_t r = 0; r < plan_.rules.size(); ++r) {
    auto& rule = plan_.rules[r];
    if (rule.all || rule.fraction <= 0) continue;
    // Exactly round(fraction * N) nodes, by a seeded shuffle.
    std::vector<size_t> idx(num_nodes);
    std::iota(idx.begin(), idx.end(), size_t{0});
    for (size_t i = idx.size(); i > 1; --i)
      std::swap(idx[i - 1], idx[hash(plan_.seed, r, 0xf4ac, i) % i]);
    auto k = static_cast<size_t>(std::llround(rule.fraction * static_cast<double>(num_nodes)));
    chosen_[r].assign(num_nodes, false);
    for (size_t i = 0; i < std::min(k, num_nodes); ++i) chosen_[r][idx[i]] = true;
  }
}

bool fault_injector::selects(size_t r, int64_t index) const {
  auto& rule = plan_.rules[r];
  if (rule.all) return true;
  if (!chosen_[r].empty())
    return index >= 0 && static_cast<size_t>(index) < chosen_[r].size() &&
           chosen_[r][static_cast<size_t>(index)];
  return std::find(rule.nodes.begin(), rule.nodes.end(), index) != rule.nodes.end();
}

std::vector<const fault_rule*> fault_injector::match(int64_t round, fault_phase phase,
                                                     uint64_t node_id,
                                                     const std::string& stage) const {
  std::vector<const fault_rule*> out;
  auto it = node_index_.find(node_id);
  int64_t index = it == node_index_.end() ? -1 : it->second;
  for (size_t r = 0; r < plan_.rules.size(); ++r) {
    auto& rule = plan_.rules[r];
    if (rule.phase != fault_phase::any && rule.phase != phase) continue;
    if (!rule.stage.empty() && rule.stage != stage) continue;
    if (!rule.rounds.empty() &&
        std::find(rule.rounds.begin(), rule.rounds.end(), round) == rule.rounds.end())
      continue;
    if (!selects(r, index)) continue;
    if (rule.probability < 1) {
      auto draw = static_cast<double>(hash(plan_.seed, r, static_cast<uint64_t>(round),
                                           static_cast<uint64_t>(index) * 2 + static_cast<uint64_t>(phase)) >> 11) /
                  9007199254740992.0;  // 2^53
      if (draw >= rule.probability) continue;
    }
    out.push_back(&rule);
  }
  return out;
}

uint64_t fault_injector::noise(int64_t round, uint64_t node_id) const {
  return hash(plan_.seed, 0xc0ffee, static_cast<uint64_t>(round), node_id);
}

void fault_injector::record(fault_event e) {
  if (e.node_index < 0)
    if (auto it = node_index_.find(e.node_id); it != node_index_.end()) e.node_index = it->second;
  std::lock_guard<std::mutex> guard{mtx_};
  events_.push_back(e);
}

std::vector<fault_event> fault_injector::events() const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto out = events_;
  // Arrival order varies between runs; the log does not.
  std::sort(out.begin(), out.end(), [](const fault_event& a, const fault_event& b) {
    return std::tie(a.round, a.phase, a.node_index, a.action) <
           std::tie(b.round, b.phase, b.node_index, b.action);
  });
  return out;
}

}  // namespace stamen
