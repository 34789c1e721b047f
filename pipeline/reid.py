"""Person re-identification embeddings: a crop of a person -> a unit vector; similar people, similar vectors.

The model is OSNet x0.25 trained on MSMT17 (torchreid, MIT), exported to ONNX with its weights in
an external `.onnx.data` file beside it: input 1 x 3 x 256 x 128 (RGB, 0-1, ImageNet mean and std
normalised; the export has no normalisation inside), output 1 x 512. One crop costs a few
milliseconds on one thread, so the tracker asks for embeddings only where motion is ambiguous
(see `pipeline.timetrack`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import CctvError

INPUT_HW = (256, 128)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
DEFAULT_MODEL = Path("models/osnet_x0_25_msmt17/osnet_x0_25_msmt17.onnx")


class Embedder:
    """OSNet embeddings with ONNX Runtime on the CPU (one thread by default: the detector needs the rest)."""

    def __init__(self, path: str | Path = DEFAULT_MODEL, threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise CctvError(f"re-identification model not found: {path} (run `cctv assets`)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.crops = 0

    @staticmethod
    def preprocess(image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """A BGR frame's box (x1, y1, x2, y2) as the model's 1 x 3 x 256 x 128 input."""
        h, w = image.shape[:2]
        x1, y1 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
        x2, y2 = int(min(w, np.ceil(box[2]))), int(min(h, np.ceil(box[3])))
        crop = image[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)]
        crop = cv2.resize(crop, (INPUT_HW[1], INPUT_HW[0]), interpolation=cv2.INTER_LINEAR)
        rgb = crop[:, :, ::-1].astype(np.float32) / 255.0
        return ((rgb - MEAN) / STD).transpose(2, 0, 1)[None]

    def embed(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Unit embeddings (N, 512) of the boxes in one BGR frame."""
        out = []
        for box in np.asarray(boxes, dtype=float).reshape(-1, 4):
            vec = self.session.run(None, {self.input: self.preprocess(image, box)})[0][0]
            out.append(vec / (np.linalg.norm(vec) + 1e-12))
            self.crops += 1
        return np.array(out, dtype=np.float32).reshape(-1, 512)
