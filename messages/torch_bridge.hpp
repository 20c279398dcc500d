#pragma once

// Conversion between LibTorch modules/tensors and Arrays. This is the only
// part of the message layer that knows torch exists; its header forward
// declares what it needs so that includers do not pay for <torch/torch.h>.

#include "messages/array.hpp"
#include "messages/array_record.hpp"
#include "messages/expected.hpp"

namespace at {
class Tensor;
}
namespace torch::nn {
class Module;
}

namespace stamen {

/// Copies a tensor (any device, any layout) into a contiguous CPU array.
/// Throws std::invalid_argument for a dtype without an Array equivalent.
array to_array(const at::Tensor& t);

/// A CPU tensor holding a copy of the array's bytes.
at::Tensor to_tensor(const array& a);

/// The module's state dict: named_parameters() then named_buffers(), in order,
/// keyed by their dotted names as PyTorch's state_dict() names them.
array_record state_dict_to_arrays(const torch::nn::Module& m);

/// Loads `arrays` into `m` in place. Strict, like load_state_dict(strict=True):
/// the same keys, dtypes and shapes, or a failure naming the first difference
/// (and `m` is left unchanged).
expected<void> load_arrays_into(torch::nn::Module& m, const array_record& arrays);

}  // namespace stamen
