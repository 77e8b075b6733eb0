// Errors as values at module boundaries. Expected<T> holds either a T or an Error
// whose message is meant for a person: it names the thing that was wrong, with the
// expected and actual values where there are any. (std::expected is C++23.)
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace dhi {

struct Error {
  std::string message;
};

inline std::string to_error_part(const std::string& s) { return s; }
inline std::string to_error_part(std::string_view s) { return std::string(s); }
inline std::string to_error_part(const char* s) { return s; }
inline std::string to_error_part(char c) { return std::string(1, c); }
template <typename T>
  requires std::is_arithmetic_v<T>
std::string to_error_part(T v) {
  return std::to_string(v);
}

// Builds an Error; `make_error("tensor ", name, ": expected ", a, ", got ", b)`.
template <typename... Parts>
Error make_error(Parts&&... parts) {
  std::string s;
  ((s += to_error_part(std::forward<Parts>(parts))), ...);
  return Error{std::move(s)};
}

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Status is Expected<void>: success or an Error.
template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_;
  bool ok_ = true;
};
using Status = Expected<void>;

}  // namespace dhi

// Propagates an error from an Expected-returning expression.
#define DHI_TRY(expr)                                 \
  do {                                                \
    auto dhi_try_result_ = (expr);                    \
    if (!dhi_try_result_.ok()) return dhi_try_result_.error(); \
  } while (0)

// Assigns the value of an Expected to `lhs`, or returns its error.
#define DHI_ASSIGN_OR_RETURN(lhs, expr) DHI_ASSIGN_OR_RETURN_IMPL_(DHI_CONCAT_(dhi_aor_, __LINE__), lhs, expr)
#define DHI_CONCAT_INNER_(a, b) a##b
#define DHI_CONCAT_(a, b) DHI_CONCAT_INNER_(a, b)
#define DHI_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.error();               \
  lhs = std::move(tmp).value()
