"""Dual TV-L1 optical flow (Zach et al. 2007) in keras.ops, OpenCV's way.

`flow_ops(first, second)` returns the flow that takes `first` to `second`,
`[..., H, W, 2]` float32 (x, y) in pixels, the convention of
`cv2.optflow.DualTVL1OpticalFlow`, as plain keras.ops to trace: under
TensorFlow inside a SavedModel or a `tf.function`, under JAX on a GPU.
`avlad_tf.flow.tvl1_flow` (in `runner`) is the one-call function, compiled.

The algorithm is OpenCV's (docs/FLOW.md has the walk-through): a pyramid of
the two frames; at each level, coarsest first, `warps` bicubic warps of the
second image, each followed by primal-dual iterations that stop when
sum |u_new - u|^2 <= epsilon^2 * area; the flow is then resized to the next
level and scaled by 1 / scale_step. Three presets name the three families of
flow in use:

- 'release' (the default): OpenCV 2.4's `gpu::OpticalFlowDual_TVL1_GPU`
  with its defaults, which made the release's flow through dense_flow: a
  `pyrDown` pyramid (Gaussian, x0.5), the flow resized by the CUDA kernel
  (no half-pixel offset) and doubled, up to 300 iterations per warp, no
  median, the error summed only on odd iterations once the previous sum
  minus epsilon^2 * area per skipped iteration has dropped below the
  threshold, normalised a = -0.5 bicubic on clamped texels.
- 'opencv': `cv2.optflow.DualTVL1OpticalFlow_create()` with its defaults:
  x0.8 bilinear resizes without pre-smoothing (pixel centres); per warp, up
  to 10 outer iterations that each start with a 5x5 median of the flow,
  then up to 30 inner iterations, the stopping rule checked every
  iteration; Keys a = -0.75 bicubic, 0 outside.
- 'opencv_cuda': OpenCV >= 3's `cv::cuda::OpticalFlowDual_TVL1`: the
  release's iteration, stopping and warp rules on the x0.8 pyramid, resized
  by the CUDA kernel.

Pairs of a batch stop independently: a converged pair's flow is frozen while
the others iterate, so a pair's flow does not depend on its batch. Loops are
`ops.while_loop`s whose predicates stay on the device.
"""

from keras import ops
import numpy as np

from avlad_tf.flow import image_ops
from avlad_tf.flow.parameters import DEFAULT_PRESET
from avlad_tf.flow.parameters import resolve_parameters


def check_frames(first_shape, second_shape):
    """Raises ValueError unless the shapes are two grey frames `[H, W]` or
    batches `[B, H, W]` alike, of a static size of at least 3 x 3."""
    if tuple(first_shape) != tuple(second_shape) or len(first_shape) not in (2, 3):
        raise ValueError(
            "tvl1_flow expects two grey frames of the same shape, [H, W] or "
            f"[B, H, W]. Received: {tuple(first_shape)} and {tuple(second_shape)}"
        )
    size = tuple(first_shape)[-2:]
    if None in size or min(size) < 3:
        raise ValueError(
            f"tvl1_flow needs a static frame size of at least 3x3, got {size}."
        )


def flow_ops(first, second, *, preset=DEFAULT_PRESET, **overrides):
    """TV-L1 flow from `first` to `second`, op by op (to trace or compile).

    Args:
        first, second: grey frames `[H, W]` or `[B, H, W]` (static H, W >= 3),
            uint8 in 0..255 or float in [0, 1] (scaled by 255, as OpenCV
            does for float images).
        preset: a `parameters.PRESETS` name (module docstring).
        **overrides: any `Parameters` field, e.g. `warps=1`.

    Returns:
        `[..., H, W, 2]` float32 flow (x, y) in pixels.
    """
    params = resolve_parameters(preset, **overrides)
    first, second = ops.convert_to_tensor(first), ops.convert_to_tensor(second)
    check_frames(first.shape, second.shape)
    single = len(first.shape) == 2
    if single:
        first, second = first[None], second[None]
    flow = _pyramid_flow(_to_levels(first), _to_levels(second), params)
    return flow[0] if single else flow


