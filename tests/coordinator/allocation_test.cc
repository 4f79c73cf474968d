// Tests of coordinator/method/allocation: the division game's solution is a valid allocation, meets
// every active fairness constraint, equals an independent primal solver (augmented Lagrangian with
// mirror descent, written here in float64 with libm), and shows the paper's special cases.
#include "coordinator/method/allocation.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace dnd::method {
namespace {

// Seeded random utilities: (n+1) x m, real rows are peaked random maps, the fictitious row is 1/m.
std::vector<float> RandomUtilities(int n, int m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<float> u(static_cast<size_t>(n + 1) * m);
  for (int i = 0; i < n; ++i) {
    const int centre = static_cast<int>(unif(rng) * m);
    const double width = 1 + unif(rng) * m / 3.0;
    for (int j = 0; j < m; ++j) {
      const double d = (j - centre) / width;
      u[i * m + j] = static_cast<float>(std::exp(-d * d) + 0.05 * unif(rng));
    }
  }
  for (int j = 0; j < m; ++j) u[n * m + j] = 1.0f / m;
  return u;
}

std::vector<double> RandomPrevious(int n, int m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unif(0.05, 1.0);
  std::vector<double> p(static_cast<size_t>(n + 1) * m);
  for (int j = 0; j < m; ++j) {
    double s = 0;
    for (int i = 0; i <= n; ++i) s += p[i * m + j] = unif(rng);
    for (int i = 0; i <= n; ++i) p[i * m + j] /= s;
  }
  return p;
}

// Row-normalised utilities in float64.
std::vector<double> Normalised(const std::vector<float>& u, int n, int m) {
  std::vector<double> out(u.begin(), u.end());
  for (int i = 0; i <= n; ++i) {
    double s = 0;
    for (int j = 0; j < m; ++j) s += out[i * m + j];
    for (int j = 0; j < m; ++j) out[i * m + j] /= s;
  }
  return out;
}

// M[i][k] = sum_j Q_ij u_kj.
double Cross(const std::vector<double>& q, const std::vector<double>& u, int m, int i, int k) {
  double s = 0;
  for (int j = 0; j < m; ++j) s += q[i * m + j] * u[k * m + j];
  return s;
}

// The constraint rows written independently of the solver, as g_c(Q) = lhs - rhs <= 0.
std::vector<double> ConstraintValues(const std::vector<double>& q, const std::vector<double>& u,
                                     int n, int m, uint32_t fairness, double rho, double eps) {
  std::vector<double> g;
  if (fairness & kFairnessProportional) {
    for (int k = 0; k < n; ++k) g.push_back(rho / n - Cross(q, u, m, k, k));
  }
  if (fairness & kFairnessEnvyFree) {
    for (int k = 0; k < n; ++k) {
      for (int l = 0; l < n; ++l) {
        if (k != l) g.push_back(Cross(q, u, m, l, k) - Cross(q, u, m, k, k));
      }
    }
  }
  if (fairness & kFairnessEquitable) {
    for (int k = 0; k < n; ++k) {
      for (int l = k + 1; l < n; ++l) {
        const double d = Cross(q, u, m, k, k) - Cross(q, u, m, l, l);
        g.push_back(d - eps);
        g.push_back(-d - eps);
      }
    }
  }
  return g;
}

// Independent reference: the problem's Lagrange dual minimised by plain projected gradient with
// backtracking, in float64 with libm, and the constraint rows phi / b read off ConstraintValues
// (which is linear in Q) instead of being re-derived. Returns Q(lambda) and, through bound, the
// weak-duality upper bound beta (sum_j log Z_j(lambda) + <lambda, b>) on the optimal objective,
// valid for any lambda >= 0.
struct Reference {
  std::vector<double> q;
  double bound = 0;
};
Reference BruteForce(const std::vector<double>& u, const std::vector<double>& prev, int n, int m,
                     double beta, uint32_t fairness, double rho, double eps) {
  const int players = n + 1;
  const size_t size = u.size();
  const std::vector<double> zero(size, 0.0);
  const auto g0 = ConstraintValues(zero, u, n, m, fairness, rho, eps);
  const size_t num_c = g0.size();
  std::vector<std::vector<double>> phi(num_c, std::vector<double>(size));
  for (size_t e = 0; e < size; ++e) {
    std::vector<double> unit(size, 0.0);
    unit[e] = 1.0;
    const auto g = ConstraintValues(unit, u, n, m, fairness, rho, eps);
    for (size_t c = 0; c < num_c; ++c) phi[c][e] = g[c] - g0[c];
  }
  // h(lambda) = sum_j log Z_j + <lambda, b>, b = -g0; Q(lambda) and grad h = -g(Q(lambda)).
  auto evaluate = [&](const std::vector<double>& lam, std::vector<double>* q,
                      std::vector<double>* grad) {
    double h = 0;
    for (size_t c = 0; c < num_c; ++c) h -= lam[c] * g0[c];
    for (int j = 0; j < m; ++j) {
      std::vector<double> logit(players);
      double mx = -1e300;
      for (int i = 0; i < players; ++i) {
        const size_t e = static_cast<size_t>(i) * m + j;
        logit[i] = std::log(prev[e]) + u[e] / beta;
        for (size_t c = 0; c < num_c; ++c) logit[i] -= lam[c] * phi[c][e];
        mx = std::max(mx, logit[i]);
      }
      double z = 0;
      for (int i = 0; i < players; ++i) z += std::exp(logit[i] - mx);
      h += mx + std::log(z);
      for (int i = 0; i < players; ++i) (*q)[i * m + j] = std::exp(logit[i] - mx) / z;
    }
    const auto g = ConstraintValues(*q, u, n, m, fairness, rho, eps);
    for (size_t c = 0; c < num_c; ++c) (*grad)[c] = -g[c];
    return h;
  };
  std::vector<double> lam(num_c, 0.0), q(size), grad(num_c), trial(num_c), q_trial(size),
      grad_trial(num_c);
  double h = evaluate(lam, &q, &grad);
  double step = 1.0;
  for (int it = 0; it < 20000; ++it) {
    bool moved = false;
    for (int tries = 0; tries < 60; ++tries, step *= 0.5) {
      double lin = 0, sq = 0;
      for (size_t c = 0; c < num_c; ++c) {
        trial[c] = std::max(0.0, lam[c] - step * grad[c]);
        lin += grad[c] * (trial[c] - lam[c]);
        sq += (trial[c] - lam[c]) * (trial[c] - lam[c]);
      }
      if (sq == 0) break;
      const double h_trial = evaluate(trial, &q_trial, &grad_trial);
      if (h_trial <= h + lin + sq / (2 * step)) {
        lam = trial;
        h = h_trial;
        q = q_trial;
        grad = grad_trial;
        moved = true;
        step *= 2;
        break;
      }
    }
    if (!moved) break;
  }
  return {q, beta * h};
}

// sum Q u - beta KL(Q || P).
double Objective(const std::vector<double>& q, const std::vector<double>& u,
                 const std::vector<double>& prev, double beta) {
  double f = 0;
  for (size_t e = 0; e < q.size(); ++e) {
    f += q[e] * u[e] - beta * (q[e] > 0 ? q[e] * std::log(q[e] / prev[e]) : 0.0);
  }
  return f;
}

std::unique_ptr<AllocationSolver> MakeSolver(AllocationOptions o, int n, int m) {
  auto s = AllocationSolver::Create(o, n, m);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(AllocationSolverTest, RowsAreNonNegativeAndColumnsSumToOne) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const int n = 2 + seed % 4, m = 37 + 11 * seed;
    auto solver = MakeSolver(AllocationOptions{}, n, m);
    auto a = solver->Solve(RandomUtilities(n, m, seed), RandomPrevious(n, m, seed + 100));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    for (int j = 0; j < m; ++j) {
      double s = 0;
      for (int i = 0; i <= n; ++i) {
        EXPECT_GE(a->q[i * m + j], 0.0);
        s += a->q[i * m + j];
      }
      EXPECT_NEAR(s, 1.0, 1e-12) << "seed " << seed << " position " << j;
    }
  }
}

