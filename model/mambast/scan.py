"""Selective scan (Mamba S6 recurrence) for Mamba-ST.

Everything that touches the recurrence lives here, behind one function, `selective_scan`, whose
signature follows mamba_ssm's ``selective_scan_fn(u, delta, A, B, C, D, delta_bias, delta_softplus)``:

    u, delta   [B, K*Din, L]
    A          [K*Din, N]        (already negative: A = -exp(A_logs))
    B, C       [B, K, N, L]      (shared by the Din channels of scan k)
    D          [K*Din]
    delta_bias [K*Din]
    returns y  [B, K*Din, L]

    delta_t = softplus(delta_t + delta_bias)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
    y_t     = sum_n C_t[n] * h_t[n] + D * u_t

`scan_variant` picks the implementation:

* ``reference``  plain per-token Python loop in float64 (tests only).
* ``sequential`` per-token recurrence; mirrors, op for op, the ONNX ``Loop`` over tokens; CPU
  training's fallback when the kernel cannot be built.
* ``parallel``   chunked two-level scan; mirrors, op for op, the ONNX graph of ``--scan parallel``.
* ``kernel``     C++ recurrence with its own backward pass (`mambast.scan_kernel`, built on first
  use); float32 on the CPU; for training (not exportable).
* ``export``     emits a placeholder node ``mambast::SelectiveScan`` while tracing for ONNX export;
  `mambast.onnx_graph.expand_scans` later replaces it by the sequential or parallel ONNX subgraph
  (and a later fused custom op can simply keep the node).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

VARIANTS = ("reference", "sequential", "parallel", "kernel", "export")
DEFAULT_CHUNK = 32


def selective_scan(u, delta, A, B, C, D, delta_bias, delta_softplus=True,
                   scan_variant="parallel", chunk=DEFAULT_CHUNK):
    if scan_variant == "sequential":
        return scan_sequential(u, delta, A, B, C, D, delta_bias, delta_softplus)
    if scan_variant == "parallel":
        return scan_parallel(u, delta, A, B, C, D, delta_bias, delta_softplus, chunk)
    if scan_variant == "kernel":
        from .scan_kernel import scan_kernel
        return scan_kernel(u, delta, A, B, C, D, delta_bias, delta_softplus)
    if scan_variant == "reference":
        return scan_reference(u, delta, A, B, C, D, delta_bias, delta_softplus).to(u.dtype)
    if scan_variant == "export":
        return _ScanPlaceholder.apply(u, delta, A, B, C, D, delta_bias, int(delta_softplus),
                                      int(B.shape[1]), int(A.shape[0]), int(A.shape[1]))
    raise ValueError(f"unknown scan_variant {scan_variant!r}; expected one of {VARIANTS}")


def _delta(delta, delta_bias, delta_softplus):
    d = delta + delta_bias.unsqueeze(1)
    return F.softplus(d) if delta_softplus else d


def scan_reference(u, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """Plain per-token loop in float64; the ground truth for the tests."""
    u, delta, A, B, C, D, delta_bias = (t.double() for t in (u, delta, A, B, C, D, delta_bias))
    b, kd, length = u.shape
    k, n = B.shape[1], A.shape[1]
    din = kd // k
    dt = _delta(delta, delta_bias, delta_softplus)
    Bx = B.repeat_interleave(din, dim=1)  # [b, kd, n, L]
    Cx = C.repeat_interleave(din, dim=1)
    h = u.new_zeros(b, kd, n)
    ys = []
    for t in range(length):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * Bx[..., t]
        ys.append((h * Cx[..., t]).sum(-1))
    return torch.stack(ys, -1) + D[None, :, None] * u


def scan_sequential(u, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """Per-token recurrence, state [B, K, Din, N]; same op order as the ONNX Loop body.

    The per-token inputs come from one ``unbind`` per tensor rather than L slices: the backward pass
    then does one ``stack`` instead of a zero-filled full-size gradient per token slice (O(L) rather
    than O(L^2) memory traffic; CPU training steps 1.45x faster, docs/benchmarks/training.md).
    ``dt * u`` taken over the whole tensor gives the same floats as per token."""
    b, kd, length = u.shape
    k, n = B.shape[1], A.shape[1]
    din = kd // k
    if length == 0:
        return D.unsqueeze(1) * u
    dt = _delta(delta, delta_bias, delta_softplus)
    A4 = A.reshape(1, k, din, n)
    du = (dt * u).reshape(b, k, din, 1, length).unbind(-1)
    dts = dt.reshape(b, k, din, 1, length).unbind(-1)
    Bs = B.unsqueeze(2).unbind(-1)
    Cs = C.unsqueeze(2).unbind(-1)
    h = u.new_zeros(b, k, din, n)
    ys = []
    for d4, du4, B4, C4 in zip(dts, du, Bs, Cs):
        h = torch.exp(d4 * A4) * h + du4 * B4
        ys.append((h * C4).sum(3))
    return torch.stack(ys, -1).reshape(b, kd, length) + D.unsqueeze(1) * u


def _shift(x, off):
    """x[..., t] -> x[..., t - off] along the last axis, zeros shifted in."""
    return F.pad(x[..., : x.shape[-1] - off], (off, 0))


def scan_parallel(u, delta, A, B, C, D, delta_bias, delta_softplus=True, chunk=DEFAULT_CHUNK):
    """Chunked two-level scan, overflow-free in fp32.

    Level 1, every chunk of T tokens at once, zero initial state: a log-step (Hillis-Steele)
    doubling over (log-decay, state) pairs. After step j, ``logd[t]`` is the sum of
    delta*A (<= 0) over the window (t - 2^j, t] clipped at the chunk start, i.e. the within-chunk
    cumulative log-decay, and ``h[t]`` the state accumulated over that window. Only exp of
    non-positive numbers is ever taken, and each log-decay is a sum over its own window (no
    difference of two large prefix sums, so no cancellation when deltas are large).
    Level 2, a short recurrence over the L/T chunks carries the state between chunks.
    Level 3 adds exp(prefix log-decay) * carried state to every position and contracts with C.
    """
    T = int(chunk)
    if T < 2 or T & (T - 1):
        raise ValueError("chunk must be a power of two >= 2")
    b, kd, length = u.shape
    k, n = B.shape[1], A.shape[1]
    din = kd // k
    dt = _delta(delta, delta_bias, delta_softplus)
    dA = dt.reshape(b, k, din, 1, length) * A.reshape(1, k, din, n, 1)      # [b,k,din,n,L] <= 0
    bu = (dt * u).reshape(b, k, din, 1, length) * B.unsqueeze(2)            # [b,k,din,n,L]
    pad = (T - length % T) % T
    dA, bu, Cp = F.pad(dA, (0, pad)), F.pad(bu, (0, pad)), F.pad(C.unsqueeze(2), (0, pad))
    n_chunks = (length + pad) // T
    logd = dA.reshape(b, k, din, n, n_chunks, T)
    h = bu.reshape(b, k, din, n, n_chunks, T)
    Cc = Cp.reshape(b, k, 1, n, n_chunks, T)
    off = 1
    while off < T:
        h = h + torch.exp(logd) * _shift(h, off)
        logd = logd + _shift(logd, off)
        off *= 2
    decay = torch.exp(logd)                                                  # prefix decays, <= 1
    decay_end = decay[..., T - 1:].permute(4, 0, 1, 2, 3, 5)                 # [nc,b,k,din,n,1]
    h_end = h[..., T - 1:].permute(4, 0, 1, 2, 3, 5)
    carry = u.new_zeros(b, k, din, n, 1)
    starts = []
    for c in range(n_chunks):
        starts.append(carry)
        carry = decay_end[c] * carry + h_end[c]
    start = torch.stack(starts, 0).permute(1, 2, 3, 4, 0, 5)                # [b,k,din,n,nc,1]
    h = h + decay * start
    y = (h * Cc).sum(3).reshape(b, kd, n_chunks * T)[..., :length]
    return y + D.unsqueeze(1) * u


class _ScanPlaceholder(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, delta_softplus, k, kd, n):
        return scan_parallel(u, delta, A, B, C, D, delta_bias, bool(delta_softplus))

    @staticmethod
    def symbolic(g, u, delta, A, B, C, D, delta_bias, delta_softplus, k, kd, n):
        out = g.op("mambast::SelectiveScan", u, delta, A, B, C, D, delta_bias,
                   delta_softplus_i=int(delta_softplus), k_i=int(k),
                   d_inner_i=int(kd) // int(k), d_state_i=int(n))
        out.setType(u.type())
        return out