def _to_levels(frames):
    """uint8 as is, float x255: OpenCV's `convertTo` before the pyramid."""
    scale = 1.0 if "int" in str(frames.dtype) else 255.0
    return ops.cast(frames, "float32") * scale


def _smaller(size, params):
    """The next pyramid level's (h, w)."""
    if params.pyramid == "pyrdown":
        return image_ops.pyr_down_size(size)
    return image_ops.pyramid_size(size, params.scale_step)


def _pyramid_sizes(size, params):
    """(h, w) of each level, finest first; stops before a side under 16."""
    sizes = [tuple(size)]
    for _ in range(1, params.nscales):
        smaller = _smaller(sizes[-1], params)
        if min(smaller) < 16:
            break
        sizes.append(smaller)
    return sizes


def _down(images, size, params):
    """One pyramid level down: `pyrDown`, or a bilinear resize by scale_step."""
    if params.pyramid == "pyrdown":
        return image_ops.pyr_down(images)
    return image_ops.resize_linear(
        images, size, scale=params.scale_step, rule=params.interpolation
    )


def _pyramid_flow(first, second, params):
    sizes = _pyramid_sizes(first.shape[1:], params)
    firsts, seconds = [first], [second]
    for size in sizes[1:]:
        firsts.append(_down(firsts[-1], size, params))
        seconds.append(_down(seconds[-1], size, params))
    zeros = ops.zeros_like(firsts[-1])
    flow = (zeros, zeros, zeros)  # u1 (x), u2 (y), u3 (illumination, if gamma)
    for level in reversed(range(len(sizes))):
        if level < len(sizes) - 1:
            # Upsample to the finer level; the illumination term is not rescaled.
            u1, u2, u3 = (
                image_ops.resize_linear(u, sizes[level], rule=params.interpolation)
                for u in flow
            )
            flow = (u1 / params.scale_step, u2 / params.scale_step, u3)
        flow = _one_scale(firsts[level], seconds[level], flow, params)
    return ops.stack(flow[:2], axis=-1)  # [B, H, W, 2]


def _one_scale(first, second, flow, params):
    """`warps` warps at one pyramid level; the dual variables start at 0."""
    second_dx, second_dy = image_ops.centered_gradient(second)
    textures = ops.stack([second, second_dx, second_dy], axis=-1)  # [B, H, W, 3]
    zeros = ops.zeros_like(first)
    duals = (zeros,) * 6  # p11, p12, p21, p22, p31, p32

    def warp(_, state):
        flow, duals = state
        data = _linearise(first, textures, flow, params)
        return _iterate(data, flow, duals, params)

    return ops.fori_loop(0, params.warps, warp, (flow, duals))[0]


def _linearise(first, textures, flow, params):
    """Warps I1 and its gradient by the flow: `(I1wx, I1wy, |grad|^2, rho_c)`."""
    u1, u2, _ = flow
    height, width = first.shape[1], first.shape[2]
    grid_y, grid_x = np.meshgrid(
        np.arange(height, dtype=np.float32),
        np.arange(width, dtype=np.float32),
        indexing="ij",
    )
    warped = image_ops.warp_bicubic(
        textures, grid_x + u1, grid_y + u2, rule=params.interpolation
    )
    i1w, i1wx, i1wy = warped[..., 0], warped[..., 1], warped[..., 2]
    grad = i1wx * i1wx + i1wy * i1wy
    rho_c = i1w - i1wx * u1 - i1wy * u2 - first
    return i1wx, i1wy, grad, rho_c


