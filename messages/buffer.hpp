#pragma once

#include <cstddef>
#include <memory>
#include <vector>
#include <utility>

namespace stamen {

/// Shared, immutable, 8-byte-aligned bytes. Copying a buffer copies a
/// reference, never the bytes: an encoded message travels between actors as a
/// buffer, and the arrays decoded from it are slices that keep it alive.
class buffer {
 public:
  /// An empty buffer: no bytes, null `data()`.
  buffer() = default;

  /// Allocates `size` zeroed bytes and returns them with a pointer for filling
  /// them in before the buffer is shared. Large sizes come from fresh zero
  /// pages, or from mappings of released large buffers (see buffer.cpp).
  static std::pair<buffer, std::byte*> allocate(size_t size);

  /// Like allocate, but the bytes are not zeroed (they may hold an earlier
  /// buffer's bytes of this process): for callers that write every byte
  /// before the buffer is shared, such as a frame's payload or an encoding.
  static std::pair<buffer, std::byte*> allocate_for_overwrite(size_t size);

  /// A buffer holding a copy of `[data, data + size)`.
  static buffer copy_of(const void* data, size_t size);

  /// One buffer holding `parts` one after another (copied).
  static buffer join(const std::vector<buffer>& parts);

  /// Adopts memory owned by `owner` (which must keep `[data, data + size)` alive).
  buffer(std::shared_ptr<const void> owner, const std::byte* data, size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  /// First byte; null for an empty default buffer.
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }      ///< Length in bytes.
  bool empty() const { return size_ == 0; }  ///< Whether `size()` is 0.

  /// A view of `[offset, offset + size)` that shares ownership of this buffer.
  buffer slice(size_t offset, size_t size) const { return buffer{owner_, data_ + offset, size}; }

  /// How many owners share the underlying memory (for tests and diagnostics).
  long use_count() const { return owner_.use_count(); }

  /// Compares the bytes, not the identity.
  friend bool operator==(const buffer& a, const buffer& b);
  /// Negation of `operator==`.
  friend bool operator!=(const buffer& a, const buffer& b) { return !(a == b); }

 private:
  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace stamen
