#include "runtime/fault/poison.hpp"

#include <random>

#include "runtime/strategy/array_fold.hpp"

namespace stamen {

const char* to_string(poison_kind x) {
  switch (x) {
    case poison_kind::sign_flip: return "sign-flip";
    case poison_kind::scale: return "scale";
    case poison_kind::gaussian: return "gaussian";
    case poison_kind::zero: return "zero";
    case poison_kind::random: return "random";
  }
  return "?";
}

array_record poison_arrays(const array_record& reply, const array_record* global,
                           const poison_spec& spec, uint64_t seed) {
  bool against_global = global != nullptr && check_layout(reply, *global).has_value();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, spec.sigma);
  array_record out;
  auto g = against_global ? global->begin() : reply.begin();
  for (auto& [k, a] : reply) {
    const array* ref = against_global ? &(g++)->second : nullptr;
    if (!is_floating(a.type())) {
      out.insert_or_assign(k, a);
      continue;
    }
    auto wk = to_doubles(a);
    std::vector<double> w = ref ? to_doubles(*ref) : std::vector<double>(wk.size(), 0.0);
    for (size_t j = 0; j < wk.size(); ++j) {
      double update = wk[j] - w[j];
      switch (spec.how) {
        case poison_kind::sign_flip: wk[j] = w[j] - spec.factor * update; break;
        case poison_kind::scale: wk[j] = w[j] + spec.factor * update; break;
        case poison_kind::gaussian: wk[j] += noise(rng); break;
        case poison_kind::zero: wk[j] = w[j]; break;
        case poison_kind::random: wk[j] = w[j] + noise(rng); break;
      }
    }
    out.insert_or_assign(k, from_doubles(a, wk));
  }
  return out;
}

void poison_content(record_dict& reply, const record_dict& instruction, const poison_spec& spec,
                    uint64_t seed) {
  const array_record* global = nullptr;
  for (auto& [name, rec] : instruction)
    if ((global = std::get_if<array_record>(&rec)) != nullptr) break;
  for (auto& [name, rec] : reply) {
    if (auto* arrays = std::get_if<array_record>(&rec)) {
      *arrays = poison_arrays(*arrays, global, spec, seed++);
    } else if (auto* m = std::get_if<metric_record>(&rec)) {
      if (spec.num_examples && m->contains("num-examples"))
        m->insert_or_assign("num-examples", *spec.num_examples);
    }
  }
}

}  // namespace stamen
