"""Camera motion read from pixels, with no learned weights: pan, tilt, zoom, and how strong.

Between consecutive sampled frames, dense optical flow (OpenCV's Farnebäck, on small
grey frames) is fitted by least squares with a similarity motion around the frame centre:

    flow(x, y) = (tx + s*x - r*y,  ty + r*x + s*y)

``tx, ty`` (translation, in frame widths) say where the picture content moved, ``s`` its
expansion (zoom) and ``r`` its rotation. The content moves *against* the camera: content
sliding right means the camera pans left, content moving down means it tilts up, content
expanding means a zoom in. The summed motion over the clip is named in the words real
prompts use ("camera pans left", "zoom in", "static camera") and in Pika's flags
(``-camera pan left``, ``-motion 2``).

The per-pair readings are plain numbers (:func:`pair_motion`), so an encoder can store them
with its per-frame vectors and name the motion later (:func:`describe_motion`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FLOW_WIDTH = 160  # frames are analysed at this width: enough for global motion, cheap on CPU
MOTION_FEATURES = 4  # per frame: tx, ty, s (per pair, relative to the previous frame), fit residual
# a clip is "moving" when its summed motion passes these (fractions of the frame, over the clip)
MIN_TRANSLATION = 0.04
MIN_ZOOM = 0.04

CAMERA_PHRASES = {
    "pan_left": "camera pans left", "pan_right": "camera pans right",
    "tilt_up": "camera tilts up", "tilt_down": "camera tilts down",
    "zoom_in": "camera zooms in", "zoom_out": "camera zooms out",
    "static": "static camera",
}
PIKA_CAMERA = {"pan_left": "pan left", "pan_right": "pan right", "tilt_up": "tilt up", "tilt_down": "tilt down",
               "zoom_in": "zoom in", "zoom_out": "zoom out"}


@dataclass(frozen=True)
class CameraMotion:
    """The camera's motion over a clip. ``label`` is one of :data:`CAMERA_PHRASES`' keys."""

    label: str
    pan: float  # content shift right (+) / left (-), in frame widths over the clip
    tilt: float  # content shift down (+) / up (-), in frame heights
    zoom: float  # content scale change over the clip: + expands (zoom in), - shrinks
    strength: int  # 0..4 on Pika's -motion scale (how much the picture changes)

    @property
    def phrase(self) -> str:
        return CAMERA_PHRASES[self.label]

    @property
    def pika_flags(self) -> str:
        cam = PIKA_CAMERA.get(self.label)
        return (f"-camera {cam} " if cam else "") + f"-motion {self.strength}"

    def as_dict(self) -> dict:
        return {**asdict(self), "phrase": self.phrase, "pika_flags": self.pika_flags}


def _grey_small(frame: np.ndarray) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    width = min(FLOW_WIDTH, w)
    height = max(8, round(h * width / w))
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)


def pair_motion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[tx, ty, s, residual] from frame ``a`` to ``b`` (uint8 RGB): translation in frame widths,
    scale change per pair, and the mean flow the similarity model leaves unexplained (subject
    motion, parallax, noise), also in frame widths."""
    import cv2

    ga, gb = _grey_small(a), _grey_small(b)
    h, w = ga.shape
    # a global shift from phase correlation seeds the flow: Farnebäck alone underestimates large
    # shifts in fine texture (foliage, crowds), and the fit then reads the shortfall as a zoom
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (sx, sy), response = cv2.phaseCorrelate(ga.astype(np.float32), gb.astype(np.float32), window)
    init = np.zeros((h, w, 2), np.float32)
    if response > 0.05:
        init[..., 0], init[..., 1] = sx, sy
    flow = cv2.calcOpticalFlowFarneback(ga, gb, init, pyr_scale=0.5, levels=4, winsize=21, iterations=3,
                                        poly_n=5, poly_sigma=1.1, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    margin = max(2, w // 16)  # borders see content entering and leaving: leave them out
    ys, xs = np.mgrid[margin:h - margin:2, margin:w - margin:2]
    # flow is only measured where there is texture: flat sky or walls read as "not moving"
    # and would be explained as a zoom. Keep the better-textured half of the points.
    gx = cv2.Sobel(ga, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(ga, cv2.CV_32F, 0, 1, ksize=3)
    texture = np.hypot(gx, gy)[ys, xs]
    textured = texture >= max(np.median(texture), 4.0)
    if textured.sum() >= 32:
        ys, xs = ys[textured], xs[textured]
    fx = flow[ys, xs, 0].ravel() / w
    fy = flow[ys, xs, 1].ravel() / w
    x = (xs.ravel() - (w - 1) / 2) / w
    y = (ys.ravel() - (h - 1) / 2) / w
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    # unknowns (tx, ty, s, r); rows for the x and the y flow component
    design = np.concatenate([np.stack([ones, zeros, x, -y], 1), np.stack([zeros, ones, y, x], 1)])
    target = np.concatenate([fx, fy])
    params, *_ = np.linalg.lstsq(design, target, rcond=None)
    # one robust pass: refit on the 80% best-explained points (a moving subject is an outlier)
    err = np.abs(design @ params - target)
    keep = err <= np.quantile(err, 0.8)
    params, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
    residual = float(np.abs(design @ params - target).mean())
    tx, ty, s, _ = params
    return np.array([tx, ty * w / h, s, residual], np.float32)  # ty in frame heights


def clip_motion_features(frames: np.ndarray) -> np.ndarray:
    """[t, 4] per frame: the motion from the previous frame (zeros for the first)."""
    out = np.zeros((len(frames), MOTION_FEATURES), np.float32)
    for i in range(1, len(frames)):
        if frames[i].shape == frames[i - 1].shape:
            out[i] = pair_motion(frames[i - 1], frames[i])
    return out


def describe_motion(features: np.ndarray) -> CameraMotion:
    """Name the camera motion of one clip from its [t, 4] per-frame motion features."""
    feats = np.asarray(features, np.float64)
    pan, tilt = float(feats[:, 0].sum()), float(feats[:, 1].sum())
    zoom = float(np.prod(1.0 + feats[:, 2]) - 1.0)
    residual = float(feats[1:, 3].mean()) if len(feats) > 1 else 0.0
    # the zoom's effect at the frame edge is comparable to a translation of zoom/2
    moves = {"pan": abs(pan), "tilt": abs(tilt), "zoom": abs(zoom) / 2}
    kind = max(moves, key=moves.get)
    if kind == "zoom" and abs(zoom) >= MIN_ZOOM:
        label = "zoom_in" if zoom > 0 else "zoom_out"
    elif kind == "pan" and abs(pan) >= MIN_TRANSLATION:
        label = "pan_left" if pan > 0 else "pan_right"  # content moving right: the camera turned left
    elif kind == "tilt" and abs(tilt) >= MIN_TRANSLATION:
        label = "tilt_up" if tilt > 0 else "tilt_down"  # content moving down: the camera tilted up
    else:
        label = "static"
    change = max(moves.values()) + residual * max(len(feats) - 1, 1)
    strength = int(np.clip(np.floor(change / 0.12), 0, 4))
    return CameraMotion(label, pan, tilt, zoom, strength)


def camera_motion(frames: np.ndarray) -> CameraMotion:
    """The camera motion of a clip's sampled frames (uint8 [t, H, W, 3])."""
    return describe_motion(clip_motion_features(frames))


# -- camera motion named in a prompt ---------------------------------------------------------
_SIDE = {"left": "left", "right": "right", "up": "up", "upward": "up", "upwards": "up", "down": "down",
         "downward": "down", "downwards": "down"}
_PROMPT_PATTERNS = [
    # Pika's flag, then free text; the first that matches names the prompt's camera motion
    (r"-camera\s+(pan|tilt|zoom)\s+(left|right|up|down|in|out)\b", None),
    (r"\b(?:camera\s+)?(pan|pans|panning|panned)\s+(?:shot\s+)?(?:to\s+the\s+)?(left|right)\b", "pan"),
    (r"\b(left|right)(?:ward)?\s+pan\b", "pan-rev"),
    (r"\b(?:camera\s+)?(tilt|tilts|tilting|tilted)\s+(up|down|upward|downward|upwards|downwards)\b", "tilt"),
    (r"\b(zoom|zooms|zooming|zoomed|push|pushes|pushing|dolly|dollies|dollying)\s+(in|into|out)\b", "zoom"),
    (r"\b(pull|pulls|pulling)\s+(back|out|away)\b", "pullback"),
    (r"\b(static|still|fixed|locked[- ]off|stationary)\s+(camera|shot)\b|\btripod shot\b", "static"),
]


def camera_in_prompt(prompt: str) -> str | None:
    """The camera motion a prompt asks for, as a :data:`CAMERA_PHRASES` key, or None if it names none."""
    import re

    text = prompt.lower()
    for pattern, kind in _PROMPT_PATTERNS:
        m = re.search(pattern, text)
        if not m:
            continue
        if kind is None:
            verb, way = m.group(1), m.group(2)
            key = {"pan": f"pan_{way}", "tilt": f"tilt_{way}", "zoom": f"zoom_{way}"}[verb]
            return key if key in CAMERA_PHRASES else None
        if kind == "pan":
            return f"pan_{m.group(2)}"
        if kind == "pan-rev":
            return f"pan_{m.group(1)}"
        if kind == "tilt":
            return f"tilt_{_SIDE[m.group(2)]}"
        if kind == "zoom":
            return "zoom_out" if m.group(2) == "out" else "zoom_in"
        if kind == "pullback":
            return "zoom_out"
        return "static"
    return None


def camera_agreement(prompt: str, seen: CameraMotion) -> float:
    """+1 when the prompt asks for the camera motion seen in the clip, -1 when it asks for another
    one, 0 when it names none (most prompts: silence is not evidence)."""
    asked = camera_in_prompt(prompt)
    if asked is None:
        return 0.0
    return 1.0 if asked == seen.label else -1.0
