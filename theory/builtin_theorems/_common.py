"""Symbols shared by the theorem modules: per-layer entries indexed by ``i`` and the scalars."""

from .. import symbols as s


def _sum(body):
    return s.layer_sum(body)


_i = s.i
L, L0, L1, PI = s.L[_i], s.L0[_i], s.L1[_i], s.pi[_i]
SIG, RHO, DEL = s.sigma[_i], s.rho[_i], s.delta[_i]
D0, K_, ETA, BETA, EPS = s.Delta0, s.K, s.eta, s.beta, s.epsilon
#: a layer's dual gradient norm ‖∇_i f(X^k)‖_(i)*, the variable of the numeric left-hand sides
G = s.g[_i]


