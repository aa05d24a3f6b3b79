"""Compose a small JPEG contact sheet (artifacts/, never committed: its tiles are the shared images) from `mambast.evaluate` contact sheets of the same pairs.

    /usr/bin/python3 contact_sheet.py --tile 128 --out ../artifacts/heldout-contact-sheet.jpg \
        --column content=../artifacts/ab-eval/v050-a/contact_sheet.png:0 ... [--sheets-below ...]

Each --column is LABEL=SHEET[,SHEET...]:INDEX: the INDEX-th tile column of each listed sheet, the
sheets' rows stacked in the order given (e.g. the two halves of the held-out pairs). Tiles are
`--tile` px with the 2 px white gaps `mambast.data.grid` draws. The labels go into a header row.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw


def tiles(sheet_path, index, tile, pad=2):
    a = np.asarray(Image.open(sheet_path).convert("RGB"))
    rows = (a.shape[0] - pad) // (tile + pad)
    x = pad + index * (tile + pad)
    return [a[pad + r * (tile + pad):pad + r * (tile + pad) + tile, x:x + tile] for r in range(rows)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--column", nargs="+", required=True, metavar="LABEL=SHEETS:INDEX")
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--max-rows", type=int, default=0)
    p.add_argument("--quality", type=int, default=80)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    cols, labels = [], []
    for spec in a.column:
        label, _, rest = spec.partition("=")
        sheets, _, index = rest.rpartition(":")
        col = [t for s in sheets.split(",") for t in tiles(s, int(index), a.tile)]
        cols.append(col[:a.max_rows or None])
        labels.append(label)
    n = min(len(c) for c in cols)
    pad, head = 2, 16
    out = Image.new("RGB", (len(cols) * (a.tile + pad) + pad, head + n * (a.tile + pad) + pad), "white")
    draw = ImageDraw.Draw(out)
    for j, (label, col) in enumerate(zip(labels, cols)):
        draw.text((pad + j * (a.tile + pad) + 2, 2), label, fill="black")
        for i in range(n):
            out.paste(Image.fromarray(col[i]), (pad + j * (a.tile + pad), head + pad + i * (a.tile + pad)))
    out.save(a.out, quality=a.quality, optimize=True)
    print(f"{a.out}: {len(cols)} columns x {n} rows")


if __name__ == "__main__":
    main()
