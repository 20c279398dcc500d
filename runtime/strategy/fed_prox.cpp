#include "runtime/strategy/fed_prox.hpp"

#include <stdexcept>

#include "runtime/format.hpp"

namespace stamen {

fed_prox::fed_prox(fed_prox_options opts) : fed_avg(opts), mu_(opts.proximal_mu) {
  if (!(mu_ >= 0)) throw std::invalid_argument("FedProx: proximal_mu must be >= 0");
}

std::vector<std::string> fed_prox::summary(int num_rounds, const array_record& arrays,
                                           const config_record& train_config,
                                           const config_record& evaluate_config) const {
  std::string mu = format_double("%g", mu_);
  if (mu_ == 0.0) mu += " (FedProx with proximal_mu = 0 is FedAvg)";
  return insert_settings(fed_avg::summary(num_rounds, arrays, train_config, evaluate_config),
                         "FedProx settings", {"Proximal mu: " + mu});
}

std::vector<message> fed_prox::configure_train(int round, const array_record& arrays,
                                               config_record config, grid& g) {
  config.insert_or_assign("proximal-mu", mu_);
  return fed_avg::configure_train(round, arrays, std::move(config), g);
}

}  // namespace stamen
