"""Render attributes as frames, the way one "generator" would.

Design constraint: motion direction is recoverable only from frame *order*. Every
directed motion (left/right, up/down, grow/shrink, pan left/right, zoom in/out) visits the
same set of states as its opposite, in reverse, so the mean over frames cannot tell them
apart and a temporal model can be distinguished from mean pooling.

Generators differ as real ones do: resolution, frame rate and count, sensor-like noise,
blur, colour cast and frame-to-frame flicker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOUR_RGB = {
    "red": (225, 40, 40), "green": (40, 185, 60), "blue": (45, 85, 235), "yellow": (245, 220, 40),
    "purple": (150, 60, 205), "orange": (250, 140, 25), "cyan": (20, 205, 220), "white": (245, 245, 245),
}


@dataclass(frozen=True)
class GeneratorProfile:
    """How one synthetic text-to-video model renders: its size, timing and artefacts."""

    name: str  # archive member prefix, as VidProM's pika / vc2 / t2vz / ms
    height: int
    width: int
    fps: int
    frames: tuple[int, int]  # min, max frame count
    noise: float  # std of additive noise, in 0..255 units
    blur: int  # passes of a 3x3 box filter (0 = sharp)
    cast: tuple[float, float, float]  # per-channel gain
    flicker: float  # std of per-frame brightness gain


GENERATORS: dict[str, GeneratorProfile] = {
    "pika": GeneratorProfile("pika", 288, 512, 24, (24, 32), 1.5, 0, (0.97, 1.0, 1.06), 0.0),
    "vc2": GeneratorProfile("vc2", 320, 512, 10, (16, 16), 2.0, 1, (1.06, 1.0, 0.92), 0.0),
    "ms": GeneratorProfile("ms", 256, 256, 8, (16, 16), 4.0, 1, (1.0, 1.02, 1.0), 0.0),
    "t2vz": GeneratorProfile("t2vz", 512, 512, 8, (8, 8), 1.0, 0, (1.0, 0.96, 1.04), 0.06),
}
DEFAULT_GENERATORS = ("pika", "vc2", "ms")


def _blur(img: np.ndarray, passes: int) -> np.ndarray:
    """``passes`` rounds of a 3x3 box filter on float32 HxWxC (close to a Gaussian for 2+ passes)."""
    for _ in range(passes):
        p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
        v = p[:-2] + p[1:-1] + p[2:]
        img = (v[:, :-2] + v[:, 1:-1] + v[:, 2:]) * np.float32(1 / 9)
    return img


def _shape_mask(shape: str, size: int, angle: float) -> np.ndarray:
    """Anti-aliased-free boolean mask of one shape in a size x size box, rotated by ``angle``."""
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xx - c) / (size / 2.0), (yy - c) / (size / 2.0)
    if angle:
        ca, sa = np.cos(angle), np.sin(angle)
        x, y = ca * x + sa * y, -sa * x + ca * y
    if shape == "circle":
        return x * x + y * y <= 0.85
    if shape == "square":
        return (np.abs(x) <= 0.68) & (np.abs(y) <= 0.68)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= 0.92
    if shape == "cross":
        return ((np.abs(x) <= 0.25) & (np.abs(y) <= 0.9)) | ((np.abs(y) <= 0.25) & (np.abs(x) <= 0.9))
    if shape == "triangle":
        # apex at the top (y = -0.9), base at y = 0.7, half-width 0.85 at the base
        return (y <= 0.7) & (np.abs(x) <= (y + 0.9) / 1.6 * 0.85)
    if shape == "star":
        r = np.sqrt(x * x + y * y)
        theta = np.arctan2(y, x)
        return r <= 0.45 + 0.45 * (0.5 + 0.5 * np.cos(5 * theta))
    raise ValueError(f"unknown shape {shape!r}")


def _scene(scene: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Static background, float32 HxWx3 in 0..255 (animated parts are drawn per frame)."""
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = np.empty((h, w, 3), np.float32)
    if scene == "sky":
        top, bottom = np.array([70, 130, 215], np.float32), np.array([200, 225, 245], np.float32)
        img[:] = top + (bottom - top) * ys
        for _ in range(3):  # soft clouds
            cy, cx = rng.uniform(0.1, 0.6) * h, rng.uniform(0, 1) * w
            ry, rx = 0.06 * h, rng.uniform(0.1, 0.2) * w
            yy, xx = np.ogrid[0:h, 0:w]
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            img[m] = img[m] * 0.3 + 245 * 0.7
    elif scene == "ocean":
        img[:] = np.array([150, 195, 235], np.float32)
        img[int(h * 0.4):] = np.array([20, 70, 140], np.float32)
    elif scene == "desert":
        img[:] = np.array([140, 190, 235], np.float32)
        xs = np.arange(w, dtype=np.float32)
        horizon = (0.45 + 0.06 * np.sin(xs / w * 2 * np.pi * rng.uniform(1, 2.5) + rng.uniform(0, 6))) * h
        sand = np.arange(h)[:, None] >= horizon[None, :]
        img[sand] = np.array([215, 180, 120], np.float32)
    elif scene == "grass":
        img[:] = np.array([130, 185, 240], np.float32)
        g = int(h * 0.3)
        tex = rng.normal(0, 14, size=(h - g, w, 1)).astype(np.float32)
        img[g:] = np.array([55, 150, 55], np.float32) + tex
    elif scene == "night":
        img[:] = np.array([10, 15, 45], np.float32)
        n = max(20, h * w // 900)
        sy, sx = rng.integers(0, h, n), rng.integers(0, w, n)
        img[sy, sx] = 255.0
    elif scene == "snow":
        img[:] = np.array([120, 130, 150], np.float32) + 40 * ys
    elif scene == "solid":
        img[:] = np.array(_pick_muted(rng), np.float32)
    elif scene == "stripes":
        a, b = np.array(_pick_muted(rng), np.float32), np.array(_pick_muted(rng), np.float32) * 0.6
        period = rng.integers(max(8, w // 12), max(9, w // 6))
        xs = np.arange(w)[None, :] + np.arange(h)[:, None] * rng.choice([0, 1])
        img[:] = np.where(((xs // period) % 2 == 0)[..., None], a, b)
    else:
        raise ValueError(f"unknown scene {scene!r}")
    return np.clip(img, 0, 255)


def _pick_muted(rng: np.random.Generator) -> tuple[int, int, int]:
    palette = [(128, 128, 128), (190, 175, 150), (60, 60, 70), (90, 120, 110), (170, 150, 170), (110, 90, 70)]
    return palette[int(rng.integers(len(palette)))]


def _animate_scene(frame: np.ndarray, scene: str, t: float, seed_state: dict) -> None:
    """Draw the moving parts of a scene into ``frame`` at time t in [0, 1]."""
    h, w = frame.shape[:2]
    if scene == "ocean":
        top = int(h * 0.4)
        xs = np.arange(w, dtype=np.float32)
        rows = np.arange(top, h, max(3, h // 40))
        phase = seed_state["phase"] + 2 * np.pi * t
        for i, r in enumerate(rows):
            amp = 2 + i % 3
            ys = np.clip(r + amp * np.sin(xs / w * 12 + phase + i), 0, h - 1).astype(int)
            frame[ys, np.arange(w)] = (200, 225, 245)
    elif scene == "snow":
        fy, fx = seed_state["flakes"]
        ys = ((fy + t * 0.8) % 1.0 * (h - 2)).astype(int)
        xs = (fx * (w - 2)).astype(int)
        for dy in (0, 1):
            for dx in (0, 1):
                frame[ys + dy, xs + dx] = 250.0


def _positions(action: str, count: int, n: int, rng: np.random.Generator):
    """Per-frame centres (y, x in 0..1), sizes (fraction of the short side) and angles."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    size0 = rng.uniform(0.16, 0.24) / (1 + 0.25 * (count - 1))
    span = rng.uniform(0.35, 0.5)
    cy, cx = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65)
    ys = np.full(n, cy, np.float32)
    xs = np.full(n, cx, np.float32)
    sizes = np.full(n, size0, np.float32)
    angles = np.zeros(n, np.float32) + rng.uniform(0, 2 * np.pi) * (action == "rotating")
    ramp = t - 0.5  # symmetric about the middle frame: opposite motions share their states
    if action == "moving left":
        xs = cx - span * ramp
    elif action == "moving right":
        xs = cx + span * ramp
    elif action == "moving up":
        ys = cy - span * ramp
    elif action == "moving down":
        ys = cy + span * ramp
    elif action == "growing":
        sizes = size0 * (1.0 + 1.2 * ramp)
    elif action == "shrinking":
        sizes = size0 * (1.0 - 1.2 * ramp)
    elif action == "rotating":
        angles = angles + 2 * np.pi * t * rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)
    elif action == "bouncing":
        ys = cy + 0.2 - 0.4 * np.abs(np.sin(np.pi * t * rng.choice([2, 3])))
    # several objects move together, spread across the axis they do not move along
    spread = np.linspace(-1, 1, count) * 0.22 if count > 1 else np.zeros(1)
    vertical_motion = action in ("moving up", "moving down", "bouncing")
    out = []
    for k in range(count):
        oy = ys if vertical_motion else ys + spread[k] * 0.8
        ox = xs + spread[k] if vertical_motion else xs
        out.append((oy, ox))
    return out, sizes, angles


def _camera(frame: np.ndarray, camera: str, t: float, strength: float) -> np.ndarray:
    """Pan or zoom the composed frame. Opposite moves visit the same crops in reverse."""
    if camera == "static":
        return frame
    h, w = frame.shape[:2]
    ramp = t - 0.5
    if camera in ("zoom in", "zoom out"):
        z = ramp if camera == "zoom in" else -ramp
        scale = 1.0 / (1.0 + strength * (z + 0.5))  # 1 .. 1/(1+strength)
        ch, cw = max(2, int(h * scale)), max(2, int(w * scale))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        yi = y0 + (np.arange(h) * ch // h)
        xi = x0 + (np.arange(w) * cw // w)
        return frame[yi][:, xi]
    shift = int(round((ramp if camera == "pan left" else -ramp) * strength * w))
    return np.roll(frame, shift, axis=1)  # pan left: the world slides right


def _style(frame: np.ndarray, style: str) -> np.ndarray:
    if style == "none":
        return frame
    if style == "black and white":
        g = frame @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.repeat(g[..., None], 3, axis=2)
    if style == "pixel art":
        h, w = frame.shape[:2]
        b = max(4, min(h, w) // 24)
        small = np.round(frame[::b, ::b] / 64.0) * 64.0  # ceil(h/b) cells: repeats cover the frame
        return np.repeat(np.repeat(small, b, axis=0), b, axis=1)[:h, :w]
    if style == "blurry":  # average-pool by 4, upsample, soften the blocks: a cheap wide blur
        h, w = frame.shape[:2]
        hh, ww = h // 4 * 4, w // 4 * 4
        small = frame[:hh, :ww].reshape(hh // 4, 4, ww // 4, 4, 3).mean(axis=(1, 3))
        big = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
        big = np.pad(big, ((0, h - hh), (0, w - ww), (0, 0)), mode="edge")
        return _blur(big, 2)
    if style == "high contrast":
        return (frame - 128.0) * 2.2 + 128.0
    if style == "neon":
        g = frame.mean(axis=2, keepdims=True)
        sat = np.clip(g + (frame - g) * 2.5, 0.0, 255.0)
        return sat * sat * np.float32(1.3 / 255.0)  # gamma 2: dark background, glowing colours
    raise ValueError(f"unknown style {style!r}")


def render_frames(attrs: dict, profile: GeneratorProfile, rng: np.random.Generator) -> np.ndarray:
    """Frames uint8 [T, H, W, 3] for one prompt's attributes as ``profile`` would render them."""
    h, w = profile.height, profile.width
    lo, hi = profile.frames
    n = int(rng.integers(lo, hi + 1))
    cast = np.array(profile.cast, np.float32)
    base = _scene(attrs["scene"], h, w, rng) * cast  # the cast is a per-channel gain: apply it once
    state = {"phase": rng.uniform(0, 2 * np.pi), "flakes": (rng.random(max(30, h * w // 1500)),
                                                            rng.random(max(30, h * w // 1500)))}
    centres, sizes, angles = _positions(attrs["action"], attrs["count"], n, rng)
    colour = np.array(COLOUR_RGB[attrs["colour"]], np.float32) * cast
    cam_strength = rng.uniform(0.25, 0.4)
    short = min(h, w)
    # a few noise planes reused with random offsets: per-frame Gaussian draws dominate the cost
    noise_bank = (rng.standard_normal((4, h, w, 1), dtype=np.float32) * np.float32(profile.noise)
                  if profile.noise else None)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        t = i / max(1, n - 1)
        frame = base.copy()
        _animate_scene(frame, attrs["scene"], t, state)
        px = max(6, int(sizes[i] * short * 2))
        mask = _shape_mask(attrs["shape"], px, float(angles[i]))
        for oy, ox in centres:
            y0, x0 = int(oy[i] * h) - px // 2, int(ox[i] * w) - px // 2
            ys0, xs0 = max(0, y0), max(0, x0)
            ys1, xs1 = min(h, y0 + px), min(w, x0 + px)
            if ys1 <= ys0 or xs1 <= xs0:
                continue
            m = mask[ys0 - y0: ys1 - y0, xs0 - x0: xs1 - x0]
            frame[ys0:ys1, xs0:xs1][m] = colour
        frame = _camera(frame, attrs["camera"], t, cam_strength)
        frame = _style(frame, attrs["style"])
        frame = _blur(frame, profile.blur)
        if profile.flicker:
            frame = frame * (1.0 + rng.normal(0, profile.flicker))
        if noise_bank is not None:
            frame += noise_bank[i % len(noise_bank)]
        out[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return out
