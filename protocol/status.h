// Status and StatusOr<T>: the project's one error-value type (Abseil's names and codes).
// Expected failures (bad input, timeouts, disconnects, bad config) are returned as values and
// propagated with DND_RETURN_IF_ERROR / DND_ASSIGN_OR_RETURN. Broken invariants of our own code are
// bugs: DND_CHECK(cond) << context aborts. Used by every library, including coordinator/method.
#ifndef DND_PROTOCOL_STATUS_H_
#define DND_PROTOCOL_STATUS_H_

#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dnd {

// Same numbering as absl::StatusCode / grpc, so codes can be mapped one to one on the wire.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT" etc.
std::string_view StatusCodeName(StatusCode code);

// A code and a message. Value type: copyable, compared by value. Ok() has an empty message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: latent shape 4x32x32 does not match ...", or "OK".
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>"; Ok stays Ok.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
Status CancelledError(std::string message);
Status UnknownError(std::string message);
Status InvalidArgumentError(std::string message);
Status DeadlineExceededError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status OutOfRangeError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status UnauthenticatedError(std::string message);

namespace internal {
[[noreturn]] void DieBecauseStatusOrHasNoValue(const Status& status);
}  // namespace internal

// Either a T or a non-ok Status. Constructing from an ok Status is a bug (aborts).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : state_(status) { CheckNotOk(); }  // NOLINT: implicit by design
  StatusOr(Status&& status) : state_(std::move(status)) { CheckNotOk(); }  // NOLINT
  StatusOr(const T& value) : state_(value) {}                               // NOLINT
  StatusOr(T&& value) : state_(std::move(value)) {}                         // NOLINT
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Status> &&
             !std::is_same_v<std::decay_t<U>, StatusOr<T>> && !std::is_same_v<std::decay_t<U>, T>)
  StatusOr(U&& value) : state_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(state_); }
  Status status() const { return ok() ? OkStatus() : std::get<Status>(state_); }

  const T& value() const& { EnsureValue(); return std::get<T>(state_); }
  T& value() & { EnsureValue(); return std::get<T>(state_); }
  T&& value() && { EnsureValue(); return std::get<T>(std::move(state_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckNotOk() const {
    if (std::get<Status>(state_).ok()) {
      internal::DieBecauseStatusOrHasNoValue(InternalError("StatusOr built from an OK status"));
    }
  }
  void EnsureValue() const {
    if (!ok()) internal::DieBecauseStatusOrHasNoValue(std::get<Status>(state_));
  }
  std::variant<Status, T> state_;
};

// DND_CHECK(cond) << "context"; aborts with file:line and the message when cond is false.
namespace internal {
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  template <typename V>
  CheckFailure& operator<<(const V& v) {
    stream_ << v;
    return *this;
  }

 private:
  std::ostringstream stream_;
};
// Lets `DND_CHECK(c) << x` be a void expression in both branches of the ternary.
struct Voidify {
  void operator&(CheckFailure&) {}
  void operator&(CheckFailure&&) {}
};
}  // namespace internal

}  // namespace dnd

#define DND_CHECK(condition)                 \
  (condition) ? (void)0                      \
              : ::dnd::internal::Voidify() & \
                    ::dnd::internal::CheckFailure(__FILE__, __LINE__, #condition)

#define DND_STATUS_CONCAT_INNER(a, b) a##b
#define DND_STATUS_CONCAT(a, b) DND_STATUS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when `expr` (a Status) is not ok.
#define DND_RETURN_IF_ERROR(expr)                   \
  do {                                              \
    ::dnd::Status dnd_status_tmp_ = (expr);         \
    if (!dnd_status_tmp_.ok()) return dnd_status_tmp_; \
  } while (0)

// DND_ASSIGN_OR_RETURN(auto x, MakeX()); declares/assigns x or returns the error.
#define DND_ASSIGN_OR_RETURN(lhs, expr) \
  DND_ASSIGN_OR_RETURN_IMPL(DND_STATUS_CONCAT(dnd_statusor_, __LINE__), lhs, expr)
#define DND_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // DND_PROTOCOL_STATUS_H_
