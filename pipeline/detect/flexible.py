"""Run fixed-shape (1x3x640x640) Ultralytics OpenVINO YOLO exports at any input size (H, W multiples of 32).

A 16:9 frame letterboxed into 640x640 wastes 44 % of the input on padding, and a few small motion
regions do not need 640x640 at all: measured on this CPU, 640x384 costs 0.6 and 320x320 0.35 of a
640x640 inference (README). Verified against the fixed export at 640x640 (`tests/test_detect.py`).

Why this works: the backbone and neck are fully convolutional; only two places carry the
export size as constants:

1. the Detect/Pose head: per-level maps are flattened with constant Reshapes (e.g.
   [1,144,80,80] -> [1,144,6400]), concatenated to 8400 anchors, and decoded with constant
   anchor-grid and stride tensors ([1,2,8400], [1,1,8400]);
2. YOLO11's attention block (C2PSA, model.10): `view(B, nh, 2*kd+hd, H*W)` and
   `view(B, C, H, W)` with H, W baked in ([1,256,20,20] -> [1,2,128,400] and back).

So, once per model: (1) cut the graph at the head's per-level maps (the inputs of the
flattening Reshapes, i.e. raw box-distribution and class logits, before DFL and sigmoid),
(2) rebuild the attention Reshape targets from ShapeOf(feature map), then per input shape:
`model.reshape` + compile (cached), and decode the per-level maps in NumPy exactly as the
Ultralytics head does (DFL softmax over 16 bins, anchors at cell centres, strides 8/16/32,
class sigmoid, Pose keypoints) into the original raw layout (1x(4+nc[+nk])xN).

The network takes the BGR canvas itself (HxWx3 bytes): the conversion to the export's 1x3xHxW RGB
0..1 floats is part of the compiled graph, on the inference threads. The same numbers come out,
and it saved 15 % of a 640x640 inference's CPU against `cv2.dnn.blobFromImage` (EPYC, 2 cores).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import ColorFormat, PrePostProcessor

from pipeline.detect.packing import PAD_VALUE, inference_cost

REG_MAX = 16  # DFL bins per box side in every Ultralytics detect head
# Compiling an input shape costs about as much as this many inferences at 640x640 (bench-shapes: 15-25 on
# the 2-core Xeon and EPYC). A count, not a timing, so that a replay makes the same choices on every run.
COMPILE_COST = 20.0
COST_UNIT = (640, 640)  # the inference COMPILE_COST counts: the exports' own input size
_compile_seconds = 0.0  # every FlexibleYolo of this process


def compile_seconds() -> float:
    """Seconds this process has spent compiling input shapes: a one-off cost a benchmark reports apart."""
    return _compile_seconds


@dataclass(frozen=True)
class _Branch:
    """One head branch cut out of the graph: which output rows it fills, one map per level."""

    role: str  # "box", "cls", "box+cls" (YOLO11: 64 DFL + nc class maps in one concat) or "kpt"
    channels: int
    level_outputs: tuple[ov.Output, ...]  # [1, channels, h_l, w_l], finest level first


@dataclass
class _Compiled:
    """Per input shape: the compiled model's infer requests (one per stream) and the anchor grid for decoding."""

    requests: list[ov.InferRequest]
    anchor_x: np.ndarray  # (N,) anchor centres in grid units (i + 0.5)
    anchor_y: np.ndarray
    stride: np.ndarray  # (N,) float32
    compile_s: float  # clone + reshape + compile_model, seconds


