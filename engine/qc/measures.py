"""The measurements behind the QC gates, as small pure functions on small frames.

Everything here works on frames already reduced to analysis size (long side ≈ 256), so each call costs well
under a millisecond or two; `QCAccumulator` strings them together per frame while a clip streams past.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Distance between flow samples fed to the robust global-motion fit, in analysis pixels.
GRID_STEP = 8
#: Width of the edge band left out of the global-motion fit, as a share of the short side.
BORDER_SHARE = 0.08
#: Share of the largest flow magnitudes averaged for dynamic degree (VBench: top 5 %).
TOP_SHARE = 0.05


def analysis_factor(height: int, width: int, analysis_side: int) -> int:
    """Integer downscale factor so the long side fits `analysis_side` (integer factors hit OpenCV's fast path)."""
    return max(1, math.ceil(max(height, width) / analysis_side))


#: Rows of each factor x factor block that `downscale` reads when the factor is even and ≥ 4 (all columns are
#: read). OpenCV's integer area resize costs ≈ 1.5 ms for a 1080p RGB frame (scalar code, ∝ pixels read); two rows
#: per block cost a third of that (≈ 0.5 ms); every label and margin, and the beat-hit rates of real renders, stay
#: as they were (measured at 1080p, docs/qc.md "Speed"). One row per block aliased too much.
ROWS_PER_BLOCK = 2


def downscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Average `frame` over factor x factor blocks (cropping the remainder rows/columns, at most factor-1).

    For even factors ≥ 4 each block's average is taken over `ROWS_PER_BLOCK` evenly spaced rows (its full width):
    a strided row view costs OpenCV no copy, and the area resize then reads a fraction of the frame.
    """
    if factor == 1:
        return np.ascontiguousarray(frame)
    height, width = frame.shape[:2]
    out_h, out_w = height // factor, width // factor
    cropped = frame[: out_h * factor, : out_w * factor]
    if factor >= 4 and factor % ROWS_PER_BLOCK == 0:
        step = factor // ROWS_PER_BLOCK
        cropped = cropped[(step - 1) // 2 :: step]  # rows centred in their share of the block
    return cv2.resize(cropped, (out_w, out_h), interpolation=cv2.INTER_AREA)


def cover_fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop `image` to the aspect of (height, width) and resize to it (how a still fills a frame)."""
    src_h, src_w = image.shape[:2]
    scale = max(width / src_w, height / src_h)
    crop_w = min(src_w, max(1, round(width / scale)))
    crop_h = min(src_h, max(1, round(height / scale)))
    x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    crop = image[y0 : y0 + crop_h, x0 : x0 + crop_w]
    interpolation = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=interpolation)


def make_flow(fast: bool = False) -> cv2.DISOpticalFlow:
    """DIS optical flow at ≈256 px: 'fast' preset (≈0.8 ms a pair, accurate enough to fit camera motion and
    register frames) or, with fast=True, 'ultrafast' (≈0.25 ms, enough for the per-frame motion energy)."""
    preset = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST if fast else cv2.DISOPTICAL_FLOW_PRESET_FAST
    return cv2.DISOpticalFlow_create(preset)


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    return cv2.magnitude(flow[..., 0], flow[..., 1])


def gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the lightly blurred frame, in levels/px x 8 (Sobel 3x3 gain)."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    return cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3))


#: The textured pixels must cover at least this share of the frame to be used (else every pixel is). Was 10 %:
#: a flat illustration (clip art: uniform fills, black outlines) has ≈ 5 % textured pixels, so its camera fit fell
#: back to every pixel, including the fills, where DIS interpolates a guess; the share of a zoom or rotation on it
#: read 0.3-0.5 (dev seeds 67, 107, 147).
MIN_TEXTURE_SHARE = 0.03


def texture_mask(gray: np.ndarray, min_gradient: float = 6.0, gradient: np.ndarray | None = None) -> np.ndarray | None:
    """Pixels with enough local contrast for flow to be trusted, or None when too few have it.

    Flow in flat areas (skin, sky) is ill-posed, and that is where encoder and sensor noise shows up as
    "motion"; leaving those pixels out lowers the noise floor without hiding real motion, which moves edges.
    """
    gradient = gradient_magnitude(gray) if gradient is None else gradient
    mask = gradient >= min_gradient * 8  # Sobel 3x3 gain is 8
    return mask if np.count_nonzero(mask) >= MIN_TEXTURE_SHARE * mask.size else None


