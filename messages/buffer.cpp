#include "messages/buffer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace stamen {

namespace {

constexpr size_t huge_page = size_t{2} << 20;

// Large buffers are mapped on 2 MiB boundaries and marked for transparent huge
// pages: filling a fresh 100 MB buffer then takes 50 page faults, not 25,600,
// which on a virtual machine is most of the cost of encoding a model.
//
// A mapping whose buffer is released is kept for the next large allocation
// instead of being unmapped: a round moves buffers of the same few sizes (the
// model's encoding, each frame's payload), and writing into pages that are
// already mapped runs at memcpy speed, where fresh pages cost a fault and the
// kernel's zeroing each. Kept mappings are handed to the kernel with
// MADV_FREE, so it takes their pages back when memory gets short; they cost
// memory only while nothing else wants it.
struct mapping {
  void* base;
  size_t len;
};

class mapping_cache {
 public:
  // Enough for a few buffers of a 1 GB model, and at most an eighth of the
  // machine's memory; more is unmapped at once.
  static constexpr size_t max_entries = 8;
  const size_t max_bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t eighth = pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) / 8 : 0;
    return std::min(size_t{3} << 30, eighth > 0 ? eighth : size_t{512} << 20);
  }();

  // A kept mapping of at least `len` bytes and not much more (a 1 GB mapping
  // is not spent on a 10 MB buffer), or none.
  bool take(size_t len, mapping& out) {
    std::lock_guard<std::mutex> guard{mu_};
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i) {
      auto l = free_[i].len;
      if (l >= len && l - len <= len / 4 + huge_page && (best == free_.size() || l < free_[best].len))
        best = i;
    }
    if (best == free_.size()) return false;
    out = free_[best];
    bytes_ -= out.len;
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
    return true;
  }

  void give(mapping m) {
    if (m.len > max_bytes) {
      munmap(m.base, m.len);
      return;
    }
    madvise(m.base, m.len, MADV_FREE);
    std::vector<mapping> drop;
    {
      std::lock_guard<std::mutex> guard{mu_};
      free_.push_back(m);
      bytes_ += m.len;
      // Oldest first out.
      while (bytes_ > max_bytes || free_.size() > max_entries) {
        drop.push_back(free_.front());
        bytes_ -= free_.front().len;
        free_.erase(free_.begin());
      }
    }
    for (auto& d : drop) munmap(d.base, d.len);
  }

 private:
  std::mutex mu_;
  std::vector<mapping> free_;
  size_t bytes_ = 0;
};

mapping_cache& cache() {
  // Never destroyed: buffers released by other static destructors still
  // find it.
  static auto* c = new mapping_cache;
  return *c;
}

std::pair<buffer, std::byte*> allocate_huge(size_t size, bool zero) {
  size_t len = (size + huge_page - 1) / huge_page * huge_page + huge_page;
  mapping m{};
  bool reused = cache().take(len, m);
  if (!reused) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc{};
    m = mapping{p, len};
  }
  auto base = reinterpret_cast<uintptr_t>(m.base);
  auto aligned = (base + huge_page - 1) / huge_page * huge_page;
  if (!reused) madvise(reinterpret_cast<void*>(aligned), m.len - (aligned - base), MADV_HUGEPAGE);
  auto* bytes = reinterpret_cast<std::byte*>(aligned);
  // Fresh pages are zero already; kept ones hold an earlier buffer's bytes.
  if (reused && zero) std::memset(bytes, 0, size);
  std::shared_ptr<const void> owner{m.base, [m](const void*) { cache().give(m); }};
  return {buffer{std::move(owner), bytes, size}, bytes};
}

std::pair<buffer, std::byte*> allocate_small(size_t size, bool zero) {
  // malloc/calloc give 16-byte alignment (Cap'n Proto needs 8).
  void* p = zero ? std::calloc(size == 0 ? 1 : size, 1) : std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc{};
  auto* bytes = static_cast<std::byte*>(p);
  std::shared_ptr<const void> owner{p, [](const void* q) { std::free(const_cast<void*>(q)); }};
  return {buffer{std::move(owner), bytes, size}, bytes};
}

}  // namespace

std::pair<buffer, std::byte*> buffer::allocate(size_t size) {
  if (size >= 4 * huge_page) return allocate_huge(size, true);
  return allocate_small(size, true);
}

std::pair<buffer, std::byte*> buffer::allocate_for_overwrite(size_t size) {
  if (size >= 4 * huge_page) return allocate_huge(size, false);
  return allocate_small(size, false);
}

buffer buffer::copy_of(const void* data, size_t size) {
  auto [buf, out] = allocate_for_overwrite(size);
  if (size > 0) std::memcpy(out, data, size);
  return buf;
}

buffer buffer::join(const std::vector<buffer>& parts) {
  size_t total = 0;
  for (auto& p : parts) total += p.size();
  auto [buf, out] = allocate_for_overwrite(total);
  for (auto& p : parts)
    if (p.size() > 0) {
      std::memcpy(out, p.data(), p.size());
      out += p.size();
    }
  return buf;
}

bool operator==(const buffer& a, const buffer& b) {
  return a.size_ == b.size_ &&
         (a.data_ == b.data_ || a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
}

}  // namespace stamen
