// Parsing and validating compose_suite.json (bench_suite.h).
#include "tools/bench/bench_suite.h"

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "worker/experts/fashion_mnist.h"

namespace dnd::bench {
namespace {

using nlohmann::json;

StatusOr<std::vector<Prompt>> ParsePrompts(const json& array, const std::string& where) {
  if (!array.is_array()) return InvalidArgumentError(where + " must be an array of prompts");
  std::vector<Prompt> prompts;
  for (size_t i = 0; i < array.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& p = array[i];
    if (!p.is_object() || !p.contains("classes") || !p.contains("seeds") ||
        !p["classes"].is_array() || !p["seeds"].is_array()) {
      return InvalidArgumentError(at + " must be {\"classes\": [...], \"seeds\": [...]}");
    }
    Prompt prompt;
    for (const json& c : p["classes"]) {
      if (!c.is_string()) return InvalidArgumentError(at + ".classes holds a non-string");
      prompt.classes.push_back(c.get<std::string>());
    }
    for (const json& s : p["seeds"]) {
      if (!s.is_number_unsigned()) {
        return InvalidArgumentError(at + ".seeds must hold non-negative integers");
      }
      prompt.seeds.push_back(s.get<uint64_t>());
    }
    if (prompt.classes.empty()) return InvalidArgumentError(at + " has no classes");
    if (prompt.seeds.empty()) return InvalidArgumentError(at + " has no seeds");
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

// Every class of the prompt is served by a distinct expert; the classes are put in expert order.
Status CheckPrompt(const SuiteFile& file, Prompt& prompt, const std::string& where) {
  std::set<std::string> used;
  std::vector<std::pair<int, std::string>> ordered;
  for (const std::string& c : prompt.classes) {
    auto expert = file.ExpertOf(c);
    if (!expert.ok()) return expert.status().WithContext(where);
    if (!used.insert(*expert).second) {
      return InvalidArgumentError(where + ": two classes of expert '" + *expert + "'");
    }
    int rank = 0;
    while (file.expert_order[rank] != *expert) ++rank;
    ordered.emplace_back(rank, c);
  }
  std::sort(ordered.begin(), ordered.end());
  prompt.classes.clear();
  for (auto& [rank, c] : ordered) prompt.classes.push_back(c);
  return OkStatus();
}

StatusOr<std::vector<Suite>> ParseSuites(const json& object, const std::string& where,
                                         SuiteFile& file) {
  if (!object.is_object()) return InvalidArgumentError(where + " must be an object of suites");
  std::vector<Suite> suites;
  // Reported in a fixed order: pairs, triples, then any others by name.
  std::vector<std::string> names;
  for (const char* n : {"pairs", "triples"}) {
    if (object.contains(n)) names.push_back(n);
  }
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it.key() != "pairs" && it.key() != "triples") names.push_back(it.key());
  }
  for (const std::string& name : names) {
    Suite suite;
    suite.name = name;
    DND_ASSIGN_OR_RETURN(suite.prompts, ParsePrompts(object[name], where + "." + name));
    for (size_t i = 0; i < suite.prompts.size(); ++i) {
      DND_RETURN_IF_ERROR(
          CheckPrompt(file, suite.prompts[i], where + "." + name + "[" + std::to_string(i) + "]"));
    }
    suites.push_back(std::move(suite));
  }
  return suites;
}

StatusOr<std::map<std::string, std::vector<int>>> ParseIndexLists(const json& object,
                                                                  const std::string& where,
                                                                  const SuiteFile& file) {
  std::map<std::string, std::vector<int>> lists;
  if (!object.is_object()) return InvalidArgumentError(where + " must be an object");
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!it.value().is_array()) continue;  // scalar settings live beside the lists
    DND_ASSIGN_OR_RETURN(Suite suite, file.FindSuite(it.key()));
    for (const json& v : it.value()) {
      if (!v.is_number_integer() || v.get<int>() < 0 ||
          v.get<int>() >= static_cast<int>(suite.prompts.size())) {
        return InvalidArgumentError(where + "." + it.key() + " holds " + v.dump() +
                                    ", not a prompt index of suite '" + it.key() + "' (0.." +
                                    std::to_string(suite.prompts.size() - 1) + ")");
      }
      lists[it.key()].push_back(v.get<int>());
    }
  }
  return lists;
}

}  // namespace

