"""The shipped quantized TensorFlow Lite models, run by LiteRT (``ai-edge-litert``) on the CPU.

One interpreter per model and encoder; inputs are uint8 RGB at the model's size and outputs
are dequantized with the tensor's own scale and zero point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from v2p.errors import EncoderSpecError


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, 3] -> [h, w, 3] for a model's input ``size`` (h, w): area averaging when
    shrinking, bilinear when growing."""
    import cv2

    h, w = size
    interp = cv2.INTER_AREA if image.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


class TFLiteModel:
    """A single-input, single-output TFLite model called one image at a time (batch 1 graphs)."""

    def __init__(self, path: Path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise EncoderSpecError("v2p-sight needs the package ai-edge-litert (pip install ai-edge-litert)") from None
        if not path.is_file():
            raise EncoderSpecError(f"the packaged model {path.name} is missing at {path}; reinstall v2p")
        self.name = path.name
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        self.input_size = (int(inp["shape"][1]), int(inp["shape"][2]))  # (height, width)
        scale, zero = out["quantization"]
        self._scale, self._zero = float(scale), float(zero)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] at :attr:`input_size` -> float32 output (batch axis removed)."""
        self.interpreter.set_tensor(self._in, np.ascontiguousarray(image, np.uint8)[None])
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._out)[0]
        if self._scale:
            return (y.astype(np.float32) - self._zero) * self._scale
        return y
