// The shared connection flags and the config file (connection_flags.h).
#include "tools/connection_flags.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "protocol/curve_keys.h"

namespace dnd::tools {
namespace {

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return path;
  return std::string(home) + path.substr(1);
}

}  // namespace

std::string DefaultConfigPath() {
  if (const char* env = std::getenv("DND_CONFIG"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  const std::filesystem::path path =
      std::filesystem::path(home) / ".config" / "dnd" / "config.toml";
  std::error_code ec;  // an unreadable home (e.g. another uid's) means "no config file"
  return std::filesystem::exists(path, ec) ? path.string() : "";
}

void AddConnectionFlags(CLI::App& app, ConnectionFlags& flags) {
  app.fallthrough();  // subcommands inherit it: `dnd status --coordinator X` works
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error
  const std::string group = "Connection (any subcommand; also settable in the config file)";
  app.add_option("--coordinator", flags.coordinator,
                 "the coordinator's client endpoint, tcp://HOST:PORT")
      ->capture_default_str()
      ->group(group);
  app.add_flag("--plain", flags.plain, "no encryption or authentication (tests and demos only)")
      ->group(group);
  app.add_option("--key-dir", flags.key_dir, "directory with this client's CURVE key pair")
      ->group(group);
  app.add_option("--key-name", flags.key_name,
                 "name of the key pair in --key-dir (NAME.key, NAME.key_secret)")
      ->group(group);
  app.add_option("--server-key", flags.server_key, "the coordinator's public key file")
      ->group(group);
  app.add_option("--connect-timeout", flags.connect_timeout_s,
                 "seconds to wait for each reply of the coordinator")
      ->capture_default_str()
      ->group(group);
  const std::string default_config = DefaultConfigPath();
  app.set_config("--config", default_config,
                 "TOML config file with the connection settings (default $DND_CONFIG, else "
                 "~/.config/dnd/config.toml if it exists)")
      ->group(group);
  // $DND_CONFIG must name a file; CLI11 would silently skip a missing default.
  app.parse_complete_callback([&app] {
    const char* env = std::getenv("DND_CONFIG");
    if (env == nullptr || *env == '\0') return;
    if (app.get_config_ptr()->count() == 0 && !std::filesystem::exists(env)) {
      throw CLI::FileError("DND_CONFIG names " + std::string(env) + ", which does not exist");
    }
  });
}

StatusOr<ClientOptions> ResolveClientOptions(const ConnectionFlags& flags) {
  ClientOptions options;
  options.endpoint = flags.coordinator;
  if (!std::isfinite(flags.connect_timeout_s) || flags.connect_timeout_s <= 0 ||
      flags.connect_timeout_s > 86400) {
    return InvalidArgumentError("--connect-timeout must be a number of seconds in (0, 86400]");
  }
  options.reply_timeout_ms =
      std::max(1, static_cast<int>(std::lround(flags.connect_timeout_s * 1000)));
  if (flags.plain) {
    options.security = protocol::SecurityOptions::Plain();
    return options;
  }
  if (flags.key_dir.empty() || flags.key_name.empty() || flags.server_key.empty()) {
    return InvalidArgumentError(
        "give --key-dir, --key-name and --server-key for CURVE (or put them in the config file), "
        "or --plain for a coordinator without encryption");
  }
  auto keys = protocol::ReadKeyPair(ExpandHome(flags.key_dir), flags.key_name);
  if (!keys.ok()) return keys.status().WithContext("reading this client's key pair");
  auto server_key = protocol::ReadKeyFile(ExpandHome(flags.server_key));
  if (!server_key.ok()) return server_key.status().WithContext("reading --server-key");
  options.security = protocol::SecurityOptions::CurveClient(*keys, *server_key);
  return options;
}

}  // namespace dnd::tools
