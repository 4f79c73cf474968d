// Linked into every worker test: a GoogleTest environment that calls dnd::InitProcess with
// LibTorch's thread hook before any test runs (every binary that links LibTorch must).
#include <gtest/gtest.h>

#include "protocol/startup.h"
#include "worker/experts/torch_runtime.h"

namespace {

class TorchEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    dnd::InitProcess({.set_compute_threads = dnd::experts::SetTorchThreads});
  }
};

[[maybe_unused]] ::testing::Environment* const kTorchEnvironment =
    ::testing::AddGlobalTestEnvironment(new TorchEnvironment);

}  // namespace
