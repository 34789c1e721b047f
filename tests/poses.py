"""Hand-made body poses for the pose rules' tests: a stick figure (COCO 17 keypoints) posed over time.

A figure is posed from a few physical parameters (hip-centre position, body height H, torso angle
from vertical, torso foreshortening, arm and leg angles) as functions of time and sampled by
timestamps at a given rate (optionally with irregular gaps), with small seeded keypoint noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.types import Track


@dataclass
class Pose:
    x: float  # hip centre x (pixels)
    y: float  # hip centre y
    H: float = 300.0  # standing body height (pixels)
    torso_deg: float = 0.0  # torso angle from vertical, + leans to the figure's facing side
    torso_scale: float = 1.0  # < 1: torso foreshortened (lying along the camera axis)
    arm_l: tuple[float, float] = (10.0, 10.0)  # (shoulder, elbow) deg from the torso axis, pointing down
    arm_r: tuple[float, float] = (10.0, 10.0)
    leg_l: tuple[float, float] = (0.0, 0.0)  # (hip, knee) deg from the torso axis continued downwards
    leg_r: tuple[float, float] = (0.0, 0.0)
    legs_follow_torso: bool = False  # lying: legs along the torso line (else legs hang vertically)
    facing: int = 1  # +1 faces right (arm/leg angles open to the right), -1 faces left


def _dir(deg: float) -> np.ndarray:
    """Unit vector 'down' rotated by deg (image coords: y down). deg>0 rotates towards +x."""
    r = np.radians(deg)
    return np.array([np.sin(r), np.cos(r)])


def keypoints(p: Pose) -> np.ndarray:
    H, f = p.H, p.facing
    hip = np.array([p.x, p.y])
    up = -_dir(f * p.torso_deg)  # hip -> shoulder direction
    across = np.array([-up[1], up[0]])  # perpendicular: shoulder / hip width axis
    sh = hip + up * 0.30 * H * p.torso_scale
    k = np.zeros((17, 3))
    head = sh + up * 0.12 * H * max(p.torso_scale, 0.4)
    k[0, :2] = head
    k[1, :2], k[2, :2] = head + across * 0.02 * H - up * 0.01 * H, head - across * 0.02 * H - up * 0.01 * H
    k[3, :2], k[4, :2] = head + across * 0.045 * H, head - across * 0.045 * H
    shoulders = (sh + across * 0.10 * H, sh - across * 0.10 * H)
    hips = (hip + across * 0.07 * H, hip - across * 0.07 * H)
    k[5, :2], k[6, :2] = shoulders
    k[11, :2], k[12, :2] = hips
    torso_down_deg = f * p.torso_deg  # the torso axis pointing down, as a _dir angle
    for (s_i, e_i, w_i), (a_sh, a_el) in (((5, 7, 9), p.arm_l), ((6, 8, 10), p.arm_r)):
        d1 = _dir(torso_down_deg + f * a_sh)
        e = k[s_i, :2] + d1 * 0.17 * H
        d2 = _dir(torso_down_deg + f * (a_sh + a_el))
        k[e_i, :2], k[w_i, :2] = e, e + d2 * 0.15 * H
    leg_base = torso_down_deg if p.legs_follow_torso else 0.0
    for (h_i, k_i, a_i), (a_h, a_k) in (((11, 13, 15), p.leg_l), ((12, 14, 16), p.leg_r)):
        d1 = _dir(leg_base + f * a_h)
        kn = k[h_i, :2] + d1 * 0.24 * H
        d2 = _dir(leg_base + f * (a_h - a_k))
        k[k_i, :2], k[a_i, :2] = kn, kn + d2 * 0.24 * H
    k[:, 2] = 0.9
    return k


def observe(tid: int, p: Pose, t: float, rng: np.random.Generator, noise: float = 0.008) -> Track:
    """A person's track seen at `t` in pose `p`: keypoints with a little noise, the box around them."""
    k = keypoints(p)
    k[:, :2] += rng.normal(0, noise * p.H, (17, 2))
    lo, hi = k[:, :2].min(0), k[:, :2].max(0)
    pad = 0.04 * p.H
    box = (float(lo[0] - pad), float(lo[1] - pad), float(hi[0] + pad), float(hi[1] + pad))
    return Track(tid, "person", box, 0.9, 0.0, t, round(t * 30), keypoints=k.astype(np.float32))