TEST(AllocationSolverTest, EveryActiveFairnessConstraintHoldsOnRandomInstances) {
  const uint32_t notions[] = {kFairnessProportional,
                              kFairnessEnvyFree,
                              kFairnessEquitable,
                              kFairnessProportional | kFairnessEnvyFree,
                              kFairnessProportional | kFairnessEquitable,
                              kFairnessProportional | kFairnessEnvyFree | kFairnessEquitable};
  int instances = 0;
  for (uint32_t fairness : notions) {
    for (uint32_t seed = 0; seed < 25; ++seed) {
      const int n = 2 + seed % 4, m = 64 + 32 * (seed % 5);
      AllocationOptions o;
      o.fairness = fairness;
      o.rho = 0.6 + 0.1 * (seed % 4);
      o.epsilon = 0.02 * (seed % 3);
      o.beta = seed % 2 ? 0.01 : 0.001;
      o.beta_reference_positions = 64;
      auto solver = MakeSolver(o, n, m);
      const auto uf = RandomUtilities(n, m, 1000 + seed);
      auto a = solver->Solve(uf, RandomPrevious(n, m, 2000 + seed));
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      EXPECT_TRUE(a->converged) << "fairness " << fairness << " seed " << seed << " residual "
                                << a->kkt_residual;
      const auto g = ConstraintValues(a->q, Normalised(uf, n, m), n, m, fairness, o.rho, o.epsilon);
      ASSERT_EQ(g.size(), a->constraints.size());
      for (size_t c = 0; c < g.size(); ++c) {
        EXPECT_LE(g[c], 2 * o.tolerance) << a->constraints[c].label << " seed " << seed;
        EXPECT_NEAR(a->constraints[c].lhs - a->constraints[c].rhs, g[c], 1e-9);
      }
      ++instances;
    }
  }
  EXPECT_EQ(instances, 150);
}

