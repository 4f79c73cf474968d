// The division game of one denoising step (METHOD.md "Step 1", docs/method.md "Allocation"): given
// every player's utility over the m latent positions and the previous allocation, the
// KL-regularised, fairness-constrained allocation Q_t, by the closed form of Theorem 3.1 with the
// dual solved by projected Newton. Used by the coordinator's step loop (one solver per job) and by
// bench_allocation.
#ifndef DND_COORDINATOR_METHOD_ALLOCATION_H_
#define DND_COORDINATOR_METHOD_ALLOCATION_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"

namespace dnd::method {

// Fairness notions as bit flags; combine with |. kNone drops every constraint (the paper's
// ablation).
enum Fairness : uint32_t {
  kFairnessNone = 0,
  kFairnessProportional = 1u << 0,  // sum_j Q_kj u_kj >= rho / n for each real player k
  kFairnessEnvyFree = 1u << 1,   // sum_j Q_kj u_kj >= sum_j Q_lj u_kj for each ordered pair k != l
  kFairnessEquitable = 1u << 2,  // |sum_j Q_kj u_kj - sum_j Q_lj u_lj| <= epsilon for each pair
};

struct AllocationOptions {
  uint32_t fairness = kFairnessProportional;
  double rho = 1.0;      // proportional share, in [0, 1] (every combination is then feasible)
  double epsilon = 0.0;  // equitable tolerance, >= 0
  // KL weight beta_t as the paper states it (0.01 score utility, 0.001 attention utility) for a
  // grid of beta_reference_positions positions; the solver uses beta * beta_reference_positions / m
  // so that Q moves by the same amount for the same utility map at any latent size (docs/method.md,
  // "Scaling beta with m"). beta_reference_positions = 0 uses beta unscaled.
  double beta = 0.01;
  int beta_reference_positions = 4096;
  // Stop when the projected-gradient residual of the dual (in utility units: a constraint
  // violation, or the slack of a constraint whose multiplier is positive) is at most this.
  double tolerance = 1e-7;
  int max_iterations = 50;
  // The previous allocation is floored at this before its log is taken, so a position lost to
  // underflow can be won back.
  double min_prior = 1e-300;
};

// One fairness constraint row after the solve: lhs <= rhs is the constraint in utility units.
struct ConstraintReport {
  std::string label;      // e.g. "proportional[1]", "envy_free[0,2]", "equitable[0,1]"
  double lhs = 0;         // sum_ij Q_ij phi_ij
  double rhs = 0;         // b
  double multiplier = 0;  // lambda* (absorbs 1/beta, METHOD.md)
};

// An allocation Q, (n+1) x m row-major (row n is the fictitious player), with the diagnostics of
// the solve that produced it. Value type.
struct Allocation {
  int num_players = 0;    // n + 1
  int num_positions = 0;  // m = H * W
  std::vector<double> q;  // Q[i * m + j] >= 0, sum_i Q[i * m + j] = 1

  // Diagnostics (empty for an allocation not produced by Solve).
  std::vector<double> position_share;    // mean_j Q_ij, per player
  std::vector<double> utility_obtained;  // sum_j Q_ij u_ij (u normalised), per player
  std::vector<double> fair_share;        // rho / n per real player, 0 for the fictitious one
  std::vector<ConstraintReport> constraints;
  double max_violation = 0;  // max over constraints of max(0, lhs - rhs)
  double kkt_residual = 0;   // the quantity compared with the tolerance
  int dual_iterations = 0;
  bool converged = true;
  double effective_beta = 0;

  // Q_T: every entry 1 / num_players.
  static Allocation Uniform(int num_players, int num_positions);
  // A hard or soft layout from per-expert masks (n masks of m values >= 0, e.g. MultiDiffusion's):
  // Q_ij = M_ij / sum_k M_kj for real players; positions no mask covers go to the fictitious
  // player. InvalidArgument on a size mismatch or a negative / non-finite entry.
  static StatusOr<Allocation> FromMasks(std::span<const std::vector<float>> masks,
                                        int num_positions);
  // n equal vertical strips (MultiDiffusion's default layout): column w of a width-W grid goes to
  // expert floor(w * n / W). InvalidArgument unless n >= 1 and height, width >= 1.
  static StatusOr<Allocation> VerticalStrips(int num_experts, int height, int width);

  std::span<const double> Row(int player) const {
    return std::span<const double>(q).subspan(static_cast<size_t>(player) * num_positions,
                                              num_positions);
  }
};

// Solves the division game:
//   Q_t = argmax_Q sum_ij Q_ij u_ij - beta_t KL(Q || Q_{t+1})  s.t.  sum_ij Q_ij phi_ij <= b,
// as Q[i,j] ∝ prev[i,j] exp(u[i,j]/beta_t - <lambda*, phi[i,j]>) with lambda* minimising the convex
// dual f(lambda) = <b, lambda> + sum_j log Z_j(lambda) over lambda >= 0 by projected Newton
// (Bertsekas 1982) with an Armijo line search. The solver keeps lambda* between calls as the next
// call's starting point. Not thread-safe: one solver per job, called from that job's step loop.
class AllocationSolver {
 public:
  // InvalidArgument when num_experts < 1, num_positions < 1, rho outside [0, 1], epsilon < 0,
  // beta <= 0 or not finite, tolerance <= 0, max_iterations < 1, beta_reference_positions < 0,
  // or fairness has unknown bits.
  static StatusOr<std::unique_ptr<AllocationSolver>> Create(const AllocationOptions& options,
                                                            int num_experts, int num_positions);
  AllocationSolver(const AllocationSolver&) = delete;
  AllocationSolver& operator=(const AllocationSolver&) = delete;
  ~AllocationSolver();

  // utilities: (n+1) x m row-major, row n the fictitious player's (usually 1/m everywhere); each
  // row is renormalised to sum 1. previous: Q_{t+1}, (n+1) x m, columns summing to 1 (within 1e-4;
  // renormalised). Returns Q_t with diagnostics. InvalidArgument (message names the player and
  // position) on a size mismatch, a NaN/Inf or negative utility, an all-zero utility row, or a
  // previous allocation with a negative/non-finite entry or a column not summing to 1. When the
  // dual does not reach the tolerance within max_iterations the best iterate is returned with
  // converged = false and its violation reported (never an error: every configurable combination
  // is feasible, so this is a numerical limit, e.g. rho = 1 with identical utilities, whose
  // optimum is approached only as lambda -> infinity).
  StatusOr<Allocation> Solve(std::span<const float> utilities, std::span<const double> previous);
  // As Solve, writing into *out and reusing its buffers (no allocation in the steady state of a
  // job). previous may alias out->q (it is read completely before out is written).
  Status SolveInto(std::span<const float> utilities, std::span<const double> previous,
                   Allocation* out);

  // Forgets the warm start (the multipliers and the last result): the next solve starts the dual
  // at lambda = 0, as a new solver's first does, reusing this solver's buffers (a new job of the
  // same shape needs no allocation).
  void Reset();

  int num_experts() const { return num_experts_; }
  int num_positions() const { return num_positions_; }
  const AllocationOptions& options() const { return options_; }
  int num_constraints() const;

 private:
  struct Impl;
  AllocationSolver(const AllocationOptions& options, int num_experts, int num_positions);
  AllocationOptions options_;
  int num_experts_;
  int num_positions_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dnd::method

#endif  // DND_COORDINATOR_METHOD_ALLOCATION_H_
