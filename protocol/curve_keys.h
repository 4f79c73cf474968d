// CurveZMQ key pairs in ZeroMQ's Z85 text form: generation, key files and allow-lists. Used by
// `dnd keygen`, the coordinator (its key pair + the allow-list of worker/client keys) and the
// workers/clients (their key pair + the coordinator's public key). All functions are thread-safe.
#ifndef DND_PROTOCOL_CURVE_KEYS_H_
#define DND_PROTOCOL_CURVE_KEYS_H_

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace dnd::protocol {

// A Curve25519 key is 32 bytes; in Z85 it is 40 printable characters.
inline constexpr size_t kZ85KeyLength = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
  friend bool operator==(const CurveKeyPair&, const CurveKeyPair&) = default;
};

// A fresh key pair from zmq_curve_keypair. Unimplemented when libzmq was built without CURVE.
StatusOr<CurveKeyPair> GenerateCurveKeyPair();

// Ok when `key` is 40 characters of the Z85 alphabet that decode to 32 bytes; else
// InvalidArgument naming `what` (e.g. "public key in /etc/dnd/alice.key").
Status ValidateZ85Key(std::string_view key, std::string_view what = "key");

// File names of a key pair: <dir>/<name>.key (public) and <dir>/<name>.key_secret (secret).
std::filesystem::path PublicKeyPath(const std::filesystem::path& dir, std::string_view name);
std::filesystem::path SecretKeyPath(const std::filesystem::path& dir, std::string_view name);

// Writes the key pair as two text files (a '#' comment line, then the Z85 key). The secret file
// is created with mode 0600, the public one 0644. Never overwrites: AlreadyExists when either file
// exists (nothing is written then). InvalidArgument for a bad name (empty, '/', leading '.') or an
// invalid key; NotFound when `dir` does not exist; Internal on an I/O failure.
Status WriteKeyPair(const std::filesystem::path& dir, std::string_view name,
                    const CurveKeyPair& keys);

// Reads one key file (the first line that is neither empty nor a '#' comment) and validates it.
// NotFound when the file is missing; InvalidArgument when its content is not a Z85 key.
StatusOr<std::string> ReadKeyFile(const std::filesystem::path& file);

// Reads <dir>/<name>.key and <dir>/<name>.key_secret.
StatusOr<CurveKeyPair> ReadKeyPair(const std::filesystem::path& dir, std::string_view name);

// The public keys of every "*.key" file in `dir`, sorted by file name (an allow-list).
// NotFound when `dir` does not exist; InvalidArgument (naming the file) when one is malformed.
StatusOr<std::vector<std::string>> ReadAllowList(const std::filesystem::path& dir);

}  // namespace dnd::protocol

#endif  // DND_PROTOCOL_CURVE_KEYS_H_
