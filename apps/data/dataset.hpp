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
  size_t count = 0;        ///< N, the number of images
  size_t channels = 1;     ///< C: 1 for (Fashion-)MNIST, 3 for CIFAR-10
  size_t height = 0;       ///< H, in pixels
  size_t width = 0;        ///< W, in pixels
  size_t num_classes = 10; ///< labels lie in [0, num_classes)
  std::vector<uint8_t> pixels;  ///< N x C x H x W bytes, 0..255
  std::vector<uint8_t> labels;  ///< N class indices, one per image

  /// Bytes per image, C x H x W.
  size_t image_size() const { return channels * height * width; }
  /// The first byte of image `i` (unchecked: `i` < count).
  const uint8_t* image(size_t i) const { return pixels.data() + i * image_size(); }
};

}  // namespace stamen::data
