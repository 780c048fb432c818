"""Named tolerances for the test suite, each with the reason for its value (STYLE.md §9)."""

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
