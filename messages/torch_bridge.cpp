#include "messages/torch_bridge.hpp"

#include <torch/torch.h>

#include <stdexcept>

namespace stamen {

namespace {

std::optional<dtype> from_scalar_type(c10::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return dtype::float32;
    case torch::kFloat64: return dtype::float64;
    case torch::kInt64: return dtype::int64;
    case torch::kInt32: return dtype::int32;
    case torch::kUInt8: return dtype::uint8;
    case torch::kBool: return dtype::bool_;
    case torch::kFloat16: return dtype::float16;
    case torch::kInt8: return dtype::int8;
    case torch::kInt16: return dtype::int16;
    case torch::kBFloat16: return dtype::bfloat16;
    default: return std::nullopt;
  }
}

c10::ScalarType to_scalar_type(dtype t) {
  switch (t) {
    case dtype::float32: return torch::kFloat32;
    case dtype::float64: return torch::kFloat64;
    case dtype::int64: return torch::kInt64;
    case dtype::int32: return torch::kInt32;
    case dtype::uint8: return torch::kUInt8;
    case dtype::bool_: return torch::kBool;
    case dtype::float16: return torch::kFloat16;
    case dtype::int8: return torch::kInt8;
    case dtype::int16: return torch::kInt16;
    case dtype::bfloat16: return torch::kBFloat16;
  }
  throw std::invalid_argument("unknown dtype");
}

std::vector<std::pair<std::string, torch::Tensor>> named_state(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (auto& b : m.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

array to_array(const at::Tensor& t) {
  auto type = from_scalar_type(t.scalar_type());
  if (!type)
    throw std::invalid_argument(std::string{"tensor dtype "} + c10::toString(t.scalar_type()) +
                                " has no Array equivalent");
  auto cpu = t.detach().to(torch::kCPU).contiguous();
  std::vector<int64_t> shape(cpu.sizes().begin(), cpu.sizes().end());
  auto bytes = buffer::copy_of(cpu.data_ptr(), cpu.numel() * cpu.element_size());
  auto a = array::make(*type, std::move(shape), std::move(bytes));
  if (!a) throw std::invalid_argument(a.error().what);
  return std::move(a).value();
}

at::Tensor to_tensor(const array& a) {
  auto opts = torch::TensorOptions().dtype(to_scalar_type(a.type()));
  auto t = torch::empty(a.shape(), opts);
  if (a.nbytes() > 0) std::memcpy(t.data_ptr(), a.data(), a.nbytes());
  return t;
}

array_record state_dict_to_arrays(const torch::nn::Module& m) {
  array_record out;
  for (auto& [name, t] : named_state(m)) out.insert_or_assign(name, to_array(t));
  return out;
}

expected<void> load_arrays_into(torch::nn::Module& m, const array_record& arrays) {
  auto state = named_state(m);
  if (state.size() != arrays.size())
    return fail(errc::shape_mismatch, "model has " + std::to_string(state.size()) +
                                          " tensors but the ArrayRecord has " +
                                          std::to_string(arrays.size()));
  // Validate everything first so that a mismatch leaves the module untouched.
  for (auto& [name, t] : state) {
    auto* a = arrays.get(name);
    if (a == nullptr) return fail(errc::shape_mismatch, "ArrayRecord lacks '" + name + "'");
    auto type = from_scalar_type(t.scalar_type());
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    if (!type || *type != a->type() || shape != a->shape()) {
      auto want = array::make(type.value_or(dtype::float32), shape,
                              buffer::allocate(t.numel() * t.element_size()).first);
      return fail(errc::shape_mismatch, "'" + name + "': model expects " +
                                            (want ? want->describe() : std::string{"?"}) +
                                            ", got " + a->describe());
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : state) t.copy_(to_tensor(*arrays.get(name)).to(t.device()));
  return {};
}

}  // namespace stamen