TEST(AllocationSolverTest, MatchesBruteForcePrimalSolverOnSmallInstances) {
  const uint32_t notions[] = {kFairnessNone, kFairnessProportional, kFairnessEnvyFree,
                              kFairnessEquitable,
                              kFairnessProportional | kFairnessEnvyFree | kFairnessEquitable};
  for (uint32_t fairness : notions) {
    for (uint32_t seed = 0; seed < 3; ++seed) {
      const int n = 2 + seed % 2, m = 6 + seed;
      AllocationOptions o;
      o.fairness = fairness;
      o.rho = 0.9;
      o.epsilon = 0.01;
      o.beta = 0.05;
      o.beta_reference_positions = 0;
      o.tolerance = 1e-10;
      const auto uf = RandomUtilities(n, m, 50 + seed);
      const auto prev = RandomPrevious(n, m, 60 + seed);
      auto a = MakeSolver(o, n, m)->Solve(uf, prev);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      const auto un = Normalised(uf, n, m);
      const Reference ref = BruteForce(un, prev, n, m, o.beta, fairness, o.rho, o.epsilon);
      // The solver's Q is feasible and reaches the reference's dual bound: it is optimal.
      for (double g : ConstraintValues(a->q, un, n, m, fairness, o.rho, o.epsilon)) {
        EXPECT_LE(g, 1e-9) << "fairness " << fairness << " seed " << seed;
      }
      EXPECT_GE(Objective(a->q, un, prev, o.beta), ref.bound - 1e-7)
          << "fairness " << fairness << " seed " << seed;
      for (size_t e = 0; e < ref.q.size(); ++e) {
        EXPECT_NEAR(a->q[e], ref.q[e], 1e-4)
            << "fairness " << fairness << " seed " << seed << " entry " << e;
      }
    }
  }
}

TEST(AllocationSolverTest, HugeBetaKeepsThePreviousAllocation) {
  const int n = 3, m = 50;
  AllocationOptions o;
  o.beta = 1e12;
  const auto prev = RandomPrevious(n, m, 5);
  for (uint32_t fairness : std::initializer_list<uint32_t>{kFairnessNone}) {
    o.fairness = fairness;
    auto a = MakeSolver(o, n, m)->Solve(RandomUtilities(n, m, 6), prev);
    ASSERT_TRUE(a.ok());
    for (size_t e = 0; e < prev.size(); ++e) EXPECT_NEAR(a->q[e], prev[e], 1e-9);
  }
  // With proportional fairness that the uniform Q_T already meets (rho/n <= 1/(n+1)), Q stays.
  o.fairness = kFairnessProportional;
  o.rho = 0.7;
  const auto uniform = Allocation::Uniform(n + 1, m);
  auto a = MakeSolver(o, n, m)->Solve(RandomUtilities(n, m, 7), uniform.q);
  ASSERT_TRUE(a.ok());
  for (size_t e = 0; e < uniform.q.size(); ++e) EXPECT_NEAR(a->q[e], uniform.q[e], 1e-9);
}

