"""Named tolerances for the test suite, each with the reason for its value."""

# Identities through an SVD (sharp operator, duals): numpy's SVD is backward stable, so the
# relative error of ‖M‖_nuc², ⟨M, M♯⟩ etc. is a small multiple of machine epsilon (2.2e-16) times
# the matrix dimension; matrices in the tests are at most 40 × 40, so 1e-10 leaves a wide margin
# while still catching any wrong scaling (which is O(1)).
SVD_RTOL = 1e-10

# The numpy function generated from a sympy expression against the same expression evaluated by
# sympy with 30 significant digits: a handful of floating-point operations per layer, b ≤ 6
# layers, so the relative error is a few hundred ulps at worst.
LAMBDIFY_RTOL = 1e-12

# Two independent float64 evaluations of the same closed form (the theorem object against a
# hand-written numpy reference formula): both are a few dozen operations, so agreement to a few
# hundred ulps.
FORMULA_RTOL = 1e-12

# Expected costs computed two ways (closed formula against a brute-force sum over outcomes):
# sums of at most 2^10 products of numbers of order 1.
COST_RTOL = 1e-12

# Solver agreement. Closed forms, HiGHS (simplex, exact up to its 1e-9 feasibility tolerance on
# numbers of order 1) and enumeration agree to rounding: 1e-9 relative.
EXACT_RTOL = 1e-9
# cvxpy/Clarabel is an interior-point method that stops at a relative gap of ~1e-8; on these
# problems it lands within 1e-9 of the exact optimum (measured); 1e-8 is the bar.
CONVEX_RTOL = 1e-8
# SLSQP from several starts stops when the objective changes by < 1e-14 relative; the total cost
# is smooth near the optimum, so its value is accurate to ~1e-10; 1e-7 leaves room for flat valleys.
LOCAL_RTOL = 1e-7
# KKT residuals (relative) that certify optimality: exact methods (closed forms' own dual
# certificates, HiGHS) to rounding. Interior-point solutions of the smooth programs stop when the
# objective is within ~1e-10; near a smooth minimum the objective error is quadratic in the
# distance to the optimum, so the iterate itself (and with it the gradient in the stationarity
# condition) is only within ~sqrt(1e-10) = 1e-5 of the optimum, times the problem's curvature;
# 1e-4 allows a factor of 10 for that.
KKT_EXACT = 1e-9
KKT_CONVEX = 1e-4