std::string Prompt::Name() const {
  std::string name;
  for (const std::string& c : classes) name += (name.empty() ? "" : "+") + c;
  return name;
}

int Suite::NumImages() const {
  int n = 0;
  for (const Prompt& p : prompts) n += static_cast<int>(p.seeds.size());
  return n;
}

StatusOr<std::string> SuiteFile::ExpertOf(const std::string& class_name) const {
  for (const auto& [expert, classes] : experts) {
    for (const std::string& c : classes) {
      if (c == class_name) return expert;
    }
  }
  return NotFoundError("class '" + class_name + "' is served by none of the suite's experts");
}

StatusOr<Suite> SuiteFile::FindSuite(const std::string& name) const {
  std::string known;
  for (const Suite& s : suites) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  return NotFoundError("no suite '" + name + "' (the file has: " + known + ")");
}

StatusOr<SuiteFile> ParseSuiteFile(const std::string& json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError("the suite file is not valid JSON");
  if (!doc.is_object()) return InvalidArgumentError("the suite file must hold a JSON object");
  for (const char* key : {"experts", "expert_order", "suites"}) {
    if (!doc.contains(key)) return InvalidArgumentError(std::string("missing field '") + key + "'");
  }
  SuiteFile file;
  if (!doc["expert_order"].is_array()) {
    return InvalidArgumentError("expert_order must be an array of expert names");
  }
  for (const json& e : doc["expert_order"]) file.expert_order.push_back(e.get<std::string>());
  std::set<std::string> seen_classes;
  for (const std::string& expert : file.expert_order) {
    if (!doc["experts"].contains(expert) || !doc["experts"][expert].is_array()) {
      return InvalidArgumentError("experts." + expert + " (named in expert_order) is missing");
    }
    for (const json& c : doc["experts"][expert]) {
      const std::string name = c.get<std::string>();
      if (!experts::FashionMnistLabel(name).ok()) {
        return InvalidArgumentError("experts." + expert + ": '" + name +
                                    "' is not a Fashion-MNIST class name");
      }
      if (!seen_classes.insert(name).second) {
        return InvalidArgumentError("class '" + name + "' is served by two experts");
      }
      file.experts[expert].push_back(name);
    }
  }
  if (file.experts.size() != doc["experts"].size()) {
    return InvalidArgumentError("every expert of 'experts' must be named in expert_order");
  }
  DND_ASSIGN_OR_RETURN(file.suites, ParseSuites(doc["suites"], "suites", file));
  if (doc.contains("tuning")) {
    DND_ASSIGN_OR_RETURN(file.tuning, ParseSuites(doc["tuning"], "tuning", file));
  }
  if (doc.contains("quick")) {
    DND_ASSIGN_OR_RETURN(file.quick_prompts, ParseIndexLists(doc["quick"], "quick", file));
    file.quick_seeds_per_prompt = doc["quick"].value("seeds_per_prompt", 1);
    file.quick_steps = doc["quick"].value("steps", 20);
    if (file.quick_seeds_per_prompt < 1 || file.quick_steps < 1) {
      return InvalidArgumentError("quick.seeds_per_prompt and quick.steps must be at least 1");
    }
  }
  if (doc.contains("grid_prompts")) {
    DND_ASSIGN_OR_RETURN(file.grid_prompts,
                         ParseIndexLists(doc["grid_prompts"], "grid_prompts", file));
  }
  return file;
}

StatusOr<SuiteFile> LoadSuiteFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read the suite file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto file = ParseSuiteFile(text.str());
  if (!file.ok()) return file.status().WithContext(path);
  return file;
}

Suite QuickSubset(const SuiteFile& file, const Suite& suite) {
  Suite quick;
  quick.name = suite.name;
  auto it = file.quick_prompts.find(suite.name);
  if (it == file.quick_prompts.end()) return quick;
  for (int index : it->second) {
    Prompt p = suite.prompts[index];
    if (static_cast<int>(p.seeds.size()) > file.quick_seeds_per_prompt) {
      p.seeds.resize(file.quick_seeds_per_prompt);
    }
    quick.prompts.push_back(std::move(p));
  }
  return quick;
}

}  // namespace dnd::bench
