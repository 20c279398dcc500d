#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <variant>

namespace stamen {

/// Error codes of the runtime (not Flower's Message error codes, see message.hpp).
enum class errc : uint8_t {
  none = 0,           ///< no error: the zero value, which no runtime function fails with
  invalid_argument,    ///< a value that breaks a documented precondition
  invalid_message,     ///< a message that is well-formed bytes but violates the model
  decode_failed,       ///< bytes that are not a valid encoded message
  message_too_large,   ///< over the configured maximum message size
  shape_mismatch,      ///< array dtype/shape/byte length disagree with what was expected
  config_error,        ///< bad TOML, unknown key, wrong type
  io_error,            ///< a file that cannot be read or written
  runtime_error,       ///< anything else that went wrong at run time
};

/// Returns a stable name for `x`, e.g. "decode_failed".
const char* to_string(errc x);

/// Writes `to_string(x)`.
std::ostream& operator<<(std::ostream& os, errc x);

/// An error as a value: what kind and a sentence saying what is wrong and where.
struct failure {
  errc code = errc::runtime_error;  ///< the kind of error, for callers that branch on it
  /// The sentence for the user: what is wrong, where, and how to fix it.
  std::string what;

  /// Renders "decode_failed: <what>".
  std::string to_string() const;
};

/// Either a `T` or a `failure`. Runtime functions return this instead of throwing.
template <class T>
class expected {
 public:
  /// A success holding `value` (implicit, so `return value;` works).
  expected(T value) : v_(std::move(value)) {}
  /// A failure (implicit, so `return fail(...);` works).
  expected(failure f) : v_(std::move(f)) {}

  /// True on success.
  explicit operator bool() const { return v_.index() == 0; }
  /// True on success.
  bool has_value() const { return v_.index() == 0; }

  /// The value; precondition: has_value() (else std::bad_variant_access).
  T& value() & { return std::get<0>(v_); }
  /// The value; precondition: has_value() (else std::bad_variant_access).
  const T& value() const& { return std::get<0>(v_); }
  /// Moves the value out; precondition: has_value() (else std::bad_variant_access).
  T&& value() && { return std::get<0>(std::move(v_)); }
  /// Same as value().
  T& operator*() & { return value(); }
  /// Same as value().
  const T& operator*() const& { return value(); }
  /// Member access to the value; precondition: has_value().
  T* operator->() { return &value(); }
  /// Member access to the value; precondition: has_value().
  const T* operator->() const { return &value(); }

  /// The failure; precondition: !has_value() (else std::bad_variant_access).
  const failure& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, failure> v_;
};

/// `expected<void>`: success carries no value.
template <>
class expected<void> {
 public:
  /// Success (so `return {};` works).
  expected() = default;
  /// A failure (implicit, so `return fail(...);` works).
  expected(failure f) : ok_(false), f_(std::move(f)) {}

  /// True on success.
  explicit operator bool() const { return ok_; }
  /// True on success.
  bool has_value() const { return ok_; }
  /// The failure; meaningful only when !has_value() (a default `failure` otherwise).
  const failure& error() const { return f_; }

 private:
  bool ok_ = true;
  failure f_;
};

/// Shorthand for building a failure in a return statement.
inline failure fail(errc code, std::string what) { return failure{code, std::move(what)}; }

}  // namespace stamen
