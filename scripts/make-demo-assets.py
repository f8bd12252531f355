#!/usr/bin/env python3
"""Reproduce the real-data demo atlases in assets/demos/ (development time only).

Each atlas is one PNG of 28×28 tiles, 20 tiles a row, class-major (class 0's tiles
first, then class 1's …), the same number per class; src/data/real_demos.rs decodes them.

  fashion-source.png  Fashion-MNIST training images, 10 per class (gray)
  fashion-target.png  Fashion-MNIST test images, 50 per class (gray)
  mnist-source.png    MNIST training digits, 40 per class (gray)
  mnistm-target.png   other MNIST digits (from its test set), 30 per class, blended into
                      crops of CC0 / public-domain photos: |photo − digit| per channel, the
                      MNIST-M recipe of Ganin & Lempitsky's DANN paper (RGB)

Sources (credited in assets/NOTICE.md):
  - Debian's `dataset-fashion-mnist` (Expat, Copyright 2017 Zalando SE):
    `apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb fm`
  - MNIST (CC BY-SA 3.0, LeCun, Cortes, Burges) as PNG folders `{train,test}/<digit>/*.png`
    (../shared/datasets/mnist here)
  - scikit-image's wheel (`pip download scikit-image --no-deps`, unzip `skimage/data/*`):
    the colour photos whose `_fetchers.py` entries say CC0 or
    public domain (see PHOTOS below)

Usage: python scripts/make-demo-assets.py FASHION_DIR MNIST_DIR SKIMAGE_DATA_DIR
(FASHION_DIR holds the four idx .gz files; needs numpy and pillow.)
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

SIDE = 28
COLUMNS = 20
SEED = 16
# scikit-image photos and what its _fetchers.py says of their licence.
PHOTOS = {
    "coffee.png": "CC0 (Rachel Michetti)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "astronaut.png": "public domain (NASA)",
    "rocket.jpg": "public domain (SpaceX)",
    "brick.png": "CC0 (CC0Textures)",
    "grass.png": "CC0 (CC0Textures)",
    "gravel.png": "CC0 (CC0Textures)",
}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def pick(labels, per_class, rng):
    """Indices, class-major, `per_class` of each class 0..9 (seeded)."""
    out = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        out.extend(rng.choice(idx, per_class, replace=False))
    return out


def atlas(tiles, path):
    n = len(tiles)
    rows = (n + COLUMNS - 1) // COLUMNS
    shape = (rows * SIDE, COLUMNS * SIDE) + tiles[0].shape[2:]
    img = np.zeros(shape, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, COLUMNS)
        img[r * SIDE:(r + 1) * SIDE, c * SIDE:(c + 1) * SIDE] = t
    Image.fromarray(img).save(path, optimize=True)
    print(f"{path}: {n} tiles, {os.path.getsize(path)} bytes")


def mnist_folder(root, split, per_class, rng):
    tiles = []
    for d in range(10):
        folder = os.path.join(root, split, str(d))
        files = sorted(os.listdir(folder))
        for f in rng.choice(files, per_class, replace=False):
            tiles.append(np.asarray(Image.open(os.path.join(folder, f)).convert("L")))
    return tiles


def photo_crop(photos, rng):
    """A random 28×28 crop of a photo shrunk by a random factor (so crops hold structure)."""
    p = photos[rng.integers(len(photos))]
    scale = rng.uniform(0.08, 0.3)
    w, h = max(SIDE, int(p.width * scale)), max(SIDE, int(p.height * scale))
    small = np.asarray(p.resize((w, h), Image.BILINEAR), np.int16)
    x, y = rng.integers(0, w - SIDE + 1), rng.integers(0, h - SIDE + 1)
    return small[y:y + SIDE, x:x + SIDE]


def main():
    fashion, mnist, skdata = sys.argv[1:4]
    out = os.path.join(os.path.dirname(__file__), "..", "assets", "demos")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)

    for split, name, per_class in [("train", "source", 10), ("t10k", "target", 50)]:
        x = read_idx(os.path.join(fashion, f"{split}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(fashion, f"{split}-labels-idx1-ubyte.gz"))
        atlas([x[i] for i in pick(y, per_class, rng)], os.path.join(out, f"fashion-{name}.png"))

    atlas(mnist_folder(mnist, "train", 40, rng), os.path.join(out, "mnist-source.png"))
    photos = [Image.open(os.path.join(skdata, f)).convert("RGB") for f in PHOTOS]
    blended = []
    for digit in mnist_folder(mnist, "test", 30, rng):
        crop = photo_crop(photos, rng)
        blended.append(np.abs(crop - digit[:, :, None].astype(np.int16)).astype(np.uint8))
    atlas(blended, os.path.join(out, "mnistm-target.png"))


if __name__ == "__main__":
    main()
