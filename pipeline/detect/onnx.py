"""ONNX Runtime backend (CPU): runs any Ultralytics ONNX export without OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.detect.base import (
    DetectOptions,
    YoloDetector,
    check_outputs,
    export_metadata,
    load_failure,
    metadata_names,
    metadata_size,
    to_blob,
)
from pipeline.errors import CctvError


class OnnxDetector(YoloDetector):
    """An Ultralytics .onnx export; class names from its `names` metadata, else metadata.yaml beside it."""

    def __init__(
        self,
        path: Path,
        options: DetectOptions | None = None,
        *,
        device: str = "CPU",
    ) -> None:
        if device.upper() != "CPU":
            raise CctvError(f"the onnx backend runs on the CPU only, not {device!r}: use the openvino backend")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise load_failure(path, "ONNX Runtime", exc) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        meta = meta if "names" in meta else export_metadata(path.parent)
        model_input = self.session.get_inputs()[0]
        height, width = model_input.shape[2:]
        static = isinstance(height, int) and isinstance(width, int)  # else a dynamic export: use imgsz
        input_size = (width, height) if static else metadata_size(meta)
        names = metadata_names(meta, path)
        check_outputs(self.session.get_outputs()[0].shape[1], names, path)
        self.input_name = model_input.name
        super().__init__(names, input_size, options or DetectOptions())

    def _infer(self, canvas_bgr: np.ndarray, floor: float = 0.0) -> np.ndarray:
        return self.session.run(None, {self.input_name: to_blob(canvas_bgr)})[0]