class FlexibleYolo:
    """An Ultralytics YOLO (detect or pose) OpenVINO IR that accepts any HxW canvas, H, W % 32 == 0.

    `infer(canvas)` takes an HxWx3 BGR uint8 canvas and returns the same raw layout as the original
    export gives for its blob: 1x(4+nc)xN for detect,
    1x(4+1+nk)xN for pose, boxes as cx, cy, w, h in input pixels, class scores after sigmoid,
    keypoints as x, y in input pixels and visibility after sigmoid; N = sum over strides
    8/16/32 of the compiled shape's (H/s)*(W/s). One compiled model per input shape.
    One infer request per shape: not for concurrent calls from several threads.

    Compiling a shape costs about as much as 20 inferences (0.4-0.8 s, and 30-45 MB), so a shape is not
    compiled on first use: until then its canvas runs on the smallest compiled shape that holds it,
    padded right and bottom with the letterbox grey (its pixels keep their coordinates, so the
    boxes are where they would be). Ski rental: once those stand-in runs have cost, by the cost
    model of `packing.inference_cost`, `compile_cost` 640x640 inferences more than the shape's own
    would have, it is compiled. A 10 s clip then compiles one or two shapes instead of five, and a
    live camera, within minutes, the ones it uses most.
    """

    def __init__(
        self, original: ov.Model, core: ov.Core, device: str, config: dict[str, object], streams: int = 1
    ) -> None:
        """original: the export as read; streams: how many canvases `infer_many` runs at once, each on its
        share of the threads (OpenVINO streams); raises ValueError when the head is not an Ultralytics Detect/Pose."""
        self.core = core
        self.device = device
        self.streams = streams
        self.config = {**config, "NUM_STREAMS": streams} if streams > 1 else config
        self.export_shape = tuple(original.input(0).get_shape())  # (1, 3, 640, 640)
        branches, kpt_shape, strides = _find_head(original)
        # The DFL as the export computes it: bin weights (arange(16), or their int8 rounding) and
        # the FakeQuantize NNCF put on the softmax (YOLOv8 8.4.x exports; None for YOLO11).
        self._dfl_bins, self._dfl_fq = _find_dfl(original)
        self.kpt_shape = kpt_shape  # (17, 3) for pose, None for detect
        self.strides = strides  # (8, 16, 32)
        results = [ops.result(out) for b in branches for out in b.level_outputs]
        self._branches = [(b.role, b.channels) for b in branches]
        self.model = ov.Model(results, original.get_parameters(), "flexible_yolo")
        _make_reshapes_shape_agnostic(self.model)
        self.model = _taking_bgr_bytes(self.model)
        self.nc = sum(c - (4 * REG_MAX if r == "box+cls" else 0) for r, c in self._branches if r in ("cls", "box+cls"))
        self.nk = sum(c for r, c in self._branches if r == "kpt")
        self._compiled: dict[tuple[int, ...], _Compiled] = {}
        self.compile_cost = COMPILE_COST
        self._owed: dict[tuple[int, ...], float] = {}  # per shape not compiled: what its stand-ins cost beyond it

    # ---------------------------------------------------------------- compile (per shape)
    def compiled(self, shape: tuple[int, ...]) -> _Compiled:
        """The compiled model for this network input shape (1, 3, H, W), built on the first call (0.4-0.8 s
        on the 2-core box); it takes H x W canvases."""
        entry = self._compiled.get(shape)
        if entry is None:
            self._check(shape)
            n, c, h, w = shape
            start = time.perf_counter()
            model = self.model.clone()
            model.reshape({model.input(0): ov.PartialShape([n, h, w, c])})
            compiled = self.core.compile_model(model, self.device, self.config)
            requests = [compiled.create_infer_request() for _ in range(self.streams)]
            entry = _Compiled(requests, *_anchors(h, w, self.strides), time.perf_counter() - start)
            self._compiled[shape] = entry
            global _compile_seconds
            _compile_seconds += entry.compile_s
        return entry

    def _check(self, shape: tuple[int, ...]) -> None:
        stride_max = max(self.strides)
        if len(shape) != 4 or shape[:2] != (1, 3) or shape[2] % stride_max or shape[3] % stride_max:
            raise ValueError(f"blob shape {shape}: want 1x3xHxW with H, W multiples of {stride_max}")

    def _runner(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], _Compiled]:
        """The compiled shape a blob of `shape` runs on: its own, or a stand-in while compiling it has not paid."""
        entry = self._compiled.get(shape)
        if entry is not None:
            return shape, entry
        self._check(shape)  # at once, not when compiling it has paid
        holders = [s for s in self._compiled if s[2] >= shape[2] and s[3] >= shape[3]]
        if not holders:
            return shape, self.compiled(shape)
        held = min(holders, key=lambda s: s[2] * s[3])
        extra = inference_cost((held[3], held[2]), COST_UNIT) - inference_cost((shape[3], shape[2]), COST_UNIT)
        owed = self._owed.get(shape, 0.0) + extra
        if owed < self.compile_cost:
            self._owed[shape] = owed
            return held, self._compiled[held]
        self._owed.pop(shape, None)
        return shape, self.compiled(shape)

    # ---------------------------------------------------------------- inference
    def infer(self, canvas_bgr: np.ndarray, floor: float = 0.0) -> np.ndarray:
        """HxWx3 uint8 BGR canvas -> raw output in the original export's layout.

        floor: only anchors whose best class score reaches it are decoded and returned (0: every anchor)."""
        return self.infer_many([canvas_bgr], floor)[0]

    def infer_many(self, canvases: Sequence[np.ndarray], floor: float = 0.0) -> list[np.ndarray]:
        """`infer` of each canvas, `streams` of them at once: on a 2-core CPU one thread per inference
        costs 15-40 % less CPU than two, and two canvases side by side keep both cores busy."""
        for canvas_bgr in canvases:  # every canvas checked before any inference starts
            if canvas_bgr.ndim != 3 or canvas_bgr.shape[2] != 3:
                raise ValueError(f"canvas shape {canvas_bgr.shape}: want HxWx3 BGR")
        out: list[np.ndarray] = []
        for start in range(0, len(canvases), self.streams):
            running = []
            taken: Counter[tuple[int, ...]] = Counter()  # requests of each compiled shape in use
            for canvas_bgr in canvases[start : start + self.streams]:
                canvas = np.ascontiguousarray(canvas_bgr, dtype=np.uint8)
                shape, entry = self._runner((1, 3, *canvas.shape[:2]))
                if shape[2:] != canvas.shape[:2]:
                    padded = np.full((*shape[2:], 3), PAD_VALUE, np.uint8)
                    padded[: canvas.shape[0], : canvas.shape[1]] = canvas
                    canvas = padded
                request = entry.requests[taken[shape]]
                taken[shape] += 1
                request.set_input_tensor(ov.Tensor(canvas[None], shared_memory=True))
                request.start_async()
                running.append((request, entry, canvas))  # the canvas outlives its inference
            for request, entry, _ in running:
                request.wait()
                # The cut network's per-level head maps (views into the request's buffers), decoded here.
                maps = [request.get_output_tensor(i).data for i in range(len(request.model_outputs))]
                out.append(self.decode(maps, entry, floor))
        return out

    # ---------------------------------------------------------------- NumPy decode
    def decode(self, maps: list[np.ndarray], grid: _Compiled, floor: float = 0.0) -> np.ndarray:
        """Per-level maps -> 1x(4+nc+nk)xN, exactly the Ultralytics Detect/Pose head math.

        With a `floor`, the anchors are first chosen on the class logits (the sigmoid keeps their
        order), and only those are decoded: N is then their count. Almost every anchor of a canvas
        scores below the detector's lowest threshold; decoding all of them (DFL softmax, 80 sigmoids
        each, then the argmax over them) took 1.2 s of a PETS09 replay, choosing first about 0.7.
        Each level is decoded straight into its columns of the output (finest level first), so
        nothing is concatenated.
        """
        levels = len(self.strides)
        flats = [[maps[b * levels + lv].reshape(channels, -1) for b, (_, channels) in enumerate(self._branches)]
                 for lv in range(levels)]
        picks = [self._candidates(level, floor) for level in flats]
        sizes = [level[0].shape[1] if pick is None else len(pick) for level, pick in zip(flats, picks)]
        out = np.empty((1, 4 + self.nc + self.nk, sum(sizes)), np.float32)
        o = out[0]
        start, anchor = 0, 0
        for level, pick, size in zip(flats, picks, sizes):
            cols = slice(start, start + size)
            every = slice(anchor, anchor + level[0].shape[1])
            start, anchor = cols.stop, every.stop
            at = every if pick is None else pick + every.start  # this level's anchors in the whole grid
            ax, ay, stride = grid.anchor_x[at], grid.anchor_y[at], grid.stride[at]
            row = 4  # next class row
            for flat, (role, channels) in zip(level, self._branches):
                if pick is not None:
                    flat = flat[:, pick]
                n_cls = channels - 4 * REG_MAX if role == "box+cls" else channels
                if role in ("box", "box+cls"):
                    self._boxes(flat[: 4 * REG_MAX], ax, ay, stride, o[:4, cols])
                if role in ("cls", "box+cls"):
                    _sigmoid(flat[channels - n_cls :], o[row : row + n_cls, cols])
                    row += n_cls
                if role == "kpt":
                    self._keypoints(flat, ax, ay, stride, o[4 + self.nc :, cols])
        return out

    def _candidates(self, level: list[np.ndarray], floor: float) -> np.ndarray | None:
        """Anchor indices of one level whose best class logit can reach `floor` after the sigmoid (None: all)."""
        if floor <= 0:
            return None
        if floor >= 1:
            return np.empty(0, np.intp)
        cut = np.log(floor / (1 - floor)) - 1e-4  # a hair low: the caller's exact threshold decides
        best = None
        for flat, (role, _) in zip(level, self._branches):
            if role in ("cls", "box+cls"):
                top = flat[4 * REG_MAX if role == "box+cls" else 0 :].max(axis=0)
                best = top if best is None else np.maximum(best, top)
        assert best is not None
        return np.flatnonzero(best >= cut)

    def _boxes(self, dist: np.ndarray, ax: np.ndarray, ay: np.ndarray, stride: np.ndarray, out: np.ndarray) -> None:
        """DFL: softmax over 16 bins per side, expectation = distance (l, t, r, b) in grid units;
        then dist2bbox(xywh): centre = anchor + (rb - lt) / 2, size = lt + rb, times stride."""
        d = dist.reshape(4, REG_MAX, -1)
        e = np.subtract(d, d.max(axis=1, keepdims=True))
        np.exp(e, out=e)
        if self._dfl_fq is None:
            ltrb = np.matmul(self._dfl_bins, e) / e.sum(axis=1)
        else:  # the export fake-quantized the probabilities (clip, 256 levels) before the bin conv
            in_lo, in_hi, out_lo, out_hi, levels = self._dfl_fq
            e /= e.sum(axis=1, keepdims=True)
            np.clip(e, in_lo, in_hi, out=e)
            e -= in_lo
            e *= (levels - 1) / (in_hi - in_lo)
            np.rint(e, out=e)
            step = (out_hi - out_lo) / (levels - 1)
            ltrb = np.matmul(self._dfl_bins * step, e) + out_lo * self._dfl_bins.sum()
        left, top, right, bottom = ltrb
        out[0] = (ax + (right - left) * 0.5) * stride
        out[1] = (ay + (bottom - top) * 0.5) * stride
        out[2] = (left + right) * stride
        out[3] = (top + bottom) * stride

    def _keypoints(self, kpt: np.ndarray, ax: np.ndarray, ay: np.ndarray, stride: np.ndarray, out: np.ndarray) -> None:
        """Pose.kpts_decode: xy = (raw * 2 + (anchor - 0.5)) * stride, visibility = sigmoid(raw)."""
        assert self.kpt_shape is not None
        k, ndim = self.kpt_shape
        y, o = kpt.reshape(k, ndim, -1), out.reshape(k, ndim, -1)
        o[:, 0] = (y[:, 0] * 2.0 + (ax - 0.5)) * stride
        o[:, 1] = (y[:, 1] * 2.0 + (ay - 0.5)) * stride
        if ndim == 3:
            _sigmoid(y[:, 2], o[:, 2])


