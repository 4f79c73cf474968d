// Z85 key pairs and key files (see curve_keys.h). Files are created with O_EXCL so that a key is
// never overwritten, and the secret one with mode 0600 from the start (no window where it is
// readable by others).
#include "protocol/curve_keys.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

namespace dnd::protocol {
namespace {

Status CheckName(std::string_view name) {
  if (name.empty() || name.front() == '.' || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("key name '" + std::string(name) +
                                "' must be a plain file name (non-empty, no '/', no leading '.')");
  }
  return OkStatus();
}

// Creates `path` exclusively with `mode` and writes `content`. AlreadyExists when it exists.
Status WriteNewFile(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) return AlreadyExistsError(path.string() + " exists; refusing to overwrite");
    if (err == ENOENT)
      return NotFoundError("cannot create " + path.string() + ": no such directory");
    return InternalError("cannot create " + path.string() + ": " + std::strerror(err));
  }
  // The umask may have removed bits but never adds any; make the mode exact.
  ::fchmod(fd, mode);
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return InternalError("cannot write " + path.string() + ": " + std::strerror(err));
    }
    written += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return InternalError("cannot close " + path.string());
  return OkStatus();
}

}  // namespace

StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  std::array<char, kZ85KeyLength + 1> public_key{};
  std::array<char, kZ85KeyLength + 1> secret_key{};
  if (zmq_curve_keypair(public_key.data(), secret_key.data()) != 0) {
    return UnimplementedError(std::string("zmq_curve_keypair failed: ") +
                              zmq_strerror(zmq_errno()) + " (libzmq without CURVE?)");
  }
  return CurveKeyPair{std::string(public_key.data(), kZ85KeyLength),
                      std::string(secret_key.data(), kZ85KeyLength)};
}

Status ValidateZ85Key(std::string_view key, std::string_view what) {
  if (key.size() != kZ85KeyLength) {
    return InvalidArgumentError(std::string(what) + ": expected " + std::to_string(kZ85KeyLength) +
                                " Z85 characters, got " + std::to_string(key.size()));
  }
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  for (char c : key) {
    if (kAlphabet.find(c) == std::string_view::npos) {
      return InvalidArgumentError(std::string(what) + ": character '" + std::string(1, c) +
                                  "' is not in the Z85 alphabet");
    }
  }
  std::string z(key);
  std::array<uint8_t, 32> decoded{};
  if (zmq_z85_decode(decoded.data(), z.c_str()) == nullptr) {
    return InvalidArgumentError(std::string(what) + ": not a valid Z85 string");
  }
  return OkStatus();
}

std::filesystem::path PublicKeyPath(const std::filesystem::path& dir, std::string_view name) {
  return dir / (std::string(name) + ".key");
}

std::filesystem::path SecretKeyPath(const std::filesystem::path& dir, std::string_view name) {
  return dir / (std::string(name) + ".key_secret");
}

Status WriteKeyPair(const std::filesystem::path& dir, std::string_view name,
                    const CurveKeyPair& keys) {
  DND_RETURN_IF_ERROR(CheckName(name));
  DND_RETURN_IF_ERROR(ValidateZ85Key(keys.public_key, "public key"));
  DND_RETURN_IF_ERROR(ValidateZ85Key(keys.secret_key, "secret key"));
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFoundError("key directory " + dir.string() + " does not exist");
  }
  const auto public_path = PublicKeyPath(dir, name);
  const auto secret_path = SecretKeyPath(dir, name);
  for (const auto& p : {public_path, secret_path}) {
    if (std::filesystem::exists(std::filesystem::symlink_status(p, ec))) {
      return AlreadyExistsError(p.string() + " exists; refusing to overwrite");
    }
  }
  DND_RETURN_IF_ERROR(WriteNewFile(secret_path,
                                   "# dnd CurveZMQ secret key '" + std::string(name) +
                                       "': keep private\n" + keys.secret_key + "\n",
                                   0600));
  Status s = WriteNewFile(
      public_path,
      "# dnd CurveZMQ public key '" + std::string(name) + "'\n" + keys.public_key + "\n", 0644);
  if (!s.ok()) std::filesystem::remove(secret_path, ec);  // keep the pair all-or-nothing
  return s;
}

StatusOr<std::string> ReadKeyFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return NotFoundError("cannot read key file " + file.string());
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line.erase(0, start);
    DND_RETURN_IF_ERROR(ValidateZ85Key(line, "key in " + file.string()));
    return line;
  }
  return InvalidArgumentError("key file " + file.string() + " holds no key");
}

StatusOr<CurveKeyPair> ReadKeyPair(const std::filesystem::path& dir, std::string_view name) {
  DND_RETURN_IF_ERROR(CheckName(name));
  CurveKeyPair keys;
  DND_ASSIGN_OR_RETURN(keys.public_key, ReadKeyFile(PublicKeyPath(dir, name)));
  DND_ASSIGN_OR_RETURN(keys.secret_key, ReadKeyFile(SecretKeyPath(dir, name)));
  return keys;
}

StatusOr<std::vector<std::string>> ReadAllowList(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFoundError("allow-list directory " + dir.string() + " does not exist");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".key")
      files.push_back(entry.path());
  }
  if (ec) return InternalError("cannot list " + dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::vector<std::string> keys;
  for (const auto& f : files) {
    DND_ASSIGN_OR_RETURN(auto key, ReadKeyFile(f));
    keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace dnd::protocol
