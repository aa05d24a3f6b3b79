"""ONNX graph surgery: scan expansion, stylizer composition with an `If`, metadata.

Pieces of the model are exported with torch.onnx (the selective scan as a placeholder node
``mambast::SelectiveScan``); this module then
* composes the stylizer graph, putting the (content, content) path behind ``If(min(strength) < 1)``
  with all initializers at the outer scope and identical tensors stored once;
* replaces every placeholder by plain ONNX ops (``sequential``: a Loop over tokens;
  ``parallel``: a chunked two-level scan), mirroring `mambast.scan` op for op.
"""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SCAN_DOMAIN = "mambast"
SCAN_OP = "SelectiveScan"


class _Builder:
    """Appends nodes with unique, prefixed value names."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{self.prefix}{hint}_{self._n}"

    def op(self, op_type, inputs, outputs=None, n_out=1, **attrs):
        outs = outputs or [self.fresh(op_type) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type + "_node"), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def const(self, value, dtype=np.int64):
        arr = np.asarray(value, dtype=dtype)
        return self.op("Constant", [], value=numpy_helper.from_array(arr, self.fresh("const")))

    # shorthands
    def reshape(self, x, shape):
        return self.op("Reshape", [x, self.const(shape)])

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", [x, self.const(axes)])

    def squeeze(self, x, axes):
        return self.op("Squeeze", [x, self.const(axes)])

    def slice(self, x, starts, ends, axes):
        s = starts if isinstance(starts, str) else self.const(starts)
        e = ends if isinstance(ends, str) else self.const(ends)
        return self.op("Slice", [x, s, e, self.const(axes)])


def _vi(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _delta(b: _Builder, delta, bias, softplus: bool):
    d = b.op("Add", [delta, b.unsqueeze(bias, [1])])
    return b.op("Softplus", [d]) if softplus else d


def _scan_sequential(b: _Builder, ins, out, k, din, n, softplus):
    """ONNX Loop over tokens, state [B, K, Din, N] carried; y_t collected as scan output."""
    u, delta, A, Bm, Cm, D, bias = ins
    dt = _delta(b, delta, bias, softplus)
    A4 = b.reshape(A, [1, k, din, n])
    uT = b.op("Transpose", [u], perm=[2, 0, 1])          # [L, B, KD]
    dtT = b.op("Transpose", [dt], perm=[2, 0, 1])
    BT = b.op("Transpose", [Bm], perm=[3, 0, 1, 2])      # [L, B, K, N]
    CT = b.op("Transpose", [Cm], perm=[3, 0, 1, 2])
    bdim = b.op("Shape", [u], start=0, end=1)
    trip = b.squeeze(b.op("Shape", [u], start=2, end=3), [0])
    h0 = b.op("ConstantOfShape", [b.op("Concat", [bdim, b.const([k, din, n])], axis=0)],
              value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))
    cond = b.const(True, np.bool_)

    bb = _Builder(b.fresh("seqbody") + "/")
    it, c_in, h_in = bb.fresh("iter"), bb.fresh("cond_in"), bb.fresh("h_in")
    d4 = bb.reshape(bb.op("Gather", [dtT, it], axis=0), [-1, k, din, 1])
    u4 = bb.reshape(bb.op("Gather", [uT, it], axis=0), [-1, k, din, 1])
    B4 = bb.unsqueeze(bb.op("Gather", [BT, it], axis=0), [2])
    C4 = bb.unsqueeze(bb.op("Gather", [CT, it], axis=0), [2])
    a = bb.op("Exp", [bb.op("Mul", [d4, A4])])
    h_new = bb.op("Add", [bb.op("Mul", [a, h_in]), bb.op("Mul", [bb.op("Mul", [d4, u4]), B4])])
    y_sum = bb.op("ReduceSum", [bb.op("Mul", [h_new, C4]), bb.const([3])], keepdims=0)
    y_t = bb.reshape(y_sum, [-1, k * din])
    c_out = bb.op("Identity", [c_in])
    body = helper.make_graph(
        bb.nodes, "selective_scan_sequential_body",
        [_vi(it, TensorProto.INT64, []), _vi(c_in, TensorProto.BOOL, []), _vi(h_in)],
        [_vi(c_out, TensorProto.BOOL, []), _vi(h_new), _vi(y_t)])
    _, ys = b.op("Loop", [trip, cond, h0], n_out=2, body=body)  # ys: [L, B, KD]
    y = b.op("Transpose", [ys], perm=[1, 2, 0])
    b.op("Add", [y, b.op("Mul", [b.unsqueeze(D, [1]), u])], outputs=[out])


def _scan_parallel(b: _Builder, ins, out, k, din, n, softplus, chunk):
    """Chunked two-level scan; see mambast.scan.scan_parallel for the math."""
    T = int(chunk)
    u, delta, A, Bm, Cm, D, bias = ins
    dt = _delta(b, delta, bias, softplus)
    dA = b.op("Mul", [b.reshape(dt, [0, k, din, 1, -1]), b.reshape(A, [1, k, din, n, 1])])
    bu = b.op("Mul", [b.reshape(b.op("Mul", [dt, u]), [0, k, din, 1, -1]), b.unsqueeze(Bm, [2])])
    C5 = b.unsqueeze(Cm, [2])
    length = b.op("Shape", [u], start=2, end=3)
    tc = b.const([T])
    pad = b.op("Mod", [b.op("Sub", [tc, b.op("Mod", [length, tc])]), tc])
    pads = b.op("Concat", [b.const([0] * 9), pad], axis=0)
    shape6 = [0, 0, 0, 0, -1, T]
    logd = b.reshape(b.op("Pad", [dA, pads]), shape6)       # [B, K, Din, N, nC, T]
    h = b.reshape(b.op("Pad", [bu, pads]), shape6)
    Cc = b.reshape(b.op("Pad", [C5, pads]), shape6)           # [B, K, 1, N, nC, T]
    off = 1
    while off < T:
        shift_pads = b.const([0, 0, 0, 0, 0, off] + [0] * 6)
        h_shift = b.op("Pad", [b.slice(h, [0], [T - off], [5]), shift_pads])
        h = b.op("Add", [h, b.op("Mul", [b.op("Exp", [logd]), h_shift])])
        d_shift = b.op("Pad", [b.slice(logd, [0], [T - off], [5]), shift_pads])
        logd = b.op("Add", [logd, d_shift])
        off *= 2
    decay = b.op("Exp", [logd])
    perm = [4, 0, 1, 2, 3, 5]
    dend = b.op("Transpose", [b.slice(decay, [T - 1], [T], [5])], perm=perm)   # [nC, B, K, Din, N, 1]
    hend = b.op("Transpose", [b.slice(h, [T - 1], [T], [5])], perm=perm)
    n_chunks = b.squeeze(b.op("Shape", [logd], start=4, end=5), [0])
    bdim = b.op("Shape", [u], start=0, end=1)
    c0 = b.op("ConstantOfShape", [b.op("Concat", [bdim, b.const([k, din, n, 1])], axis=0)],
              value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))
    cond = b.const(True, np.bool_)

    bb = _Builder(b.fresh("chunkbody") + "/")
    it, c_in, carry = bb.fresh("iter"), bb.fresh("cond_in"), bb.fresh("carry_in")
    start = bb.op("Identity", [carry])
    carry_out = bb.op("Add", [bb.op("Mul", [bb.op("Gather", [dend, it], axis=0), carry]),
                              bb.op("Gather", [hend, it], axis=0)])
    c_out = bb.op("Identity", [c_in])
    body = helper.make_graph(
        bb.nodes, "selective_scan_chunk_body",
        [_vi(it, TensorProto.INT64, []), _vi(c_in, TensorProto.BOOL, []), _vi(carry)],
        [_vi(c_out, TensorProto.BOOL, []), _vi(carry_out), _vi(start)])
    _, starts = b.op("Loop", [n_chunks, cond, c0], n_out=2, body=body)        # [nC, B, K, Din, N, 1]
    starts = b.op("Transpose", [starts], perm=[1, 2, 3, 4, 0, 5])
    h = b.op("Add", [h, b.op("Mul", [decay, starts])])
    y = b.op("ReduceSum", [b.op("Mul", [h, Cc]), b.const([3])], keepdims=0)  # [B, K, Din, nC, T]
    y = b.slice(b.reshape(y, [0, k * din, -1]), [0], length, [2])
    b.op("Add", [y, b.op("Mul", [b.unsqueeze(D, [1]), u])], outputs=[out])


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _expand_graph(graph, variant, chunk, counter):
    new_nodes = []
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _expand_graph(a.g, variant, chunk, counter)
        if node.op_type == SCAN_OP and node.domain == SCAN_DOMAIN:
            counter[0] += 1
            k, din, n = _attr(node, "k"), _attr(node, "d_inner"), _attr(node, "d_state")
            b = _Builder(f"scan{counter[0]}/")
            args = (b, list(node.input), node.output[0], k, din, n, bool(_attr(node, "delta_softplus", 1)))
            if variant == "sequential":
                _scan_sequential(*args)
            elif variant == "parallel":
                _scan_parallel(*args, chunk)
            else:
                raise ValueError(f"unknown scan variant {variant!r}")
            new_nodes.extend(b.nodes)
        else:
            new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)


def expand_scans(model: onnx.ModelProto, variant: str, chunk: int) -> onnx.ModelProto:
    """`fused` keeps every placeholder as the custom op mambast::SelectiveScan (version 1, run by
    native/ libmambast_ops.so); the other variants lower it to plain opset-17 ops."""
    if variant == "fused":
        keep = [o for o in model.opset_import if o.domain != SCAN_DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(keep + [helper.make_opsetid(SCAN_DOMAIN, 1)])
        return model
    _expand_graph(model.graph, variant, chunk, [0])
    keep = [o for o in model.opset_import if o.domain != SCAN_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model


# ---- renaming and composition ---------------------------------------------------------------

def _rename(graph, fn):
    for node in graph.node:
        node.name = fn(node.name) if node.name else node.name
        for i, x in enumerate(node.input):
            if x:
                node.input[i] = fn(x)
        for i, x in enumerate(node.output):
            if x:
                node.output[i] = fn(x)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename(a.g, fn)
    for coll in (graph.initializer, graph.input, graph.output, graph.value_info):
        for v in coll:
            v.name = fn(v.name)


def prefix_piece(model: onnx.ModelProto, prefix: str, keep: dict[str, str]) -> onnx.GraphProto:
    """Rename every value of the piece to prefix+name, except names in `keep` (old -> new)."""
    g = onnx.GraphProto()
    g.CopyFrom(model.graph)
    del g.value_info[:]
    _rename(g, lambda x: keep.get(x, prefix + x))
    return g


def dedupe_initializers(graphs):
    """Move all initializers of `graphs` into one list, storing identical tensors once.
    Returns (initializers, mapping old name -> kept name)."""
    by_key, out, mapping = {}, [], {}
    for g in graphs:
        for init in g.initializer:
            arr = numpy_helper.to_array(init)
            key = (init.data_type, tuple(init.dims), hashlib.sha256(arr.tobytes()).hexdigest())
            if key in by_key:
                mapping[init.name] = by_key[key]
            else:
                by_key[key] = init.name
                out.append(init)
    return out, mapping


def _apply_mapping(graph, mapping):
    if not mapping:
        return
    for node in graph.node:
        for i, x in enumerate(node.input):
            if x in mapping:
                node.input[i] = mapping[x]
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _apply_mapping(a.g, mapping)


def compose_stylizer(main: onnx.ModelProto, cc: onnx.ModelProto, head: onnx.ModelProto) -> onnx.ModelProto:
    """main: (content, style_tokens, style_index) -> (emb, x_c, f_cs); cc: (emb, x_c) -> f_cc;
    head: f -> stylized. Result: (content, style_tokens, style_index, strength) -> stylized, with
    cc and the blend f = (1-s)*f_cc + s*f_cs inside If(min(strength) < 1)."""
    io_main = {n: n for n in ("content", "style_tokens", "style_index", "emb", "x_c", "f_cs")}
    gm = prefix_piece(main, "main/", io_main)
    gc = prefix_piece(cc, "cc/", {"emb": "emb", "x_c": "x_c", "f_cc": "cc/f_cc"})
    gh = prefix_piece(head, "head/", {"f": "f_blend", "stylized": "stylized"})
    inits, mapping = dedupe_initializers([gm, gc, gh])

    b = _Builder("strength/")
    lowest = b.op("ReduceMin", ["strength"], keepdims=0)
    cond = b.op("Less", [lowest, b.const(1.0, np.float32)])

    t = _Builder("blend/")
    s4 = t.reshape("strength", [-1, 1, 1, 1])
    keep_c = t.op("Mul", [t.op("Sub", [t.const(1.0, np.float32), s4]), "cc/f_cc"])
    f_then = t.op("Add", [keep_c, t.op("Mul", [s4, "f_cs"])], outputs=["f_blended"])
    then_g = helper.make_graph(list(gc.node) + t.nodes, "strength_below_one", [], [_vi(f_then)])
    else_g = helper.make_graph([helper.make_node("Identity", ["f_cs"], ["f_full"], name="strength_one")],
                               "strength_one", [], [_vi("f_full")])
    if_node = helper.make_node("If", [cond], ["f_blend"], name="content_identity_if",
                               then_branch=then_g, else_branch=else_g)

    inputs = [i for i in gm.input if i.name in ("content", "style_tokens", "style_index")]
    strength = helper.make_tensor_value_info("strength", TensorProto.FLOAT, [_dim(inputs[0], 0)])
    graph = helper.make_graph(list(gm.node) + b.nodes + [if_node] + list(gh.node), "mambast_stylizer",
                              inputs + [strength], list(gh.output), initializer=inits)
    _apply_mapping(graph, mapping)
    model = helper.make_model(graph, opset_imports=list(main.opset_import))
    model.ir_version = main.ir_version
    return model


def _dim(value_info, i):
    d = value_info.type.tensor_type.shape.dim[i]
    return d.dim_param or d.dim_value


def set_io_shapes(model: onnx.ModelProto, shapes: dict[str, list]) -> None:
    """Name the dimensions of graph inputs/outputs (str: symbolic, int: fixed)."""
    for v in list(model.graph.input) + list(model.graph.output):
        if v.name in shapes:
            shape = v.type.tensor_type.shape
            del shape.dim[:]
            for d in shapes[v.name]:
                dim = shape.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = set()

    def walk(g):
        for node in g.node:
            used.update(node.input)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
    walk(model.graph)
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def set_metadata(model: onnx.ModelProto, props: dict[str, str], doc: str = "") -> None:
    del model.metadata_props[:]
    helper.set_model_props(model, {k: str(v) for k, v in props.items()})
    model.producer_name = "mambast"
    model.doc_string = doc


def count_ops(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}

    def walk(g):
        for node in g.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
    walk(model.graph)
    return counts


def dedupe_constants(graph: onnx.GraphProto) -> None:
    """Identical Constant nodes of one graph scope are kept once (recursing into subgraphs)."""
    seen, mapping, nodes = {}, {}, []
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                dedupe_constants(a.g)
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            t = node.attribute[0].t
            key = (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
            if key in seen:
                mapping[node.output[0]] = seen[key]
                continue
            seen[key] = node.output[0]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    _apply_mapping(graph, mapping)


def compact_names(model: onnx.ModelProto) -> None:
    """Short names for intermediate values and nodes (keeps graph inputs, outputs, initializers).
    Torch's scoped names plus prefixes make up about half of a tiny model's file otherwise."""
    keep = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    keep |= {i.name for i in model.graph.initializer}
    names: dict[str, str] = {}
    counter = [0, 0]

    def val(x):
        if not x or x in keep:
            return x
        if x not in names:
            names[x] = f"t{len(names)}"
        return names[x]

    def walk(g):
        for node in g.node:
            counter[1] += 1
            node.name = f"{node.op_type}_{counter[1]}"
            for i, x in enumerate(node.input):
                node.input[i] = val(x)
            for i, x in enumerate(node.output):
                node.output[i] = val(x)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    for v in list(a.g.input) + list(a.g.output):
                        v.name = val(v.name)
                    walk(a.g)
        del g.value_info[:]
    walk(model.graph)