def _sigmoid(x: np.ndarray, out: np.ndarray) -> None:
    """out = 1 / (1 + exp(-x)), in place in `out`."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)


def _anchors(h: int, w: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """make_anchors(grid_cell_offset=0.5): cell centres per level, row-major, finest level first."""
    xs, ys, ss = [], [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(h // s) + 0.5, np.arange(w // s) + 0.5, indexing="ij")
        xs.append(gx.ravel())
        ys.append(gy.ravel())
        ss.append(np.full(gx.size, s))
    return tuple(np.concatenate(a).astype(np.float32) for a in (xs, ys, ss))  # type: ignore[return-value]


# -------------------------------------------------------------------- graph surgery
def _taking_bgr_bytes(model: ov.Model) -> ov.Model:
    """The model with its input as 1xHxWx3 BGR bytes, converted in the graph as `base.to_blob` does."""
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


def _find_head(model: ov.Model) -> tuple[list[_Branch], tuple[int, int] | None, tuple[int, ...]]:
    """Locate the head's per-level maps and what each branch becomes in the final output.

    A head branch is a Concat along the anchor axis whose inputs are all Reshapes flattening a
    [1, C, h, w] map to [1, C, h*w] (one per level). Its role follows from which input of the
    model's final Concat ([box 4 | classes | keypoints]) it flows into: that way YOLO11's joint
    144-channel maps, YOLOv8's separate 64/80 maps and Pose's 51-channel maps all come out right.
    """
    final = model.output(0).get_node().input_value(0).get_node()
    if final.get_type_name() != "Concat":
        raise ValueError(f"unexpected head: model output comes from {final.get_type_name()}, not Concat")
    branches: list[_Branch] = []
    kpt_shape: tuple[int, int] | None = None
    input_hw = model.input(0).get_shape()[2]
    strides: tuple[int, ...] = ()
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Concat" or op.get_input_size() < 2:
            continue
        sources = [op.input_value(i).get_node() for i in range(op.get_input_size())]
        if not all(
            s.get_type_name() == "Reshape" and len(s.get_input_shape(0)) == 4 and len(s.get_output_shape(0)) == 3
            for s in sources
        ):
            continue
        levels = tuple(s.input_value(0) for s in sources)
        reached, saw_sigmoid, kpt_dims = _trace_to(op, final)
        slots = {0: "box", 1: "cls", 2: "kpt"}
        role = "+".join(slots[i] for i in sorted(reached))
        if role not in ("box", "cls", "box+cls", "kpt"):
            raise ValueError(f"head branch {op.get_friendly_name()} reaches output parts {sorted(reached)}")
        if "cls" in role and not saw_sigmoid:
            raise ValueError("class branch has no Sigmoid after the cut: scores would come out as logits")
        if role == "kpt":
            kpt_shape = kpt_dims
        strides = tuple(input_hw // s.get_input_shape(0)[2] for s in sources)
        branches.append(_Branch(role, levels[0].get_shape()[1], levels))
    if not any("box" in b.role for b in branches):
        raise ValueError("no detect head found (per-level flatten + concat)")
    return branches, kpt_shape, strides


def _find_dfl(model: ov.Model) -> tuple[np.ndarray, tuple[float, float, float, float, int] | None]:
    """The DFL's bin weights (its 1x16x1x1 conv, dequantized) and the FakeQuantize on its softmax."""
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Softmax" and ".dfl/" in op.get_friendly_name():
            consumer = next(iter(op.output(0).get_target_inputs())).get_node()
            fq = None
            if consumer.get_type_name() == "FakeQuantize":
                lo_hi = [float(_const_value(consumer.input_value(i)).ravel()[0]) for i in range(1, 5)]
                fq = (*lo_hi, int(consumer.get_attributes()["levels"]))
                consumer = next(iter(consumer.output(0).get_target_inputs())).get_node()
            if consumer.get_type_name() != "Convolution":
                raise ValueError(f"DFL softmax feeds {consumer.get_type_name()}, expected the 1x1 bin conv")
            return _const_value(consumer.input_value(1)).reshape(REG_MAX).astype(np.float32), fq  # type: ignore[return-value]
    return np.arange(REG_MAX, dtype=np.float32), None