def top_mean(magnitude: np.ndarray, share: float = TOP_SHARE, mask: np.ndarray | None = None) -> float:
    """Mean of the largest `share` of the values (VBench's dynamic-degree statistic), inside `mask` if given."""
    flat = magnitude[mask] if mask is not None else magnitude.ravel()
    count = max(1, int(flat.size * share))
    return float(np.partition(flat, flat.size - count)[flat.size - count :].mean())


#: Share of the frame whose coherent motion counts for the region-aware frozen measure: half the smallest
#: region that makes a clip dynamic (2 %, docs/qc.md "Generated set"), so that region alone fills it.
REGION_SHARE = 0.01
#: Width of the window over which flow vectors are averaged before taking magnitudes, as a share of the short
#: side: a region moving one way keeps its flow, encoder and sensor noise (flow pointing every which way) cancels.
COHERENCE_SHARE = 0.04


def structure_mask(gradient: np.ndarray, min_gradient: float = 3.0, top_share: float = 0.3) -> np.ndarray:
    """The pixels whose flow can be trusted for the region measure (from `gradient_magnitude`): the `top_share`
    most contrasted ones, and never flatter than `min_gradient` levels/px. Relative, so a defocused or
    flat-shaded picture keeps its soft edges; absolute floor, so the noise of a flat sky never counts."""
    rank = int(gradient.size * (1 - top_share))
    cut = float(np.partition(gradient.ravel(), rank)[rank])
    return gradient >= max(min_gradient * 8, cut)  # Sobel 3x3 gain is 8


def region_motion(flow: np.ndarray, mask: np.ndarray | None = None, share: float = REGION_SHARE) -> float:
    """Mean magnitude of the largest `share` (of the frame) of the locally averaged flow, over `mask`: how fast
    the fastest coherent region of that size moves (px of the flow's frame). Noise, pointing every which way,
    cancels in the average; a region of ≥ `share` of the frame moving one way keeps its speed, however still
    the rest of the frame is."""
    height, width = flow.shape[:2]
    size = max(3, round(COHERENCE_SHARE * min(height, width)) | 1)
    magnitude = flow_magnitude(cv2.blur(flow, (size, size)))
    values = magnitude[mask] if mask is not None else magnitude.ravel()
    target = max(1, int(magnitude.size * share))
    count = min(values.size, target)
    if count == 0:
        return 0.0
    # pixels missing from `share` of the frame count as still: a mask of 20 pixels is not a 1-% region (round 5)
    return float(np.partition(values, values.size - count)[values.size - count :].sum()) / target


