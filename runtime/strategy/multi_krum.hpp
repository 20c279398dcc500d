#pragma once

#include "runtime/strategy/fed_avg.hpp"

namespace stamen {

class reply_set;

/// MultiKrum's parameters, with Flower's names and defaults.
struct multi_krum_options : fed_avg_options {
  /// f, the number of Byzantine nodes the rule must withstand.
  size_t num_malicious_nodes = 0;
  /// m, how many of the best-scored updates are averaged (1: Krum).
  size_t num_nodes_to_select = 1;
};

/// The indices (into `set`) of the `m` updates with the lowest Krum scores
/// (Blanchard et al., 2017): a score is the sum of squared distances to the
/// n - f - 2 closest other updates (at least 1). Ties go to the lower node id.
std::vector<size_t> select_multi_krum(const reply_set& set, size_t f, size_t m);

/// Why a round with `results` valid replies is too small for a Byzantine
/// rule that needs `needed` (written `formula`, e.g. "2f + 3") against
/// f = num_malicious_nodes; nothing when it is not.
std::optional<std::string> too_few_replies(const std::string& rule, const char* formula,
                                           size_t needed, size_t f, size_t results);

/// MultiKrum (Blanchard et al., 2017; Flower's MultiKrum): the weighted
/// average of the num_nodes_to_select updates with the lowest Krum scores.
/// A round with fewer than 2f + 3 valid replies keeps the previous arrays,
/// since the rule then guarantees nothing. Keeps every accepted reply until
/// the round ends.
class multi_krum : public fed_avg {
 public:
  /// Throws std::invalid_argument when num_nodes_to_select is 0.
  explicit multi_krum(multi_krum_options opts = {});

  std::string name() const override { return "MultiKrum"; }
  /// Each node's own update (secure aggregation is refused).
  bool needs_individual_updates() const override { return true; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
  std::unique_ptr<train_aggregator> make_train_aggregator(int round,
                                                          const array_record& current) override;
  std::optional<std::string> reject_train_round(const phase_report& report) const override;

  size_t num_malicious_nodes() const { return f_; }  ///< f, as given in the options
  size_t num_nodes_to_select() const { return m_; }  ///< m, as given in the options (1 for Krum)

 private:
  size_t f_;
  size_t m_;
};

/// Krum: MultiKrum selecting one update (Flower's Krum).
class krum : public multi_krum {
 public:
  /// Flower's Krum: `num_malicious_nodes` is f; one update is selected.
  explicit krum(fed_avg_options opts = {}, size_t num_malicious_nodes = 0);

  std::string name() const override { return "Krum"; }
  std::vector<std::string> summary(int num_rounds, const array_record& arrays,
                                   const config_record& train_config,
                                   const config_record& evaluate_config) const override;
};

}  // namespace stamen
