// The flags every `dnd` subcommand shares to reach the coordinator (--coordinator, --plain or
// CURVE keys, --connect-timeout), the config file that saves repeating them (--config; default
// $DND_CONFIG, else ~/.config/dnd/config.toml when it exists), and their resolution into
// ClientOptions. The config format is CLI11's TOML/INI (docs/cli.md, "Config file").
#ifndef DND_TOOLS_CONNECTION_FLAGS_H_
#define DND_TOOLS_CONNECTION_FLAGS_H_

#include <string>

#include "protocol/status.h"
#include "tools/coordinator_client.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

inline constexpr const char* kDefaultCoordinator = "tcp://127.0.0.1:5556";

struct ConnectionFlags {
  std::string coordinator = kDefaultCoordinator;  // the coordinator's client endpoint
  bool plain = false;                             // no CURVE (tests and demos)
  std::string key_dir;                            // this client's key pair: DIR/NAME.key{,_secret}
  std::string key_name;
  std::string server_key;         // the coordinator's public key file
  double connect_timeout_s = 10;  // reply deadline of one request
};

// Adds the connection flags and --config to the top-level `app`. They may be given before or after
// the subcommand (subcommands fall through to them). `flags` must outlive parsing.
void AddConnectionFlags(CLI::App& app, ConnectionFlags& flags);

// The config file used when --config is not given: $DND_CONFIG when set (it must exist then),
// else ~/.config/dnd/config.toml (used only if it exists). Empty when neither applies.
std::string DefaultConfigPath();

// Reads the key files named by the flags and builds the client's options. InvalidArgument when
// neither --plain nor all of --key-dir, --key-name, --server-key are given, or the timeout is not a
// positive finite number; NotFound / InvalidArgument for missing or malformed key files.
// A leading "~/" in a path is the home directory.
StatusOr<ClientOptions> ResolveClientOptions(const ConnectionFlags& flags);

}  // namespace dnd::tools

#endif  // DND_TOOLS_CONNECTION_FLAGS_H_
