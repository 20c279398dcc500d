#include "messages/torch_bridge.hpp"

#include <torch/torch.h>

#include <boost/test/unit_test.hpp>

#include "messages/codec.hpp"

using namespace stamen;

namespace {

// Conv + batch norm + linear: parameters and buffers (one of them int64).
struct probe_net : torch::nn::Module {
  probe_net() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 5)));
    bn = register_module("bn", torch::nn::BatchNorm2d(6));
    fc = register_module("fc", torch::nn::Linear(24, 10));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear fc{nullptr};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_bridge_suite)

BOOST_AUTO_TEST_CASE(state_dict_round_trip_is_bit_exact_through_the_codec) {
  torch::manual_seed(1);
  probe_net a;
  a.bn->running_mean.normal_();
  a.bn->num_batches_tracked.fill_(17);
  auto arrays = state_dict_to_arrays(a);
  std::vector<std::string> names;
  for (auto& [k, v] : arrays) names.push_back(k);
  BOOST_TEST(names == (std::vector<std::string>{"conv.weight", "conv.bias", "bn.weight", "bn.bias",
                                                "fc.weight", "fc.bias", "bn.running_mean",
                                                "bn.running_var", "bn.num_batches_tracked"}),
             boost::test_tools::per_element());
  BOOST_TEST((arrays.get("bn.num_batches_tracked")->type() == dtype::int64));

  record_dict content;
  content.insert_or_assign("arrays", arrays);
  auto wire = decode(*encode(*make_instruction(content, "train", 2)));
  BOOST_REQUIRE(wire);

  torch::manual_seed(2);
  probe_net b;
  BOOST_TEST(!torch::equal(a.conv->weight, b.conv->weight));
  auto ok = load_arrays_into(b, *wire->content().arrays("arrays"));
  BOOST_REQUIRE_MESSAGE(ok.has_value(), (ok ? std::string{} : ok.error().what));
  auto sa = a.named_parameters();
  for (auto& p : b.named_parameters()) BOOST_TEST(torch::equal(p.value(), sa[p.key()]), p.key());
  BOOST_TEST(torch::equal(a.bn->running_mean, b.bn->running_mean));
  BOOST_TEST(b.bn->num_batches_tracked.item<int64_t>() == 17);
}

BOOST_AUTO_TEST_CASE(mismatches_are_reported_and_leave_the_model_unchanged) {
  probe_net a, b;
  auto before = b.conv->weight.clone();
  auto arrays = state_dict_to_arrays(a);
  arrays.insert_or_assign("fc.weight", array::from_values(dtype::float32, {10, 23},
                                                          std::vector<float>(230)));
  auto r = load_arrays_into(b, arrays);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().what.find("'fc.weight': model expects float32[10, 24], got float32[10, 23]") !=
                 std::string::npos,
             r.error().what);
  BOOST_TEST(torch::equal(before, b.conv->weight));
  arrays.erase("fc.weight");
  BOOST_TEST(!load_arrays_into(b, arrays));
}

BOOST_AUTO_TEST_SUITE_END()
