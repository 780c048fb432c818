"""Sparse Gram-matrix functionals and a small SDP wrapper over cvxpy, shared by the all-pairs layer
PEP (:mod:`.allpairs`) and the sampling-tree PEP (:mod:`.tree`): a row ``⟨a_r, b_r⟩`` of inner products
of vectors given in a basis is a row acting on ``vec(H)`` of that basis's Gram matrix ``H``."""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp

#: SDP solvers that ship with cvxpy
SOLVERS = ("CLARABEL", "SCS")
#: solver statuses of a certificate: ``optimal`` (solver converged), ``inaccurate`` (converged to
#: reduced accuracy: read the duality gap), ``failed`` (no usable solution)
STATUSES = ("optimal", "inaccurate", "failed")


def _check_solver(solver: str) -> str:
    s = str(solver).upper()
    if s not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)} (they ship with cvxpy); got solver = {solver!r}")
    return s


def _padded(M: sp.csr_matrix):
    M = sp.csr_matrix(M)
    M.sum_duplicates()
    n = M.shape[0]
    counts = np.diff(M.indptr)
    w = max(1, int(counts.max(initial=0)))
    idx = np.zeros((n, w), dtype=np.int64)
    val = np.zeros((n, w))
    rows = np.repeat(np.arange(n), counts)
    pos = np.arange(M.nnz) - np.repeat(M.indptr[:-1], counts)
    idx[rows, pos] = M.indices
    val[rows, pos] = M.data
    return idx, val


def _outer(A, B, d: int) -> sp.csr_matrix:
    """Row ``r`` of the result is ``vec(a_r b_rᵀ)`` (``d²`` entries): ``⟨a_r, b_r⟩ = row · vec(H)``
    for a Gram matrix ``H`` of the basis (``A``, ``B``: rows are sparse vectors in that basis)."""
    ia, va = _padded(A)
    ib, vb = _padded(B)
    n = ia.shape[0]
    cols = (ia[:, :, None] * d + ib[:, None, :]).reshape(n, -1)
    vals = (va[:, :, None] * vb[:, None, :]).reshape(n, -1)
    rows = np.repeat(np.arange(n), cols.shape[1])
    M = sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(n, d * d))
    M.eliminate_zeros()
    return M


def _sel(n: int, idx, coef=1.0, m: int | None = None) -> sp.csr_matrix:
    """Rows ``e_idx[r]`` (scaled) as an ``len(idx) × n`` sparse matrix."""
    idx = np.asarray(idx, dtype=np.int64)
    coef = np.broadcast_to(np.asarray(coef, dtype=float), idx.shape)
    return sp.csr_matrix((coef, (np.arange(len(idx)), idx)), shape=(len(idx), n))


class _SDP:
    """``max c_s·s + Σ_b ⟨C_b, H_b⟩`` s.t. ``S s + Σ_b A_b vec(H_b) ≤ r``, ``H_b ⪰ 0``."""

    def __init__(self, dims, nscalar: int):
        self.dims = list(dims)
        self.ns = nscalar
        self.S, self.A, self.r = [], [[] for _ in self.dims], []

    def add(self, S, A: dict, r):
        m = S.shape[0]
        self.S.append(sp.csr_matrix(S))
        for b, d in enumerate(self.dims):
            self.A[b].append(sp.csr_matrix(A[b]) if b in A else sp.csr_matrix((m, d * d)))
        self.r.append(np.broadcast_to(np.asarray(r, dtype=float), (m,)))

    def solve(self, c_s, C: dict, solver: str, *, min_trace_at: float | None = None):
        import cvxpy as cp

        S = sp.vstack(self.S).tocsr()
        A = [sp.vstack(a).tocsr() for a in self.A]
        r = np.concatenate(self.r)
        s = cp.Variable(self.ns)
        H = [cp.Variable((d, d), symmetric=True) for d in self.dims]
        vecs = [cp.vec(h, order="F") for h in H]
        lhs = S @ s
        for a, v in zip(A, vecs):
            lhs = lhs + a @ v
        ineq = lhs <= r
        psd = [h >> 0 for h in H]
        obj = c_s @ s
        for b, v in enumerate(vecs):
            if b in C:
                obj = obj + C[b] @ v
        cons = [ineq] + psd
        if min_trace_at is not None:  # PEPit's trace heuristic: a low-rank optimal solution
            prob = cp.Problem(cp.Minimize(sum(cp.trace(h) for h in H)), cons + [obj >= min_trace_at])
        else:
            prob = cp.Problem(cp.Maximize(obj), cons)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():  # "may be inaccurate": the status field reports it
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=solver)
        except cp.error.SolverError as e:
            return {"status": "failed", "raw_status": f"solver error: {e}", "time": time.perf_counter() - t0}
        elapsed = time.perf_counter() - t0
        raw = prob.status
        if raw not in ("optimal", "optimal_inaccurate") or s.value is None:
            return {"status": "failed", "raw_status": raw, "time": elapsed}
        sv = np.asarray(s.value)
        Hv = [np.asarray(h.value) for h in H]
        primal = float(c_s @ sv + sum(C[b] @ Hv[b].ravel(order="F") for b in C))
        out = {"status": "optimal" if raw == "optimal" else "inaccurate", "raw_status": raw,
               "time": elapsed, "s": sv, "H": Hv, "primal": primal}
        viol = S @ sv + sum(a @ h.ravel(order="F") for a, h in zip(A, Hv)) - r
        out["primal_infeasibility"] = float(max(0.0, viol.max(initial=0.0),
                                                *[-np.linalg.eigvalsh(h)[0] for h in Hv]))
        if min_trace_at is None:
            lam = np.asarray(ineq.dual_value, dtype=float)
            dual = float(lam @ r)
            # dual slack Z_b = mat(A_bᵀλ − C_b) ⪰ 0 and stationarity in the free scalars Sᵀλ = c_s
            zmin = []
            for b, (a, d) in enumerate(zip(A, self.dims)):
                z = a.T @ lam - (C[b] if b in C else 0.0)
                Z = np.asarray(z).reshape(d, d, order="F")
                zmin.append(np.linalg.eigvalsh((Z + Z.T) / 2)[0])
            out.update(dual=dual, duality_gap=abs(dual - primal),
                       dual_infeasibility=float(max(0.0, -lam.min(initial=0.0), -min(zmin),
                                                    np.abs(S.T @ lam - c_s).max(initial=0.0))),
                       multipliers=lam)
        return out