def _iterate(data, flow, duals, params):
    """One warp's primal-dual iterations, stopped per pair.

    Mirrors OpenCV's two loops: each outer iteration starts with a median of
    the flow, then runs inner iterations; a pair stops both loops once its
    error is at most epsilon^2 * area. The CUDA rule has one outer loop and
    sums the error only on odd iterations, and only once the last sum minus
    epsilon^2 * area per skipped iteration has dropped below the threshold.
    """
    i1wx, i1wy, grad, rho_c = data
    threshold = params.epsilon**2 * float(np.prod(i1wx.shape[1:]))
    l_t = params.lambda_ * params.theta
    taut = params.tau / params.theta
    use_gamma = params.gamma != 0.0

    def step(n, flow, duals, active, previous):
        u1, u2, u3 = flow
        rho = rho_c + i1wx * u1 + i1wy * u2
        if use_gamma:
            rho = rho + params.gamma * u3
        # Thresholding: v = u + d, d along the image gradient (scalar per pixel).
        fi = ops.where(
            rho < -l_t * grad,
            l_t,
            ops.where(
                rho > l_t * grad,
                -l_t,
                ops.where(
                    grad > np.finfo(np.float32).eps,
                    -rho / ops.maximum(grad, 1e-30),
                    0.0,
                ),
            ),
        )
        p11, p12, p21, p22, p31, p32 = duals
        new_u1 = u1 + fi * i1wx + params.theta * image_ops.divergence(p11, p12)
        new_u2 = u2 + fi * i1wy + params.theta * image_ops.divergence(p21, p22)
        error = ops.sum(ops.square(new_u1 - u1) + ops.square(new_u2 - u2), axis=(1, 2))
        new_u3 = u3
        if use_gamma:
            new_u3 = (
                u3 + fi * params.gamma + params.theta * image_ops.divergence(p31, p32)
            )
            if not params.sparse_error_check:
                error = error + ops.sum(ops.square(new_u3 - u3), axis=(1, 2))
        new_duals = (
            *_dual_update(new_u1, p11, p12, taut),
            *_dual_update(new_u2, p21, p22, taut),
            *(_dual_update(new_u3, p31, p32, taut) if use_gamma else (p31, p32)),
        )
        keep = active[:, None, None]
        flow = tuple(
            ops.where(keep, new, old)
            for new, old in zip((new_u1, new_u2, new_u3), flow)
        )
        duals = tuple(ops.where(keep, new, old) for new, old in zip(new_duals, duals))
        if params.sparse_error_check:
            checked = (n % 2 == 1) & (previous < threshold)
            if params.epsilon <= 0:  # OpenCV never sums then: all iterations run.
                checked = checked & False
            previous = ops.where(checked, error, previous - threshold)
            error = ops.where(checked, error, np.inf)
        return flow, duals, active & (error > threshold), previous

    def outer(n_outer, flow, duals, active, previous):
        if params.median_filtering > 1:
            keep = active[:, None, None]
            u1, u2, u3 = flow
            flow = (
                ops.where(keep, image_ops.median_blur(u1, params.median_filtering), u1),
                ops.where(keep, image_ops.median_blur(u2, params.median_filtering), u2),
                u3,
            )

        def inner(n_inner, flow, duals, active, previous):
            n = n_inner + n_outer * params.inner_iterations
            return (n_inner + 1, *step(n, flow, duals, active, previous))

        _, flow, duals, active, previous = ops.while_loop(
            lambda n, f, d, active, p: (n < params.inner_iterations) & ops.any(active),
            inner,
            (0, flow, duals, active, previous),
        )
        return n_outer + 1, flow, duals, active, previous

    active = ops.ones_like(rho_c[:, 0, 0], dtype="bool")  # [B]
    previous = ops.zeros_like(rho_c[:, 0, 0])  # [B], the CUDA rule's last sum
    _, flow, duals, _, _ = ops.while_loop(
        lambda n, f, d, active, p: (n < params.outer_iterations) & ops.any(active),
        outer,
        (0, flow, duals, active, previous),
    )
    return flow, duals


def _dual_update(u, p1, p2, taut):
    """Projected dual ascent: p <- (p + taut grad u) / (1 + taut |grad u|)."""
    ux, uy = image_ops.forward_gradient(u)
    norm = 1.0 + taut * ops.sqrt(ux * ux + uy * uy)
    return (p1 + taut * ux) / norm, (p2 + taut * uy) / norm