TEST(AllocationSolverTest, EqualUtilitiesGiveEqualShares) {
  const int n = 3, m = 40;
  auto u = RandomUtilities(n, m, 9);
  for (int i = 1; i < n; ++i) std::copy(u.begin(), u.begin() + m, u.begin() + i * m);
  for (uint32_t fairness : std::initializer_list<uint32_t>{
           kFairnessNone, kFairnessProportional,
           kFairnessProportional | kFairnessEnvyFree | kFairnessEquitable}) {
    AllocationOptions o;
    o.fairness = fairness;
    o.rho = 0.9;
    auto a = MakeSolver(o, n, m)->Solve(u, Allocation::Uniform(n + 1, m).q);
    ASSERT_TRUE(a.ok());
    for (int i = 1; i < n; ++i) {
      // Equal up to the dual tolerance (the constraints are met to o.tolerance).
      EXPECT_NEAR(a->position_share[i], a->position_share[0], 10 * o.tolerance);
      EXPECT_NEAR(a->utility_obtained[i], a->utility_obtained[0], 10 * o.tolerance);
    }
  }
}

// The paper's car/bus failure: both experts want the same region, the car's map is sharper there.
// Without fairness the car takes the region and the bus is left with almost nothing of what it
// values; proportional fairness guarantees the bus rho/n of its utility.
TEST(AllocationSolverTest, ProportionalFairnessKeepsTheWeakExpertsShare) {
  const int n = 2, m = 64;
  std::vector<float> u(3 * m);
  for (int j = 0; j < m; ++j) {
    const bool region = j < 8;
    u[0 * m + j] = region ? 1.0f / 8 : 0.0f;       // car
    u[1 * m + j] = region ? 0.9f / 8 : 0.1f / 56;  // bus
    u[2 * m + j] = 1.0f / m;                       // fictitious
  }
  AllocationOptions o;
  o.beta = 0.001;
  o.beta_reference_positions = 0;
  o.fairness = kFairnessNone;
  auto greedy = MakeSolver(o, n, m)->Solve(u, Allocation::Uniform(3, m).q);
  ASSERT_TRUE(greedy.ok());
  const auto un = Normalised(u, n, m);
  EXPECT_GT(Cross(greedy->q, un, m, 0, 0), 0.99);
  EXPECT_LT(Cross(greedy->q, un, m, 1, 1), 0.01);
  o.fairness = kFairnessProportional;
  o.rho = 1.0;
  auto fair = MakeSolver(o, n, m)->Solve(u, Allocation::Uniform(3, m).q);
  ASSERT_TRUE(fair.ok());
  EXPECT_TRUE(fair->converged);
  EXPECT_GE(Cross(fair->q, un, m, 1, 1), 0.5 - 2 * o.tolerance);
  EXPECT_GE(Cross(fair->q, un, m, 0, 0), 0.5 - 2 * o.tolerance);
  EXPECT_NEAR(fair->utility_obtained[1], Cross(fair->q, un, m, 1, 1), 1e-12);
  EXPECT_DOUBLE_EQ(fair->fair_share[1], 0.5);
}

TEST(AllocationSolverTest, DiagnosticsMatchTheAllocation) {
  const int n = 3, m = 100;
  const auto uf = RandomUtilities(n, m, 11);
  auto a = MakeSolver(AllocationOptions{}, n, m)->Solve(uf, Allocation::Uniform(n + 1, m).q);
  ASSERT_TRUE(a.ok());
  const auto un = Normalised(uf, n, m);
  for (int i = 0; i <= n; ++i) {
    double share = 0;
    for (int j = 0; j < m; ++j) share += a->q[i * m + j];
    EXPECT_NEAR(a->position_share[i], share / m, 1e-12);
    EXPECT_NEAR(a->utility_obtained[i], Cross(a->q, un, m, i, i), 1e-12);
  }
  EXPECT_EQ(a->constraints.size(), 3u);
  EXPECT_EQ(a->constraints[1].label, "proportional[1]");
  EXPECT_NEAR(a->effective_beta, 0.01 * 4096 / 100, 1e-15);
}

TEST(AllocationSolverTest, WarmStartConvergesWithoutIterationsOnARepeatedInput) {
  const int n = 3, m = 256;
  const auto uf = RandomUtilities(n, m, 12);
  AllocationOptions o;
  o.fairness = kFairnessProportional | kFairnessEnvyFree;
  auto solver = MakeSolver(o, n, m);
  const auto prev = Allocation::Uniform(n + 1, m).q;
  auto first = solver->Solve(uf, prev);
  auto second = solver->Solve(uf, prev);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_GT(first->dual_iterations, 0);
  EXPECT_EQ(second->dual_iterations, 0);
  for (size_t e = 0; e < prev.size(); ++e) EXPECT_NEAR(first->q[e], second->q[e], 1e-9);
}

