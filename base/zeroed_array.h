// ZeroedArray<T>: a fixed-size array whose elements start as all-zero bytes
// and whose memory is never written at construction.
//
// Tables sized for the worst case (nf_conntrack_max entries, a recorded
// path per conntrack node) are large: 130 MB for one pipeline at the
// kernel's default 262144 entries. A std::vector writes every element when
// it is sized, so every page is faulted in before the first packet (tens of
// milliseconds per pipeline, and RSS of the whole table for a capture of
// ten flows). calloc hands large blocks over as fresh zero pages, so an
// element costs memory only once it is written.
//
// Contract:
//   - T is trivially copyable and trivially destructible, and the all-zero
//     object is a valid T (each user says what zero means for its T). The
//     elements are created implicitly by calloc (C++20 implicit-lifetime
//     types); no constructor of T runs.
//   - The size is fixed at construction (a copy has the same size); the storage is aligned to
//     alignof(T) (up to 4096).
//   - Construction throws std::bad_alloc when memory is short; nothing
//     else allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace nfb {

template <class T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "ZeroedArray holds implicit-lifetime types only");
  static_assert(alignof(T) <= 4096);

 public:
  ZeroedArray() noexcept = default;
  explicit ZeroedArray(std::size_t n) : size_(n) {
    if (n == 0) return;
    if (n > (SIZE_MAX - alignof(T)) / sizeof(T)) throw std::bad_alloc();
    raw_ = std::calloc(n * sizeof(T) + alignof(T), 1);
    if (raw_ == nullptr) throw std::bad_alloc();
    const auto addr = reinterpret_cast<std::uintptr_t>(raw_);
    const std::uintptr_t aligned = (addr + alignof(T) - 1) & ~(std::uintptr_t{alignof(T)} - 1);
    data_ = std::launder(reinterpret_cast<T*>(aligned));
  }
  ZeroedArray(ZeroedArray&& o) noexcept
      : raw_(std::exchange(o.raw_, nullptr)), data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)) {}
  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    if (this != &o) {
      std::free(raw_);
      raw_ = std::exchange(o.raw_, nullptr);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  /// A copy writes every element (its pages are faulted in).
  ZeroedArray(const ZeroedArray& o) : ZeroedArray(o.size_) {
    if (size_ != 0) std::memcpy(static_cast<void*>(data_), o.data_, size_ * sizeof(T));
  }
  ZeroedArray& operator=(const ZeroedArray& o) {
    if (this != &o) *this = ZeroedArray(o);
    return *this;
  }
  ~ZeroedArray() { std::free(raw_); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }

 private:
  void* raw_ = nullptr;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace nfb
