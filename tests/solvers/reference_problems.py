"""Tiny sampling problems whose optima were derived by hand; each entry says how.

Units: without Delta0/epsilon the max- and sum-form measure K in units of 2Δ0/ε², so
K = max_i L_i/π_i (max) or Σ_i L_i/π_i (sum). Costs are the lumped linear model
cost(S) = F + Σ_{j∈S} c_j unless a full model is given.
"""

import math

REFERENCE = [
    dict(
        name="largest L at the input: full is optimal",
        # M_i = max_{j≤i} L_j = 5 for every i, so π_i* = M_i/L_max = 1: p = (1,0,0,0).
        # TC = K·E cost = 5 · 4 = 20.
        L=[5, 1, 3, 2], costs=[1, 1, 1, 1], family="rpt", objective="max",
        start_probs=[1, 0, 0, 0], total_cost=20.0, full_is_optimal=True,
    ),
    dict(
        name="least smooth second layer",
        # M = (1,5,5,5), L_max = 5: π* = (0.2,1,1,1), p* = (0.2,0.8,0,0). K = max(1/0.2, 5, 3, 2)
        # = 5, E cost = Σ π_j = 3.2, TC = 16; full: 5·4 = 20 (speed-up 1.25); uniform: π = (1/4,
        # 1/2, 3/4, 1), K = max(4, 10, 4, 2) = 10, E cost = 2.5, TC = 25.
        L=[1, 5, 3, 2], costs=[1, 1, 1, 1], family="rpt", objective="max",
        start_probs=[0.2, 0.8, 0, 0], inclusion=[0.2, 1, 1, 1], total_cost=16.0,
        full_total_cost=20.0, uniform_total_cost=25.0, full_is_optimal=False,
    ),
    dict(
        name="same with a forward cost",
        # p* does not depend on positive costs; E cost gains F = 2: 5.2, TC = 26; full 5·6 = 30;
        # uniform 10·4.5 = 45.
        L=[1, 5, 3, 2], costs=[1, 1, 1, 1], forward_cost=2.0, family="rpt", objective="max",
        start_probs=[0.2, 0.8, 0, 0], total_cost=26.0, full_total_cost=30.0, uniform_total_cost=45.0,
    ),
    dict(
        name="subsets beat RPT by skipping smooth layers above a rough one",
        # Closed form: ρ = (M_s − M_{s−1})/L_max = (0.2,0.8,0,0); keep j > s w.p.
        # min(1, L_j/M_{j−1}) = (·,1,0.6,0.4); π = (0.2,1,0.6,0.4), K = 5. With F = 0, a = 0:
        # E cost = Σ_j π_j c_j = 2.2, TC = 11 = RPT's 16 minus Σ_j v_j (M_{j−1} − L_j)_+ = 2 + 3.
        L=[1, 5, 3, 2], costs=[1, 1, 1, 1], family="subsets", objective="max",
        inclusion=[0.2, 1, 0.6, 0.4], total_cost=11.0,
    ),
    dict(
        name="independent max-form",
        # π_i* = L_i/L_max = (0.2,1,0.6,0.4): K = 5, E cost = 2.2, TC = 11.
        L=[1, 5, 3, 2], costs=[1, 1, 1, 1], forward_cost=1.0, family="independent", objective="max",
        inclusion=[0.2, 1, 0.6, 0.4], total_cost=5 * 3.2,
    ),
    dict(
        name="equal constants: full updates (independent)",
        # π_i* = L_i/L_max = 1 for all i.
        L=[2, 2, 2], costs=[1, 2, 3], family="independent", objective="max",
        inclusion=[1, 1, 1], total_cost=2 * 6.0, full_is_optimal=True,
    ),
    dict(
        name="equal constants and costs: full updates (sum-form independent)",
        # u_i = sqrt(L_i/c_i) all equal, F = 0: π ∝ u, scaled to max 1: π ≡ 1; TC = Σ L · Σ c = 6·3.
        L=[2, 2, 2], costs=[1, 1, 1], family="independent", objective="sum",
        inclusion=[1, 1, 1], total_cost=18.0, full_is_optimal=True,
    ),
    dict(
        name="sum-form independent, F = 0: pi proportional to sqrt(L/c)",
        # π ∝ sqrt(L_i/c_i) = (1, 2, 1)·const → (0.5, 1, 0.5); TC = (1/0.5 + 4/1 + 1/0.5)·(0.5 + 1
        # + 0.5) = 8 · 2 = 16 = (Σ_i sqrt(L_i c_i))².
        L=[1, 4, 1], costs=[1, 1, 1], family="independent", objective="sum",
        inclusion=[0.5, 1, 0.5], total_cost=16.0,
    ),
    dict(
        name="sum-form independent with a forward cost (water-filling)",
        # f(π_1) = (1/π_1 + 4)(F + π_1 + 1) with F = 1, π_2 = 1 capped: f' = 0 at π_1² = 1/2;
        # TC = (√2 + 4)(2 + 1/√2) = 9 + 4√2.
        L=[1, 4], costs=[1, 1], forward_cost=1.0, family="independent", objective="sum",
        inclusion=[1 / math.sqrt(2), 1], total_cost=9 + 4 * math.sqrt(2),
    ),
    dict(
        name="l0l1, two layers, RPT",
        # Optimal RPT has π = (π_1, 1). K = 2Δ0/(ε π_1) + 2Δ0 (L0_1/(π_1 L1_1²) + L0_2/L1_2²)/ε²
        # = 2/π_1 + 6 (Δ0 = ε = 1, L0 = (0,3), L1 = (1,1)), E cost = π_1 + 1:
        # TC = 8 + 2/π_1 + 6π_1, minimised at π_1 = 1/√3: TC = 8 + 4√3.
        L=None, costs=[1, 1], family="rpt", objective="l0l1", L0=[0, 3], L1=[1, 1], Delta0=1, epsilon=1,
        inclusion=[1 / math.sqrt(3), 1], total_cost=8 + 4 * math.sqrt(3),
    ),
]