def _const_value(out: ov.Output) -> np.ndarray:
    """Fold a small constant subgraph (Constant, Convert, Subtract, Multiply: int8 weight dequantization)."""
    node = out.get_node()
    kind = node.get_type_name()
    if kind == "Constant":
        return node.get_data().astype(np.float32)
    args = [_const_value(node.input_value(i)) for i in range(node.get_input_size())]
    if kind == "Convert":
        return args[0]
    if kind in ("Multiply", "Subtract"):
        return args[0] * args[1] if kind == "Multiply" else args[0] - args[1]
    raise ValueError(f"cannot fold {kind} {node.get_friendly_name()}")


def _trace_to(start: ov.Node, final: ov.Node) -> tuple[set[int], bool, tuple[int, int] | None]:
    """Walk downstream from `start`: which inputs of `final` it reaches, whether a Sigmoid is on
    the way (class scores are sigmoided after the cut), and the (K, D) of a keypoint view."""
    reached: set[int] = set()
    saw_sigmoid = False
    kpt_dims: tuple[int, int] | None = None
    seen = {start.get_friendly_name()}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        for target in (t for out in node.outputs() for t in out.get_target_inputs()):
            consumer = target.get_node()
            if consumer.get_friendly_name() == final.get_friendly_name():
                reached.add(target.get_index())
                continue
            if consumer.get_type_name() == "Sigmoid":
                saw_sigmoid = True
            if consumer.get_type_name() == "Reshape" and len(consumer.get_output_shape(0)) == 4 and kpt_dims is None:
                shape = consumer.get_output_shape(0)
                kpt_dims = (shape[1], shape[2])  # [1, 17, 3, N] for pose (the DFL view is [1, 4, 16, N])
            if consumer.get_friendly_name() not in seen:
                seen.add(consumer.get_friendly_name())
                todo.append(consumer)
    return reached, saw_sigmoid, kpt_dims


