// `dnd keygen --out DIR --name NAME`: writes a CurveZMQ key pair as DIR/NAME.key (public) and
// DIR/NAME.key_secret (secret, mode 0600); never overwrites. The coordinator's allow-list is a
// directory of the public files of the workers and clients it admits.
#ifndef DND_TOOLS_KEYGEN_COMMAND_H_
#define DND_TOOLS_KEYGEN_COMMAND_H_

#include <filesystem>
#include <ostream>
#include <string>

#include "protocol/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

struct KeygenOptions {
  std::filesystem::path out_dir;
  std::string name;
};

// Generates a key pair and writes it; on success prints the two paths and the public key to `out`.
// AlreadyExists when either file exists (nothing written); NotFound when out_dir does not exist;
// InvalidArgument for a bad name.
Status RunKeygen(const KeygenOptions& options, std::ostream& out);

// Adds the `keygen` subcommand to the `dnd` app. On failure the command exits non-zero with the
// error on stderr.
void RegisterKeygenCommand(CLI::App& app);

}  // namespace dnd::tools

#endif  // DND_TOOLS_KEYGEN_COMMAND_H_
