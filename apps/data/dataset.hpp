#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stamen::data {

/// Images as raw bytes (N x C x H x W, channel-major like CIFAR's files) and
/// their labels. Kept as uint8 so the whole of Fashion-MNIST is 47 MB, and
/// normalized per batch when it becomes a tensor.
struct image_dataset {
  size_t count = 0;
  size_t channels = 1;
  size_t height = 0;
  size_t width = 0;
  size_t num_classes = 10;
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;

  size_t image_size() const { return channels * height * width; }
  const uint8_t* image(size_t i) const { return pixels.data() + i * image_size(); }
};

}  // namespace stamen::data