TEST(AllocationSolverTest, ExtremeUtilityOverBetaStaysFinite) {
  const int n = 2, m = 65536;
  std::vector<float> u(3 * m, 0.0f);
  u[0] = 1.0f;  // all of expert 0's mass on one position
  for (int j = 0; j < m; ++j) u[m + j] = (j % 7 == 0) ? 1.0f : 0.0f;
  for (int j = 0; j < m; ++j) u[2 * m + j] = 1.0f / m;
  AllocationOptions o;
  o.beta = 0.001;  // scaled to 6.25e-5 at this m: u / beta up to 1.6e4
  auto a = MakeSolver(o, n, m)->Solve(u, Allocation::Uniform(3, m).q);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->converged);
  for (double v : a->q) ASSERT_TRUE(std::isfinite(v));
  EXPECT_GT(a->q[0], 0.999);
}

TEST(AllocationSolverTest, RejectsBadInputWithInvalidArgument) {
  const int n = 2, m = 10;
  auto solver = MakeSolver(AllocationOptions{}, n, m);
  const auto prev = Allocation::Uniform(n + 1, m).q;
  auto u = RandomUtilities(n, m, 1);
  EXPECT_EQ(solver->Solve(std::span<const float>(u).subspan(1), prev).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(solver->Solve(u, std::span<const double>(prev).subspan(1)).status().code(),
            StatusCode::kInvalidArgument);
  auto bad = u;
  bad[m + 3] = std::nanf("");
  auto st = solver->Solve(bad, prev).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("expert 1 at position 3"), std::string::npos) << st.message();
  bad = u;
  bad[4] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(solver->Solve(bad, prev).status().code(), StatusCode::kInvalidArgument);
  bad = u;
  bad[5] = -0.1f;
  EXPECT_EQ(solver->Solve(bad, prev).status().code(), StatusCode::kInvalidArgument);
  bad = u;
  std::fill(bad.begin() + m, bad.begin() + 2 * m, 0.0f);
  st = solver->Solve(bad, prev).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("expert 1"), std::string::npos) << st.message();
  auto bad_prev = prev;
  bad_prev[2] = 0.9;
  EXPECT_EQ(solver->Solve(u, bad_prev).status().code(), StatusCode::kInvalidArgument);
  AllocationOptions o;
  o.rho = 1.5;
  EXPECT_EQ(AllocationSolver::Create(o, n, m).status().code(), StatusCode::kInvalidArgument);
  o = AllocationOptions{};
  o.beta = 0;
  EXPECT_EQ(AllocationSolver::Create(o, n, m).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AllocationSolver::Create(AllocationOptions{}, 0, m).status().code(),
            StatusCode::kInvalidArgument);
}

// -0.0 is finite and >= 0: a valid utility and a valid previous entry (the validation's fast
// checks look at sign bits, so this is the case they must not reject).
TEST(AllocationSolverTest, AcceptsNegativeZeroEntries) {
  const int n = 2, m = 10;
  auto u = RandomUtilities(n, m, 3);
  u[4] = -0.0f;
  auto prev = Allocation::Uniform(n + 1, m).q;
  prev[0 * m + 7] = 0.5;
  prev[1 * m + 7] = 0.5;
  prev[2 * m + 7] = -0.0;
  auto solver = MakeSolver(AllocationOptions{}, n, m);
  auto a = solver->Solve(u, prev);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->converged);
  // The fictitious player's prior at position 7 is floored at min_prior, not lost.
  EXPECT_GT(a->q[2 * m + 7], 0.0);
  // A negative entry next to it is still rejected.
  prev[2 * m + 8] = -1e-3;
  prev[0 * m + 8] += 1e-3;
  EXPECT_EQ(solver->Solve(u, prev).status().code(), StatusCode::kInvalidArgument);
}

TEST(AllocationTest, VerticalStripsSplitColumnsEqually) {
  auto a = Allocation::VerticalStrips(2, 3, 4);
  ASSERT_TRUE(a.ok());
  for (int h = 0; h < 3; ++h) {
    for (int w = 0; w < 4; ++w) {
      const int j = h * 4 + w;
      EXPECT_EQ(a->q[0 * 12 + j], w < 2 ? 1.0 : 0.0);
      EXPECT_EQ(a->q[1 * 12 + j], w < 2 ? 0.0 : 1.0);
      EXPECT_EQ(a->q[2 * 12 + j], 0.0);
    }
  }
}

}  // namespace
}  // namespace dnd::method