def _make_reshapes_shape_agnostic(model: ov.Model) -> None:
    """Rebuild constant Reshape targets that carry the feature map's H, W (YOLO11 attention).

    Flatten kind:   [B, C, H, W] -> [B, a, b, H*W]  becomes  [B, a, b, prod(ShapeOf(x)[2:4])]
    Unflatten kind: [B, g, d, H*W] -> [B, C, H, W]  becomes  [B, C, ShapeOf(x)[2], ShapeOf(x)[3]]
    where x is the flatten's input in the same module (the attention input), because the
    unflatten's own input no longer knows H and W separately (and H == W at 640x640, so the
    constant alone cannot tell them apart).
    """
    reshapes = [op for op in model.get_ordered_ops() if op.get_type_name() == "Reshape"]
    const = [r for r in reshapes if r.input_value(1).get_node().get_type_name() == "Constant"]
    spatial: dict[str, ov.Output] = {}  # module scope -> ShapeOf of its feature map
    for r in const:
        src, dst = list(r.get_input_shape(0)), list(r.get_output_shape(0))
        if len(src) == 4 and len(dst) >= 3 and src[2] * src[3] == dst[-1] and src[2] * src[3] > 1:
            shape = ops.shape_of(r.input_value(0))
            hw = ops.reduce_prod(ops.gather(shape, ops.constant([2, 3]), ops.constant(0)), ops.constant([0]), True)
            target = ops.concat([ops.gather(shape, ops.constant([0]), ops.constant(0)), ops.constant(dst[1:-1]), hw], 0)
            r.input(1).replace_source_output(target.output(0))
            spatial[_scope(r)] = shape.output(0)
    for r in const:
        src, dst = list(r.get_input_shape(0)), list(r.get_output_shape(0))
        if len(dst) == 4 and len(src) >= 3 and dst[2] * dst[3] == src[-1] and dst[2] * dst[3] > 1:
            if _scope(r) not in spatial:
                raise ValueError(f"{r.get_friendly_name()}: unflatten to {dst} without a known H, W source")
            shape = spatial[_scope(r)]
            batch = ops.gather(shape, ops.constant([0]), ops.constant(0))
            hw = ops.gather(shape, ops.constant([2, 3]), ops.constant(0))
            target = ops.concat([batch, ops.constant([dst[1]]), hw], 0)
            r.input(1).replace_source_output(target.output(0))
    model.validate_nodes_and_infer_types()


def _scope(node: ov.Node) -> str:
    """The PyTorch module a node came from: '__module.model.10.m.0.attn/aten::view/Reshape' -> the part before '/'."""
    return node.get_friendly_name().split("/")[0]
