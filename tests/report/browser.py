"""Headless Chromium for the report tests: a DOM with measured plots, a screenshot as pixels.

Chromium runs with a fresh profile and every network path closed (no DNS, an unreachable proxy),
so a page that needed anything from outside would show it missing.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
]
WIDTH = 1100

MEASURE = """<script>
for (const s of document.querySelectorAll('svg.plot')) {
  const r = s.getBoundingClientRect();
  s.setAttribute('data-box', [r.left, r.top + window.scrollY, r.width, r.height]
    .map(Math.round).join(','));
}
document.body.setAttribute('data-page-height', document.documentElement.scrollHeight);
document.body.setAttribute('data-page-width', document.documentElement.scrollWidth);
</script></body>"""


def find_chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(chromium: str, profile: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def measure(chromium: str, page: Path, work: Path) -> tuple[list[tuple[int, ...]], int, str]:
    """Boxes (x, y, w, h) of every svg.plot as laid out, the page height, and the DOM (its body
    carries the page's scroll width as data-page-width)."""
    probe = work / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE))
    dom = _run(
        chromium,
        work / "profile-dom",
        [f"--window-size={WIDTH},1000", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
    ).stdout
    boxes = [tuple(int(v) for v in m.split(",")) for m in re.findall(r'data-box="([^"]+)"', dom)]
    height = int(re.search(r'data-page-height="(\d+)"', dom).group(1))
    return boxes, height, dom


def screenshot(chromium: str, page: Path, work: Path, height: int) -> np.ndarray:
    """The page drawn at WIDTH x height, as an (height, WIDTH, 3) uint8 array."""
    png = work / "shot.png"
    _run(
        chromium,
        work / "profile-shot",
        [f"--window-size={WIDTH},{height}", f"--screenshot={png}", page.as_uri()],
    )
    return decode_png(png.read_bytes())


def decode_png(data: bytes) -> np.ndarray:
    """Pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes), as RGB."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if colour == 2 else 4
    stride = w * bpp
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(h):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel, modulo 256
            row = (
                (np.cumsum(line.reshape(w, bpp).astype(np.int64), axis=0) % 256)
                .astype(np.uint8)
                .reshape(stride)
            )
        elif kind == 2:
            row = line + prior
        else:
            row = _sequential(kind, line.astype(np.int64), prior.astype(np.int64), bpp)
        out[y] = row
        prior = row
    return out.reshape(h, w, bpp)[:, :, :3]


def _sequential(kind: int, line: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """Average (3) and Paeth (4) filters depend on the byte to the left: undo them in order."""
    row = [0] * len(line)
    lst, up = line.tolist(), prior.tolist()
    for i in range(len(lst)):
        a = row[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            row[i] = (lst[i] + (a + b) // 2) & 0xFF
        else:
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            row[i] = (lst[i] + pred) & 0xFF
    return np.array(row, dtype=np.uint8)
