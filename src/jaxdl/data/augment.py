"""Image augmentation on the device: random per example, drawn from a key, jit-friendly.

Every transform is ``transform(key, images) -> images`` on a batch (B, H, W, C) (grey
(B, H, W) images are accepted too), with each example drawing from its own key
``fold_in(key, first_index + i)`` (``first_index=0`` unless the batch is a device's slice of
a larger one), so a seed fixes the result and ``jax.jit``/``lax.scan`` compile it
with the training step. ``compose(t1, t2, ...)`` chains them with independent keys.
``Trainer(augment=compose(...))`` applies them to training batches only, inside the
compiled step, with the step's key.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxdl._checks import check_int, check_number

Transform = Callable[[jax.Array, jax.Array], jax.Array]


def _per_example(fn) -> Transform:
    """Lift ``fn(key, image)`` (H, W, C) to a batch, one key per example: row ``i`` draws
    from ``fold_in(key, first_index + i)``, so a batch split over devices (each slice with
    its ``first_index``) gets the draws of the whole batch."""

    def transform(key, images, first_index=0):
        images = jnp.asarray(images)
        grey = images.ndim == 3
        if grey:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(
                f"augmentation: expected images (B, H, W, C) or (B, H, W), got {images.shape}"
            )
        rows = first_index + jnp.arange(images.shape[0])
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(rows)
        out = jax.vmap(fn)(keys, images)
        return out[..., 0] if grey else out

    return transform


def _check_fits(size: int, name: str, image) -> None:
    """A window or shift of ``size`` pixels no larger than the (H, W, C) ``image``."""
    h, w, _ = image.shape
    if size > min(h, w):
        raise ValueError(f"{name}={size} is larger than the {h}x{w} images")


def random_flip(p: float = 0.5) -> Transform:
    """Mirror left-right with probability ``p`` in [0, 1]."""
    p = check_number(p, "p", 0.0, 1.0)

    def flip(key, image):
        return jnp.where(jax.random.bernoulli(key, p), image[:, ::-1], image)

    return _per_example(flip)


def random_translate(max_shift: int, fill: float = 0.0) -> Transform:
    """Shift by up to ``max_shift`` pixels each way, filling the uncovered border with
    ``fill``: a random crop of the image padded by ``max_shift`` (the CIFAR "pad 4, crop").
    ``max_shift``: an int in [0, min(H, W)]; ``fill`` a finite number."""
    return _translate(max_shift, fill, "max_shift")


def _translate(max_shift: int, fill: float, name: str) -> Transform:
    max_shift = check_int(max_shift, name, minimum=0)
    fill = check_number(fill, "fill")

    def translate(key, image):
        _check_fits(max_shift, name, image)
        h, w, _ = image.shape
        padded = jnp.pad(
            image, ((max_shift, max_shift), (max_shift, max_shift), (0, 0)), constant_values=fill
        )
        dy, dx = jax.random.randint(key, (2,), 0, 2 * max_shift + 1)
        return jax.lax.dynamic_slice(padded, (dy, dx, 0), image.shape).reshape(h, w, -1)

    return _per_example(translate)


def random_crop(padding: int = 4, fill: float = 0.0) -> Transform:
    """Pad by ``padding`` (an int in [0, min(H, W)]) and crop back to the original size at a
    random place."""
    return _translate(padding, fill, "padding")


def random_rotation(max_degrees: float, fill: float = 0.0) -> Transform:
    """Rotate about the centre by an angle uniform in ±``max_degrees`` (finite, >= 0),
    bilinear."""
    max_degrees = check_number(max_degrees, "max_degrees", 0.0)
    fill = check_number(fill, "fill")

    def rotate(key, image):
        h, w, c = image.shape
        angle = jax.random.uniform(key, (), minval=-1.0, maxval=1.0) * max_degrees * math.pi / 180
        ys, xs = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")
        cy, cx = (h - 1) / 2, (w - 1) / 2
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        # where each output pixel comes from: the inverse rotation of its coordinates
        src_y = cos * (ys - cy) - sin * (xs - cx) + cy
        src_x = sin * (ys - cy) + cos * (xs - cx) + cx
        sample = lambda channel: jax.scipy.ndimage.map_coordinates(
            channel, [src_y, src_x], order=1, mode="constant", cval=fill
        )
        return jnp.stack([sample(image[..., k]) for k in range(c)], axis=-1)

    return _per_example(rotate)


def gaussian_noise(std: float) -> Transform:
    """Add independent normal noise of standard deviation ``std`` (finite, >= 0) to every
    value."""
    std = check_number(std, "std", 0.0)

    def noise(key, image):
        return image + std * jax.random.normal(key, image.shape, image.dtype)

    return _per_example(noise)


def cutout(size: int, fill: float = 0.0) -> Transform:
    """Set a ``size`` x ``size`` square at a random centre to ``fill`` (clipped at the
    borders), as in DeVries & Taylor (2017). ``size``: an int in [1, min(H, W)]."""
    size = check_int(size, "size")
    fill = check_number(fill, "fill")

    def cut(key, image):
        _check_fits(size, "size", image)
        h, w, _ = image.shape
        cy = jax.random.randint(key, (), 0, h)
        cx = jax.random.randint(jax.random.fold_in(key, 1), (), 0, w)
        ys, xs = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
        low = size // 2
        inside = (
            (ys >= cy - low) & (ys < cy - low + size) & (xs >= cx - low) & (xs < cx - low + size)
        )
        return jnp.where(inside[..., None], jnp.asarray(fill, image.dtype), image)

    return _per_example(cut)


def takes_first_index(transform) -> bool:
    """Whether ``transform`` accepts ``first_index`` (draws per example by position)."""
    try:
        return "first_index" in inspect.signature(transform).parameters
    except (TypeError, ValueError):
        return False


def compose(*transforms: Transform) -> Transform:
    """Apply ``transforms`` in order, each with its own key folded from ``key``."""

    for i, t in enumerate(transforms):
        if not callable(t):
            raise TypeError(
                f"compose: transform {i} must be callable (key, images) -> images, got "
                f"{type(t).__name__}"
            )
    takes_index = [takes_first_index(t) for t in transforms]

    def transform(key, images, first_index=0):
        for i, (t, indexed) in enumerate(zip(transforms, takes_index)):
            extra = {"first_index": first_index} if indexed else {}
            images = t(jax.random.fold_in(key, i), images, **extra)
        return images

    return transform


def resize(images, size: tuple[int, int], method: str = "bilinear") -> jax.Array:
    """Images (B, H, W, C) -> (B, *size, C) with ``jax.image.resize`` (antialiased)."""
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"resize: expected images (B, H, W, C), got {images.shape}")
    if len(tuple(size)) != 2:
        raise ValueError(f"size: expected (height, width), got {size!r}")
    size = tuple(check_int(s, "size") for s in size)
    return jax.image.resize(images, (images.shape[0], *size, images.shape[-1]), method)
