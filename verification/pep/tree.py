r"""The PEP over the whole sampling tree (every path of ``K`` i.i.d. draws; no reduction): the test of
the layer reduction, and for coupled layers (A1 in descent form) a relaxation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from dropmuon.theory import Independent  # noqa: F401 (doctest)
from dropmuon.theory._validation import check_layer_array, check_positive_int, check_scalar

from .allpairs import _interpolation_rows
from .sdp import _SDP, _check_solver, _outer, _sel


@dataclass(frozen=True)
class TreePEP:
    """A PEP over the full sampling tree: ``value`` (primal), ``dual``, ``duality_gap``, status,
    the number of tree nodes (points) and the solve time. ``coupled``: descent-form class
    (a relaxation: an upper bound only); otherwise the separable class with exact interpolation."""

    value: float
    dual: float | None
    duality_gap: float | None
    status: str
    raw_status: str
    coupled: bool
    nodes: int
    time: float
    statement: str
    K: int


def _tree(distribution, K: int):
    """Nodes ``(parent, S, prob, depth)`` of the sampling tree, breadth first (root first)."""
    nodes = [(-1, (), 1.0, 0)]
    level = [0]
    for k in range(K):
        nxt = []
        for v in level:
            for S, p in distribution.outcomes():
                if p > 0:
                    nodes.append((v, tuple(S), nodes[v][2] * p, k + 1))
                    nxt.append(len(nodes) - 1)
        level = nxt
    return nodes


def _tree_vectors(nodes, i: int, L: float, beta: float):
    """Layer ``i`` (1-based)'s position and gradient rows at every node, in the basis
    ``(x_root, g^v for every node v)`` of that layer's block."""
    n = len(nodes)
    d = n + 1
    X = [None] * n
    M = [None] * n
    G = sp.identity(d, format="csr")[1:]
    X[0] = _sel(d, [0])
    M[0] = G[0]  # warm start: momentum at the root's gradient
    for v in range(1, n):
        par, S, _, _ = nodes[v]
        if i in S:
            m = (1.0 - beta) * M[par] + beta * G[par]
            X[v] = X[par] - m / L
            M[v] = m
        else:
            X[v], M[v] = X[par], M[par]
    return sp.vstack(X).tocsr(), G, d


def tree_worst_case(L, distribution, K: int, *, statement: str = "rate", beta: float = 1.0,
                    coupled: bool = False, Delta0: float = 1.0, solver: str = "CLARABEL") -> TreePEP:
    r"""The worst case of T1's left-hand side by a PEP over the whole sampling tree (every path of
    ``K`` i.i.d. draws of ``distribution``, an ``RPT`` or ``Independent``), with no reduction.

    Every tree node ``v`` (probability ``P(v)``, depth ``k``) is a point ``X^v``; the objective is
    ``Σ_{v: k<K} P(v)/K · Σ_i α_i‖g_i^v‖²`` (``α_i = π_i/L_i`` weighted, ``1`` rate).

    * ``coupled=False`` (separable, A1 in Lipschitz form): one function ``f_i`` per layer with the
      THG interpolation conditions between all nodes, ``f_i(v) − f_i^* ≥ ‖g_i^v‖²/(2L_i)`` and
      ``Σ_i (f_i(root) − f_i^*) ≤ Δ0``. Exact where the reduction's witness attains it; it must
      equal :func:`certify` (a test of the reduction).
    * ``coupled=True`` (A1 in descent form only): one function ``f`` with the descent inequality
      ``f(X^p) ≤ f(X^q) + Σ_i [⟨g_i^q, X_i^p − X_i^q⟩ + (L_i/2)‖X_i^p − X_i^q‖²]`` for every ordered
      pair and ``f(X^v) − f^* ≥ Σ_i ‖g_i^v‖²/(2L_i)``. These conditions are necessary but not known
      to be sufficient (no interpolation theorem is known for this class), so the value is only an
      **upper bound** on the coupled worst case; it is exact where it meets the separable value.

    >>> round(tree_worst_case([1.0], Independent([0.5]), 2).value, 6)
    1.5
    """
    L = check_layer_array("L", L, "positive")
    K = check_positive_int("K", K)
    beta = check_scalar("beta", beta, "probability")
    Delta0 = check_scalar("Delta0", Delta0, "positive")
    solver = _check_solver(solver)
    if statement not in ("weighted", "rate"):
        raise ValueError(f"statement must be 'weighted' or 'rate'; got statement = {statement!r}")
    b = len(L)
    if distribution.nlayers != b:
        raise ValueError(f"the distribution has {distribution.nlayers} layers but L has {b}")
    pi = np.asarray(distribution.inclusion, dtype=float)
    alpha = pi / L if statement == "weighted" else np.ones(b)
    nodes = _tree(distribution, K)
    n = len(nodes)
    probs = np.array([nd[2] for nd in nodes])
    depth = np.array([nd[3] for nd in nodes])
    w = np.where(depth < K, probs / K, 0.0)
    blocks = [_tree_vectors(nodes, i + 1, L[i], beta) for i in range(b)]
    dims = [blk[2] for blk in blocks]
    C = {}
    if coupled:
        ns = n + 1  # f^v, f*
        fstar = n
        sdp = _SDP(dims, ns)
        sdp.add(_sel(ns, [0]) - _sel(ns, [fstar]), {}, Delta0)
        sdp.add(_sel(ns, np.full(n, fstar)) - _sel(ns, np.arange(n)),
                {i: _outer(G, G, d) / (2 * L[i]) for i, (X, G, d) in enumerate(blocks)}, 0.0)
        I, J = np.nonzero(~np.eye(n, dtype=bool))  # f_I ≤ f_J + ⟨g_J, x_I − x_J⟩ + (L/2)‖x_I − x_J‖²
        A = {}
        for i, (X, G, d) in enumerate(blocks):
            dx = X[I] - X[J]
            A[i] = -_outer(G[J], dx, d) - (L[i] / 2) * _outer(dx, dx, d)
        sdp.add(_sel(ns, I) - _sel(ns, J), A, 0.0)
    else:
        ns = b * (n + 1)  # per layer: f_i^v (v = 0..n−1), f_i^*
        sdp = _SDP(dims, ns)
        init = sp.csr_matrix((1, ns))
        for i, (X, G, d) in enumerate(blocks):
            off = i * (n + 1)
            fidx = off + np.arange(n)
            fstar = off + n
            init = init + _sel(ns, [off]) - _sel(ns, [fstar])
            sdp.add(_sel(ns, np.full(n, fstar)) - _sel(ns, fidx), {i: _outer(G, G, d) / (2 * L[i])}, 0.0)
            S, A = _interpolation_rows(X, G, fidx, L[i], d, ns)
            sdp.add(S, {i: A}, 0.0)
        sdp.add(init, {}, Delta0)
    for i, (X, G, d) in enumerate(blocks):
        C[i] = alpha[i] * np.asarray(_outer(G, G, d).T @ w).ravel()
    res = sdp.solve(np.zeros(ns), C, solver)
    if res["status"] == "failed":
        return TreePEP(math.nan, None, None, "failed", res["raw_status"], coupled, n, res["time"], statement, K)
    return TreePEP(res["primal"], res["dual"], res["duality_gap"], res["status"], res["raw_status"], coupled, n,
                   res["time"], statement, K)
