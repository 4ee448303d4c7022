"""A picture of the generator: one row per identity, its master then several impressions."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from pretrain.data.fingerprint.synthetic import FingerprintGenerator


def save_gallery(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    identities: int = 5,
    impressions: int = 4,
    first_identity: int = 0,
    tile: float = 1.6,
) -> Path:
    """Draws ``identities`` masters with ``impressions`` impressions each into a PNG.

    Args:
      path: the PNG to write.
      seed: generator seed.
      identities: rows.
      impressions: impressions per row (after the master).
      first_identity: identity of the first row.
      tile: inches per image (at 100 dpi).

    Returns:
      The path written.
    """
    if identities < 1 or impressions < 0:
        raise ValueError("gallery needs at least one identity and a non-negative impression count.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = FingerprintGenerator(seed=seed, cache_size=1)
    cols = 1 + impressions
    fig, axes = plt.subplots(
        identities, cols, figsize=(tile * cols, tile * identities * 1.08), squeeze=False
    )
    for row in range(identities):
        identity = first_identity + row
        master = gen.master(identity)
        pictures = [master.image()] + [gen.impression(identity, k) for k in range(impressions)]
        for col, picture in enumerate(pictures):
            ax = axes[row, col]
            ax.imshow(picture, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"#{identity} {master.fp_class}" if col == 0 else f"impression {col - 1}"
            ax.set_title(title, fontsize=7, pad=2)
    fig.suptitle(f"synthetic fingerprints (seed {seed}): master, then impressions", fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.97))
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100)
    plt.close(fig)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The figure is gray: one 8-bit channel instead of RGBA keeps the PNG small.
    with Image.open(buffer) as rendered:
        rendered.convert("L").save(out, optimize=True)
    return out
