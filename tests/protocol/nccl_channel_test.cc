// Test of protocol/nccl_channel. Labelled `gpu`: skipped where no CUDA device is usable (the CPU
// build machines), where it still checks that the probe reports Unavailable instead of crashing.
#include "protocol/nccl_channel.h"

#include <gtest/gtest.h>

namespace dnd::protocol {
namespace {

TEST(NcclChannelTest, ProbeReportsUnavailableOrADevice) {
  auto info = NcclAvailable();
  if (!info.ok()) {
    EXPECT_EQ(info.status().code(), StatusCode::kUnavailable) << info.status().ToString();
    GTEST_SKIP() << "no usable CUDA device: " << info.status().ToString();
  }
  EXPECT_GE(info->cuda_device_count, 1);
  EXPECT_GT(info->nccl_version, 0);
}

TEST(NcclChannelTest, SingleRankCommunicatorInitialisesAndAborts) {
  if (!NcclAvailable().ok()) GTEST_SKIP() << "no usable CUDA device";
  auto id = NcclCreateUniqueId();
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto comm = NcclCommunicator::Create(*id, 1, 0, 0, 30000);
  ASSERT_TRUE(comm.ok()) << comm.status().ToString();
  EXPECT_TRUE((*comm)->AsyncError().ok());
  (*comm)->Abort();
  EXPECT_EQ((*comm)->AsyncError().code(), StatusCode::kFailedPrecondition);
}

TEST(NcclChannelTest, BadUniqueIdIsInvalidArgument) {
  auto comm = NcclCommunicator::Create("short", 2, 0, 0, 1000);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::protocol
