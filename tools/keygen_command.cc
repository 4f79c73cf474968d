// The `dnd keygen` subcommand (keygen_command.h).
#include "tools/keygen_command.h"

#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "protocol/curve_keys.h"
#include "tools/exit_codes.h"

namespace dnd::tools {

Status RunKeygen(const KeygenOptions& options, std::ostream& out) {
  // A missing key directory is created, private to its owner (it will hold secret keys).
  std::error_code ec;
  if (std::filesystem::create_directories(options.out_dir, ec)) {
    std::filesystem::permissions(options.out_dir, std::filesystem::perms::owner_all, ec);
  }
  if (ec) {
    return InvalidArgumentError("cannot create key directory " +
                                std::filesystem::path(options.out_dir).string() + ": " +
                                ec.message());
  }
  DND_ASSIGN_OR_RETURN(auto keys, protocol::GenerateCurveKeyPair());
  DND_RETURN_IF_ERROR(protocol::WriteKeyPair(options.out_dir, options.name, keys));
  out << "public key: " << protocol::PublicKeyPath(options.out_dir, options.name).string() << "\n"
      << "secret key: " << protocol::SecretKeyPath(options.out_dir, options.name).string()
      << " (mode 0600; keep it private)\n"
      << keys.public_key << "\n";
  return OkStatus();
}

void RegisterKeygenCommand(CLI::App& app) {
  auto options = std::make_shared<KeygenOptions>();
  CLI::App* cmd = app.add_subcommand(
      "keygen", "Create a CurveZMQ key pair: DIR/NAME.key (public) and DIR/NAME.key_secret");
  cmd->add_option("--out", options->out_dir,
                  "Directory to write the key files into (created, mode 0700, if missing)")
      ->required();
  cmd->add_option("--name", options->name, "Base name of the key files, e.g. 'coordinator'")
      ->required();
  cmd->callback([options] {
    Status s = RunKeygen(*options, std::cout);
    if (!s.ok()) {
      std::cerr << "dnd keygen: " << s.ToString() << "\n";
      throw CLI::RuntimeError(ExitCodeFor(s));  // exits with this code; CLI11 prints nothing
    }
  });
}

}  // namespace dnd::tools