def explained_by_flow(first: np.ndarray, second: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray],
                      share: float = 0.3, floor: float = 2.0,
                      gain: float = 1.0) -> tuple[np.ndarray, float]:
    """Where warping `second` back along `flow` removes at least `share` of the difference to `first` (and at
    least `floor` levels, and at least `NOISE_FLOOR` x the frame's median residual after warping, all locally
    averaged): there the flow is a displacement of the picture. Flow that explains nothing (flicker through the
    codec's blocks, noise in flat areas) is not motion; flow that fits part of the sensor noise removes a little
    of a difference that is everywhere, which the noise-relative floor rejects (real motion removes a difference
    far above the residual noise).

    Also returns the share of the frame whose locally averaged difference is at least `VISIBLE_LEVELS` levels of
    the original picture (`gain` is the contrast stretch applied to both frames): a change a viewer sees,
    whether or not the flow explains it."""
    height, width = first.shape
    size = max(3, round(COHERENCE_SHARE * min(height, width)) | 1)
    xs, ys = grid
    warped = cv2.remap(second, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    before = cv2.blur(cv2.absdiff(first, second).astype(np.float32), (size, size))
    after = cv2.blur(cv2.absdiff(first, warped).astype(np.float32), (size, size))
    noise = NOISE_FLOOR * float(np.median(after[::4, ::4]))  # every 16th pixel: the same median, 16x cheaper
    visible = np.count_nonzero(before >= VISIBLE_LEVELS * max(1.0, gain)) / before.size
    return (before - after) >= np.maximum(max(floor, noise), share * before), visible


#: A sampled pair also moves when at least `QCThresholds.min_visible_change` of the frame changes by this many
#: levels (locally averaged over the coherence window, original contrast, second frame brightness-matched):
#: the flow of a blink or a fast small part can miss what is plainly visible (round 5, docs/qc.md).
VISIBLE_LEVELS = 8.0


#: The change a flow must remove is also ≥ this many times the median residual after warping (the pair's noise
#: level after the flow has done what it can): noise that the flow partly fits does not count as motion.
NOISE_FLOOR = 2.0


def match_brightness(reference: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """`gray` shifted to the mean luminance of `reference`: flicker breaks DIS's brightness constancy and reads
    as motion in low-contrast areas; a uniform offset removes it and changes nothing for real motion."""
    offset = float(cv2.mean(reference)[0] - cv2.mean(gray)[0])
    if abs(offset) < 0.25:
        return gray
    return cv2.add(gray, offset) if offset > 0 else cv2.subtract(gray, -offset)


#: Contrast (standard deviation of the luminance, levels) the sampled pairs are stretched to before their flow,
#: and the largest stretch: see `normalise_contrast`.
CONTRAST_TARGET, MAX_CONTRAST_GAIN = 48.0, 2.0


def contrast_gain(gray: np.ndarray, target: float = CONTRAST_TARGET, max_gain: float = MAX_CONTRAST_GAIN) -> float:
    """The gain that brings `gray`'s luminance spread to `target` (never below 1, never above `max_gain`)."""
    _, std = cv2.meanStdDev(gray)
    return float(np.clip(target / max(float(std[0, 0]), 1e-3), 1.0, max_gain))


def normalise_contrast(gray: np.ndarray, gain: float, mean: float) -> np.ndarray:
    """`gray` stretched by `gain` around `mean` (one gain and mean for both frames of a pair). A defocused or
    washed-out picture has gradients of ≈ 1 level/px: DIS then finds no minimum worth the name, and every
    level-based floor (structure, explained change) sits above what its real motion changes; stretched, the same
    floors hold relative to the picture's contrast. Noise is stretched too, so the gain is capped."""
    if gain <= 1.0:
        return gray
    return cv2.convertScaleAbs(gray, alpha=gain, beta=128.0 - gain * mean)


IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float64)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 transform p -> outer(inner(p))."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


@dataclass
class GlobalFit:
    """One similarity transform (2x3) explaining a flow field, and how much of the flow energy it explains."""

    matrix: np.ndarray
    explained: float  # 1 - residual energy / total energy, in [0, 1]
    total_energy: float  # mean squared flow magnitude (px²)
    valid: bool


class GridSampler:
    """Sample a flow field on a regular grid and evaluate a transform's flow on the full field, for one size."""

    def __init__(self, height: int, width: int, step: int = GRID_STEP) -> None:
        # A band along the edges is left out: there the picture enters or leaves the frame (any zoom or pan),
        # nothing matches, and the flow is a guess that would read as motion no transform explains.
        border = max(4, round(BORDER_SHARE * min(height, width)))
        ys, xs = np.mgrid[border:height - border:step, border:width - border:step]
        self.rows, self.cols = ys.ravel(), xs.ravel()
        self.points = np.stack([self.cols, self.rows], axis=1).astype(np.float32)
        self.sub_rows = slice(border, height - border, 4)
        self.sub_cols = slice(border, width - border, 4)
        self.sub_x, self.sub_y = np.meshgrid(np.arange(width, dtype=np.float32)[self.sub_cols],
                                             np.arange(height, dtype=np.float32)[self.sub_rows])
        self.height, self.width = height, width
        self.half_diagonal = 0.5 * math.hypot(width, height)

    def fit(self, flow: np.ndarray, reproj_threshold: float = 0.5, texture: np.ndarray | None = None) -> GlobalFit:
        """Fit a similarity (pan, zoom, rotation) to the flow robustly (RANSAC) and measure what it explains.

        The explained share is measured on every 4th pixel each way inside the edge band (the same number to two decimals, 16x less
        work), and only where `texture` says the flow can be trusted, when given: in flat areas DIS fills in
        smooth guesses that neither the camera nor the subject made.
        """
        points, rows, cols = self.points, self.rows, self.cols
        if texture is not None:
            keep = texture[rows, cols]
            if np.count_nonzero(keep) >= max(12, MIN_TEXTURE_SHARE * keep.size):
                points, rows, cols = points[keep], rows[keep], cols[keep]
        sub = flow[self.sub_rows, self.sub_cols]
        total_all = float(np.mean(sub[..., 0] ** 2 + sub[..., 1] ** 2)) if sub.size else 0.0
        if points.shape[0] < 6:  # nothing to fit on (a frame only a few grid steps wide)
            return GlobalFit(IDENTITY.copy(), 0.0, total_all, False)
        moved = points + flow[rows, cols]
        matrix, inliers = cv2.estimateAffinePartial2D(
            points, moved, method=cv2.RANSAC, ransacReprojThreshold=reproj_threshold, maxIters=200,
            confidence=0.99, refineIters=10,
        )
        xs, ys = self.sub_x, self.sub_y
        if texture is not None:
            weight = texture[self.sub_rows, self.sub_cols]
            if np.count_nonzero(weight) >= MIN_TEXTURE_SHARE * weight.size:
                sub, xs, ys = sub[weight], xs[weight], ys[weight]
        total = float(np.mean(sub[..., 0] ** 2 + sub[..., 1] ** 2))
        if matrix is None or inliers is None or int(inliers.sum()) < max(6, points.shape[0] // 20):
            return GlobalFit(IDENTITY.copy(), 0.0, total, False)
        model_u = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] - xs
        model_v = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] - ys
        residual = float(np.mean((sub[..., 0] - model_u) ** 2 + (sub[..., 1] - model_v) ** 2))
        explained = 0.0 if total <= 0 else max(0.0, 1.0 - residual / total)
        return GlobalFit(matrix, explained, total, True)

    def fit_matrix(self, flow: np.ndarray) -> np.ndarray:
        """Only the robust similarity of `flow` (what the per-frame camera motion needs), identity when none fits."""
        points = self.points
        if points.shape[0] < 6:
            return IDENTITY.copy()
        moved = points + flow[self.rows, self.cols]
        matrix, inliers = cv2.estimateAffinePartial2D(
            points, moved, method=cv2.RANSAC, ransacReprojThreshold=0.5, maxIters=200, confidence=0.99,
            refineIters=10,
        )
        if matrix is None or inliers is None or int(inliers.sum()) < max(6, points.shape[0] // 20):
            return IDENTITY.copy()
        return matrix

    def motion_vector(self, matrix: np.ndarray) -> np.ndarray:
        """A transform as (pan x, pan y, zoom, rotation), all in pixels at the frame's corners."""
        scale = math.hypot(matrix[0, 0], matrix[1, 0])
        angle = math.atan2(matrix[1, 0], matrix[0, 0])
        cx, cy = self.width / 2, self.height / 2
        centre_x = matrix[0, 0] * cx + matrix[0, 1] * cy + matrix[0, 2] - cx
        centre_y = matrix[1, 0] * cx + matrix[1, 1] * cy + matrix[1, 2] - cy
        return np.array([centre_x, centre_y, (scale - 1) * self.half_diagonal, angle * self.half_diagonal])


#: Lab histogram bins: a and b of natural images rarely leave [64, 192), so finer bins there see tints that a
#: 0..256 range would miss. A second grid is offset by half a bin: a hard grid hides a shift that stays inside
#: one bin (a warm grade of a greyscale photo moves a/b by ≈ 12, less than the 16-wide bin), so the colour
#: distance is the larger over the two grids (round 3; dev drift errors 9 -> 7 of 598).
_LAB_BINS = ([8, 8, 8], [0, 256, 64, 192, 64, 192])
_LAB_BINS_OFFSET = ([8, 8, 8], [0, 256, 56, 184, 56, 184])
#: A grid is left out for an anchor when at least this share of its pixels has a or b within 1 level of one of
#: the grid's bin edges (round 4): there sensor noise splits the mass between two bins and reads as a colour
#: change (the greyscale photo, a = b = 128 on the first grid's edge: σ 6 noise read 0.62, dev 275), while the
#: other grid has the same pixels in a bin's middle. Spread-out colours put ≈ 10-40 % of pixels there by chance,
#: the flat illustration 70 %, the darkened star field 88 %; at 0.6 those two lost a grade each on dev (504).
EDGE_CROWDED_SHARE = 0.9


def _lab_edge_share(lab: np.ndarray, bins: tuple[list[int], list[int]]) -> float:
    """Share of pixels whose a or b lies within 1 level of a bin edge of this grid's a/b axes."""
    low, high, count = bins[1][2], bins[1][3], bins[0][1]
    width = (high - low) // count
    offset = (lab[..., 1:].astype(np.int16) - low) % width
    return float(np.count_nonzero(((offset <= 1) | (offset >= width - 1)).any(axis=2))) / offset[..., 0].size


def colour_grids(anchor_lab: np.ndarray) -> tuple:
    """The Lab histogram grids the colour distance takes the larger over, for this anchor (see EDGE_CROWDED_SHARE)."""
    grids = tuple(bins for bins in (_LAB_BINS, _LAB_BINS_OFFSET)
                  if _lab_edge_share(anchor_lab, bins) < EDGE_CROWDED_SHARE)
    return grids or (_LAB_BINS, _LAB_BINS_OFFSET)


@dataclass
class DriftParts:
    """How far a frame is from an anchor (first frame or reference) once the camera motion is undone."""

    colour: float  # Hellinger distance of Lab histograms over the shared area, 0..1
    structure: float  # 1 - median block correlation of the aligned luminance, 0..2 (clipped to 0..1)
    overlap: float  # share of the anchor still visible in the frame

    @property
    def value(self) -> float:
        return max(self.colour, self.structure)


class DriftMeter:
    """Compares frames with one anchor image after undoing the global motion between them.

    Why this shape: a zoom or pan changes which pixels are visible, not what they look like, so the frame is
    warped back onto the anchor and only the area both show is compared. Local motion (a waving hand) moves a
    few blocks; the structure term takes the median over blocks so it ignores them, while a change of colour
    grading or of the subject moves the histogram or most blocks.

    Registration is chained: each call starts from the previous call's transform, so the flow only has to
    find the motion since then, and a long pan (far beyond what one flow can match) stays registered.
    """

    BLOCKS = (6, 8)  # rows, columns of the structure grid
    #: Blocks flatter than this (luminance standard deviation, 8-bit levels) carry no structure to compare.
    MIN_BLOCK_STD = 4.0

    def __init__(self, anchor_rgb: np.ndarray, sampler: GridSampler, flow: cv2.DISOpticalFlow) -> None:
        self.sampler = sampler
        self.flow = flow
        self.anchor_gray = cv2.cvtColor(anchor_rgb, cv2.COLOR_RGB2GRAY)
        self.anchor_lab = cv2.cvtColor(anchor_rgb, cv2.COLOR_RGB2LAB)
        self._grids = colour_grids(self.anchor_lab)
        self.anchor_blocks = self._blocks(self.anchor_gray)
        self._ones = np.full(anchor_rgb.shape[:2], 255, np.uint8)
        self.matrix = IDENTITY.copy()  # anchor -> latest frame
        self._orb: cv2.ORB | None = None  # made on the first re-check (see measure)
        self._anchor_features: tuple = ((), None)

    #: Above this drift the chained flow registration is checked against one made from scratch by matched
    #: features (see `_feature_matrix`); the better-aligned of the two is kept.
    RECHECK_DRIFT = 0.3

    def measure(self, frame_rgb: np.ndarray, frame_gray: np.ndarray) -> DriftParts:
        matrix = self._refine(self.matrix, frame_gray)
        parts = self._compare(frame_rgb, matrix)
        if parts.value > self.RECHECK_DRIFT:
            # A fast rotation or a big jump from the anchor (the reference still vs the first frame of a fast
            # move) is beyond what one flow can match: the registration is lost and an unchanged picture reads
            # as drifted (the star field rotating at 3.8 px/frame read 0.79). Features match at any angle.
            start = self._feature_matrix(frame_gray)
            if start is not None:
                candidate = self._refine(start, frame_gray)
                candidate_parts = self._compare(frame_rgb, candidate)
                if candidate_parts.value < parts.value:
                    matrix, parts = candidate, candidate_parts
        self.matrix = matrix
        return parts

    def _refine(self, start: np.ndarray, frame_gray: np.ndarray) -> np.ndarray:
        """`start` (anchor -> frame) corrected by the flow between the anchor and the frame warped back by it."""
        height, width = self.anchor_gray.shape
        prewarped = cv2.warpAffine(frame_gray, start, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
        fit = self.sampler.fit(self.flow.calc(self.anchor_gray, prewarped, None), reproj_threshold=1.0)
        return compose(start, fit.matrix) if fit.valid else start

    def _feature_matrix(self, frame_gray: np.ndarray) -> np.ndarray | None:
        """Anchor -> frame similarity from matched ORB features (RANSAC), None when too few agree."""
        if self._orb is None:
            self._orb = cv2.ORB_create(500, edgeThreshold=8, patchSize=15, fastThreshold=5)
            self._anchor_features = self._orb.detectAndCompute(self.anchor_gray, None)
        anchor_points, anchor_descriptors = self._anchor_features
        points, descriptors = self._orb.detectAndCompute(frame_gray, None)
        if anchor_descriptors is None or descriptors is None:
            return None
        matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(anchor_descriptors, descriptors)
        if len(matches) < 12:
            return None
        source = np.float32([anchor_points[m.queryIdx].pt for m in matches])
        target = np.float32([points[m.trainIdx].pt for m in matches])
        matrix, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=2.0)
        if matrix is None or inliers is None or int(inliers.sum()) < max(12, len(matches) // 4):
            return None
        return matrix

    def _compare(self, frame_rgb: np.ndarray, matrix: np.ndarray) -> DriftParts:
        """Colour and structure distance of the frame, warped back onto the anchor by `matrix`, over the shared area."""
        height, width = self.anchor_gray.shape
        inverse = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        aligned = cv2.warpAffine(frame_rgb, matrix, (width, height), flags=inverse, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(self._ones, matrix, (width, height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
        mask = cv2.erode(mask, np.ones((5, 5), np.uint8))
        overlap = float(np.count_nonzero(mask)) / mask.size
        if overlap < 0.05:  # nothing shared (registration lost): compare whole frames
            mask, aligned = self._ones, frame_rgb
        frame_lab = cv2.cvtColor(aligned, cv2.COLOR_RGB2LAB)
        colour = max(float(cv2.compareHist(cv2.calcHist([self.anchor_lab], [0, 1, 2], mask, *bins),
                                           cv2.calcHist([frame_lab], [0, 1, 2], mask, *bins),
                                           cv2.HISTCMP_BHATTACHARYYA))
                     for bins in self._grids)
        structure = self._structure(cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY), mask)
        return DriftParts(colour=colour, structure=structure, overlap=overlap)

    def _blocks(self, gray: np.ndarray) -> np.ndarray:
        """Blurred luminance cut into BLOCKS, as (blocks, pixels per block) float32."""
        rows, cols = self.BLOCKS
        height, width = gray.shape
        bh, bw = height // rows, width // cols
        smooth = cv2.GaussianBlur(gray, (0, 0), 1.5).astype(np.float32)[: bh * rows, : bw * cols]
        return smooth.reshape(rows, bh, cols, bw).transpose(0, 2, 1, 3).reshape(rows * cols, bh * bw)

    def _structure(self, aligned_gray: np.ndarray, mask: np.ndarray) -> float:
        """1 - median correlation of corresponding textured blocks inside the shared area (0 = same picture)."""
        blocks = self._blocks(aligned_gray)
        inside = self._blocks(mask).min(axis=1) >= 250
        a = self.anchor_blocks - self.anchor_blocks.mean(axis=1, keepdims=True)
        b = blocks - blocks.mean(axis=1, keepdims=True)
        energy_a, energy_b = (a * a).sum(axis=1), (b * b).sum(axis=1)
        floor = self.MIN_BLOCK_STD**2 * a.shape[1]
        usable = inside & (energy_a >= floor) & (energy_b >= floor)
        if int(usable.sum()) < 4:
            return 0.0
        correlation = (a * b).sum(axis=1)[usable] / np.sqrt(energy_a[usable] * energy_b[usable])
        return float(min(1.0, max(0.0, 1.0 - float(np.median(correlation)))))


def local_maxima(curve: np.ndarray, floor: float = 0.0, min_prominence: float = 0.0) -> np.ndarray:
    """Indices i (1..n-2) with curve[i-1] < curve[i] > curve[i+1] (TempoTokens' video peaks), at least `floor`
    high and standing at least `min_prominence` above the higher of the troughs either side."""
    if curve.size < 3:
        return np.zeros(0, dtype=int)
    middle = curve[1:-1]
    is_peak = (middle > curve[:-2]) & (middle > curve[2:]) & (middle >= floor)
    peaks = np.flatnonzero(is_peak) + 1
    if min_prominence > 0 and peaks.size:
        peaks = np.array([p for p in peaks if prominence(curve, int(p)) >= min_prominence], dtype=int)
    return peaks


def prominence(curve: np.ndarray, peak: int) -> float:
    """How far `peak` stands above the higher of its two bases (the lowest points between it and the nearest
    higher sample on each side, or the curve's end): the usual topographic prominence."""
    value = curve[peak]
    higher_left = np.flatnonzero(curve[:peak] > value)
    left = curve[(higher_left[-1] + 1 if higher_left.size else 0) : peak + 1].min()
    higher_right = np.flatnonzero(curve[peak + 1 :] > value)
    right = curve[peak : (peak + 1 + higher_right[0]) if higher_right.size else curve.size].min()
    return float(value - max(left, right))


def av_align(audio_peaks: np.ndarray, video_peaks: np.ndarray, fps: float) -> float | None:
    """AV-Align (TempoTokens, Yariv et al. 2024): IoU of audio onset peaks and video motion peaks.

    An audio peak is matched when a video peak lies strictly within one frame of it; the score is
    matched / (|audio| + |video| - matched). None when there is nothing to compare.
    """
    audio_peaks = np.asarray(audio_peaks, dtype=float)
    video_peaks = np.asarray(video_peaks, dtype=float)
    if audio_peaks.size + video_peaks.size == 0:
        return None
    tolerance = 1.0 / fps
    matched = 0
    for peak in audio_peaks:
        if video_peaks.size and np.any(np.abs(video_peaks - peak) < tolerance):
            matched += 1
    return matched / (audio_peaks.size + video_peaks.size - matched)


def beat_alignment_score(beat_frames: np.ndarray, peak_frames: np.ndarray, sigma: float = 3.0) -> float | None:
    """Beat Alignment Score (music-to-dance literature, e.g. Li et al. 2021 "AI Choreographer"): the mean over
    music beats of exp(-d² / 2σ²), d = frames from the beat to the nearest motion peak; σ in frames (σ² = 9
    frames² by default). 0 when the clip has beats but no motion peak; None without beats."""
    beat_frames = np.asarray(beat_frames, dtype=float).ravel()
    peak_frames = np.asarray(peak_frames, dtype=float).ravel()
    if beat_frames.size == 0:
        return None
    if peak_frames.size == 0:
        return 0.0
    distance = np.min(np.abs(beat_frames[:, None] - peak_frames[None, :]), axis=1)
    return float(np.mean(np.exp(-(distance**2) / (2 * sigma**2))))


def beat_hits(energy: np.ndarray, beat_frames: np.ndarray, floor: float, contrast: float) -> np.ndarray:
    """For each beat frame, whether the motion-energy peak of its neighbourhood lies within ±1 frame of it.

    The neighbourhood is half the median beat spacing on each side (at least 2 frames), so each beat is judged
    against its own stretch of the clip. A peak must be real motion: at least `floor` and `contrast` times the
    neighbourhood's median, so steady motion (a constant pan) does not count as hitting every beat.
    """
    n = energy.size
    if beat_frames.size == 0:
        return np.zeros(0, dtype=bool)
    spacing = float(np.median(np.diff(beat_frames))) if beat_frames.size > 1 else 8.0
    half = max(2, int(spacing // 2))
    hits = np.zeros(beat_frames.size, dtype=bool)
    for i, frame in enumerate(beat_frames):
        lo, hi = max(1, frame - half), min(n, frame + half + 1)
        window = energy[lo:hi]
        if window.size == 0:
            continue
        peak = lo + int(np.argmax(window))
        peak_value = float(energy[peak])
        hits[i] = (abs(peak - frame) <= 1 and peak_value >= floor
                   and peak_value >= contrast * float(np.median(window)))
    return hits
