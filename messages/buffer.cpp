#include "messages/buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace stamen {

std::pair<buffer, std::byte*> buffer::allocate(size_t size) {
  // calloc gives 16-byte alignment (Cap'n Proto needs 8) and, for large sizes,
  // lazily-zeroed pages from mmap.
  void* p = std::calloc(size == 0 ? 1 : size, 1);
  if (p == nullptr) throw std::bad_alloc{};
  auto* bytes = static_cast<std::byte*>(p);
  std::shared_ptr<const void> owner{p, [](const void* q) { std::free(const_cast<void*>(q)); }};
  return {buffer{std::move(owner), bytes, size}, bytes};
}

buffer buffer::copy_of(const void* data, size_t size) {
  auto [buf, out] = allocate(size);
  if (size > 0) std::memcpy(out, data, size);
  return buf;
}

bool operator==(const buffer& a, const buffer& b) {
  return a.size_ == b.size_ &&
         (a.data_ == b.data_ || a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
}

}  // namespace stamen
