#include "messages/buffer.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace stamen {

namespace {

constexpr size_t huge_page = size_t{2} << 20;

// Large buffers are mapped on 2 MiB boundaries and marked for transparent huge
// pages: filling a fresh 100 MB buffer then takes 50 page faults, not 25,600,
// which on a virtual machine is most of the cost of encoding a model.
std::pair<buffer, std::byte*> allocate_huge(size_t size) {
  size_t len = (size + huge_page - 1) / huge_page * huge_page + huge_page;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc{};
  auto base = reinterpret_cast<uintptr_t>(m);
  auto aligned = (base + huge_page - 1) / huge_page * huge_page;
  madvise(reinterpret_cast<void*>(aligned), len - (aligned - base), MADV_HUGEPAGE);
  auto* bytes = reinterpret_cast<std::byte*>(aligned);
  std::shared_ptr<const void> owner{m, [len](const void* q) { munmap(const_cast<void*>(q), len); }};
  return {buffer{std::move(owner), bytes, size}, bytes};
}

}  // namespace

std::pair<buffer, std::byte*> buffer::allocate(size_t size) {
  if (size >= 4 * huge_page) return allocate_huge(size);
  // calloc gives 16-byte alignment (Cap'n Proto needs 8).
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
