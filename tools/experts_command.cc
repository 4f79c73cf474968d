// `dnd experts`: who is connected to the coordinator and what each expert knows: a table of name,
// organisation, latent space, shape, concepts, utilities, the owner's guidance scale and liveness,
// or --json.
#include <cstdio>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
#include "tools/json_output.h"

namespace dnd::tools {
namespace {

struct ExpertsFlags {
  bool json = false;
};

std::string Join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// The owner's guidance scale, or "default" (the coordinator's) where it declares none.
std::string GuidanceScaleText(float scale) {
  if (scale <= 0.0f) return "default";
  char text[32];
  std::snprintf(text, sizeof(text), "%g", static_cast<double>(scale));
  return text;
}

void RunExperts(const ExpertsFlags& flags, const ConnectionFlags& connection_flags) {
  auto connection = ConnectToCoordinator(connection_flags);
  if (!connection.ok()) ExitWithStatus("experts", connection.status());
  auto experts = connection->client->ListExperts();
  if (!experts.ok()) ExitWithStatus("experts", experts.status());
  if (flags.json) {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& expert : *experts) all.push_back(ExpertInfoJson(expert));
    std::cout << all.dump(2) << "\n";
    return;
  }
  if (experts->empty()) {
    std::cout << "no experts connected\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ORGANISATION", "LATENT SPACE", "SHAPE", "CONCEPTS", "UTILITIES", "CFG", "ALIVE"}};
  for (const protocol::ExpertInfo& expert : *experts) {
    std::vector<std::string> shape, utilities;
    for (uint32_t d : expert.latent_shape) shape.push_back(std::to_string(d));
    for (protocol::UtilityKind u : expert.utilities) {
      utilities.push_back(protocol::UtilityKindName(u));
    }
    rows.push_back({expert.expert_name, expert.organisation, expert.latent_space_id,
                    Join(shape, "x"), Join(expert.concepts, ","), Join(utilities, ","),
                    GuidanceScaleText(expert.guidance_scale),
                    expert.alive
                        ? "yes"
                        : "no (" + std::to_string(expert.last_seen_millis_ago / 1000) + " s ago)"});
  }
  std::cout << FormatTable(rows);
}

}  // namespace

void RegisterExpertsCommand(CLI::App& app, const ConnectionFlags& connection) {
  auto flags = std::make_shared<ExpertsFlags>();
  CLI::App* cmd =
      app.add_subcommand("experts", "List the connected experts and the concepts they know");
  cmd->add_flag("--json", flags->json, "print a JSON array of experts");
  cmd->callback([flags, &connection] { RunExperts(*flags, connection); });
}

}  // namespace dnd::tools
