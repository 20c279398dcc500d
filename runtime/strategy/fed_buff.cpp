#include "runtime/strategy/fed_buff.hpp"

#include <stdexcept>

#include "runtime/format.hpp"

namespace stamen {

fed_buff::fed_buff(fed_avg_options opts, async_options async, fed_buff_options buff)
    : async_strategy(std::move(opts), async), buff_(buff) {
  if (buff_.buffer_size == 0) throw std::invalid_argument("FedBuff: buffer_size must be at least 1");
  if (!(buff_.server_learning_rate > 0))
    throw std::invalid_argument("FedBuff: server_learning_rate must be > 0");
}

std::vector<std::string> fed_buff::summary(int num_rounds, const array_record& arrays,
                                           const config_record& train_config,
                                           const config_record& evaluate_config) const {
  return insert_settings(
      async_strategy::summary(num_rounds, arrays, train_config, evaluate_config),
      "FedBuff settings",
      {"Buffer size: " + std::to_string(buff_.buffer_size),
       "Server learning rate: " + format_double("%g", buff_.server_learning_rate)});
}

bool fed_buff::absorb(array_record& global, const array_record& update, const array_record& base,
                      int64_t tau, double) {
  if (sum_.empty())
    for (auto& [k, a] : global) sum_.emplace_back(static_cast<size_t>(a.numel()), 0.0);
  double s = async().staleness(tau);
  size_t i = 0;
  auto b = base.begin();
  for (auto& [k, a] : update) {
    auto wk = to_doubles(a), w0 = to_doubles((b++)->second);
    auto& acc = sum_[i++];
    for (size_t j = 0; j < wk.size(); ++j) acc[j] += s * (wk[j] - w0[j]);
  }
  if (++count_ < buff_.buffer_size) return false;
  array_record next;
  i = 0;
  for (auto& [k, a] : global) {
    auto& acc = sum_[i++];
    if (!is_floating(a.type())) {
      next.insert_or_assign(k, a);
    } else {
      auto w = to_doubles(a);
      for (size_t j = 0; j < w.size(); ++j)
        w[j] += buff_.server_learning_rate * acc[j] / static_cast<double>(buff_.buffer_size);
      next.insert_or_assign(k, from_doubles(a, w));
    }
    std::fill(acc.begin(), acc.end(), 0.0);
  }
  global = std::move(next);
  count_ = 0;
  return true;
}

fed_async::fed_async(fed_avg_options opts, async_options async, fed_async_options mix)
    : async_strategy(std::move(opts), async), mix_(mix) {
  if (!(mix_.mixing_alpha > 0 && mix_.mixing_alpha <= 1))
    throw std::invalid_argument("FedAsync: mixing_alpha must lie in (0, 1]");
}

std::vector<std::string> fed_async::summary(int num_rounds, const array_record& arrays,
                                            const config_record& train_config,
                                            const config_record& evaluate_config) const {
  return insert_settings(async_strategy::summary(num_rounds, arrays, train_config, evaluate_config),
                         "FedAsync settings",
                         {"Mixing alpha: " + format_double("%g", mix_.mixing_alpha)});
}

bool fed_async::absorb(array_record& global, const array_record& update, const array_record&,
                       int64_t tau, double) {
  double alpha = mix_.mixing_alpha * async().staleness(tau);
  array_record next;
  auto u = update.begin();
  for (auto& [k, a] : global) {
    auto& wk = (u++)->second;
    if (!is_floating(a.type())) {
      next.insert_or_assign(k, a);
      continue;
    }
    auto w = to_doubles(a), x = to_doubles(wk);
    for (size_t j = 0; j < w.size(); ++j) w[j] = (1 - alpha) * w[j] + alpha * x[j];
    next.insert_or_assign(k, from_doubles(a, w));
  }
  global = std::move(next);
  return true;
}

}  // namespace stamen