def times(duration: float, fps: float, jitter: float = 0.0, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    while t <= duration + 1e-9:
        out.append(round(t, 4))
        t += 1.0 / fps + (rng.uniform(0, jitter) if jitter else 0.0)
    return out


def ramp(t: float, t0: float, t1: float) -> float:
    """0 before t0, 1 after t1, smooth (cosine) in between."""
    if t <= t0:
        return 0.0
    if t >= t1:
        return 1.0
    return 0.5 - 0.5 * np.cos(np.pi * (t - t0) / (t1 - t0))


FLOOR = 600.0  # feet y when standing
H = 300.0
STAND_HIP = FLOOR - 0.48 * H


def standing(x: float, **kw) -> Pose:
    return Pose(x, STAND_HIP, H, **kw)


# ------------------------------------------------------------------------------------ fall cases

def fall_sideways(t: float) -> list[Pose]:
    """Standing 2 s, falls sideways in 0.6 s (accelerating), lies still."""
    a = ramp(t, 2.0, 2.6) ** 1.5
    return [Pose(300 + 60 * a, STAND_HIP + a * (FLOOR - 0.05 * H - STAND_HIP), H, torso_deg=88 * a,
                 legs_follow_torso=a > 0.5, leg_l=(0, 0), leg_r=(0, 0), arm_l=(10 + 60 * a, 10), arm_r=(10, 10))]


def fall_towards_camera(t: float) -> list[Pose]:
    """Backward/forward fall along the camera axis: torso stays vertical in the image but is
    foreshortened to 30 %, hips drop to the floor (like GMDCSA s1_fall_13/14)."""
    a = ramp(t, 2.0, 2.7)
    return [Pose(300, STAND_HIP + a * (FLOOR - 0.05 * H - STAND_HIP), H, torso_deg=10 * a,
                 torso_scale=1 - 0.7 * a, leg_l=(70 * a, 0), leg_r=(60 * a, 0))]


def lie_down_slowly(t: float) -> list[Pose]:
    """Sits on a bed edge (1.5 s), then lies back over 3 s: slow, from bed height."""
    sit = ramp(t, 1.0, 2.5)
    lie = ramp(t, 2.5, 5.5)
    bed_hip = FLOOR - 0.28 * H
    return [Pose(300 - 40 * lie, STAND_HIP + sit * (bed_hip - STAND_HIP), H, torso_deg=-85 * lie,
                 leg_l=(-80 * sit * (1 - lie), -80 * sit * (1 - lie)), leg_r=(-80 * sit * (1 - lie), -80 * sit * (1 - lie)),
                 legs_follow_torso=lie > 0.6)]


def sit_down(t: float) -> list[Pose]:
    """Sits down on a chair quickly (0.8 s) and stays seated."""
    a = ramp(t, 2.0, 2.8)
    lean = np.sin(np.pi * a) * 25
    return [Pose(300 - 20 * a, STAND_HIP + a * 0.22 * H, H, torso_deg=lean,
                 leg_l=(80 * a, 80 * a), leg_r=(80 * a, 80 * a))]


def bend_pick_up(t: float) -> list[Pose]:
    """Bends from the hips to pick something up (torso horizontal 1.5 s), stands up again."""
    a = ramp(t, 2.0, 2.7) - ramp(t, 4.2, 5.0)
    return [Pose(300 - 15 * a, STAND_HIP + 0.03 * H * a, H, torso_deg=90 * a, arm_l=(10 - 5 * a, 0), arm_r=(10, 0))]


def squat_pick_up(t: float) -> list[Pose]:
    """Fast squat (0.5 s) to pick something up, 1.5 s down, stands up."""
    a = ramp(t, 2.0, 2.5) - ramp(t, 4.0, 4.6)
    return [Pose(300, STAND_HIP + 0.30 * H * a, H, torso_deg=35 * a, leg_l=(100 * a, 120 * a), leg_r=(100 * a, 120 * a))]


# ----------------------------------------------------------------------------------- fight cases

def punch_exchange(t: float) -> list[Pose]:
    """Two people 0.45 H apart throw punches at irregular times (about 3 per second each),
    bobbing and stepping; punches extend the arm towards the other in ~0.15 s."""
    poses = []
    for who, (x0, f, seed) in enumerate(((300, 1, 1), (300 + 0.45 * H, -1, 2))):
        rng = np.random.default_rng(seed)
        starts = np.cumsum(rng.uniform(0.22, 0.45, 40))
        ext = 0.0
        arm = 0
        for i, s0 in enumerate(starts):
            if s0 <= t < s0 + 0.3:
                ph = (t - s0) / 0.3
                ext, arm = np.sin(np.pi * ph), i % 2
        bob = 0.03 * H * np.sin(2 * np.pi * 1.7 * t + who)
        step = 0.05 * H * np.sin(2 * np.pi * 0.9 * t + 2 * who)
        punch = (90 * ext + 20, -80 * (1 - ext))  # shoulder raised towards the other, elbow straightens
        guard = (40, -110)
        poses.append(Pose(x0 + f * step, STAND_HIP + bob, H, torso_deg=10 + 10 * ext, facing=f,
                          arm_l=punch if arm == 0 else guard, arm_r=punch if arm == 1 else guard,
                          leg_l=(15, 10), leg_r=(-10, 5)))
    return poses


def walking_past(t: float) -> list[Pose]:
    """Two people walk past each other (1.3 m/s, 2 steps/s), crossing at t = 2 s."""
    poses = []
    for who, (x0, v) in enumerate(((100, 0.75 * H), (100 + 3.0 * H, -0.75 * H))):
        ph = 2 * np.pi * 1.0 * t + np.pi * who
        sw = 25 * np.sin(ph)
        poses.append(Pose(x0 + v * t, STAND_HIP + (12 if who else 0), H, facing=1 if v > 0 else -1,
                          leg_l=(sw, max(0, 20 * np.sin(ph + 1))), leg_r=(-sw, max(0, -20 * np.sin(ph + 1))),
                          arm_l=(-15 * np.sin(ph), 10), arm_r=(15 * np.sin(ph), 10)))
    return poses


def hug(t: float) -> list[Pose]:
    """Two people step together and hug, swaying slowly (0.5 Hz)."""
    a = ramp(t, 0.5, 1.5)
    sway = 4 * np.sin(2 * np.pi * 0.5 * t)
    gap = 0.9 * H * (1 - a) + 0.22 * H * a
    arms = (10 + 80 * a, -40 * a)
    return [Pose(300, STAND_HIP, H, torso_deg=sway + 8 * a, arm_l=arms, arm_r=arms),
            Pose(300 + gap, STAND_HIP, H, torso_deg=sway + 8 * a, facing=-1, arm_l=arms, arm_r=arms)]


def group_talking(t: float) -> list[Pose]:
    """Three people stand close and talk, one gestures with an arm (moderate, 1 Hz)."""
    g = 30 * np.sin(2 * np.pi * 1.0 * t)
    return [standing(300), standing(300 + 0.35 * H, facing=-1, arm_r=(40 + g, -40)), standing(300 + 0.7 * H, facing=-1)]


SCENARIOS: dict[str, tuple[Callable[[float], list[Pose]], float, str, bool]] = {
    # name: (poses(t), duration, rule type, expected alarm)
    "fall sideways": (fall_sideways, 6.0, "fall", True),
    "fall towards camera": (fall_towards_camera, 6.0, "fall", True),
    "lie down slowly (bed)": (lie_down_slowly, 8.0, "fall", False),
    "sit down on a chair": (sit_down, 6.0, "fall", False),
    "bend to pick up": (bend_pick_up, 7.0, "fall", False),
    "fast squat to pick up": (squat_pick_up, 7.0, "fall", False),
    "punch exchange": (punch_exchange, 3.0, "fight", True),
    "walking past": (walking_past, 4.0, "fight", False),
    "hug": (hug, 4.0, "fight", False),
    "group talking": (group_talking, 4.0, "fight", False),
}


def sequence(name: str, fps: float, jitter: float = 0.0, seed: int = 0) -> list[tuple[float, list[Track]]]:
    """A scenario's (time, tracks seen) frames at `fps`, gaps stretched by up to `jitter` seconds."""
    poses, duration, _, _ = SCENARIOS[name]
    rng = np.random.default_rng(100 + seed)
    return [(t, [observe(i + 1, p, t, rng) for i, p in enumerate(poses(t))]) for t in times(duration, fps, jitter, seed)]


RATES = ((10.0, 0.0), (5.0, 0.0), (3.0, 0.15))  # fps, and up to this much extra gap: 10, 5 and ~3 fps irregular
