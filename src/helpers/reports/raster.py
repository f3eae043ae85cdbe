"""Small charts drawn directly into a Pillow image: no figure, artist or layout machinery.

A report with many small panels spends most of its time in matplotlib's generic machinery
(artists, tick objects, text layout, ``savefig``). The drift report's panels are simple (bars,
a few ticks, a title), so they are drawn here straight onto pixels, at ``SCALE`` pixels per CSS
pixel so they stay sharp on high-density screens, with matplotlib's bundled DejaVu Sans and its
tick choice (:class:`matplotlib.ticker.MaxNLocator`). A panel takes a few milliseconds.

* :class:`Canvas` - an image measured in CSS pixels: rectangles, hatched rectangles, lines,
  antialiased polylines with markers, text (also rotated), PNG bytes and a ``data:`` URI;
* :class:`Frame` - a plot area on a canvas mapping data coordinates to pixels, with its axes and
  ticks;
* :func:`nice_ticks`, :func:`blend` and :func:`format_tick` - the small helpers behind them.

Example
-------
>>> canvas = Canvas(200, 100)
>>> frame = Frame(canvas, (40, 10, 190, 80), x=(0.0, 1.0), y=(0.0, 1.0))
>>> canvas.rect(frame.box(0.0, 0.5, 0.0, 0.8), "#1f77b4")
>>> canvas.data_uri()[:22]
'data:image/png;base64,'
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

SCALE = 1.5  # image pixels per CSS pixel
INK, MUTED, AXIS = "#222222", "#777777", "#555555"
FONT_FILE = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
PNG_COMPRESSION = 1  # zlib level: the fastest; flat colours compress well even so
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SMOOTHING = 3  # antialiased lines are drawn this many times larger, then averaged down
Box = tuple[float, float, float, float]  # left, top, right, bottom in CSS pixels


@cache
def font(size: float) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (matplotlib's default font, shipped with it) at ``size`` CSS pixels."""
    return ImageFont.truetype(str(FONT_FILE), round(size * SCALE))


def blend(color: str, alpha: float, under: str = "#ffffff") -> str:
    """``color`` drawn with opacity ``alpha`` over ``under``, as an opaque hex colour."""
    top, bottom = _rgb(color), _rgb(under)
    mixed = (round(alpha * a + (1 - alpha) * b) for a, b in zip(top, bottom, strict=True))
    return "#" + "".join(f"{value:02x}" for value in mixed)


def _rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """At most ``count + 1`` round tick values inside ``[low, high]`` (matplotlib's choice)."""
    if not high > low:
        return [low]
    values = MaxNLocator(count).tick_values(low, high)
    span = high - low
    return [float(v) for v in values if low - 1e-9 * span <= v <= high + 1e-9 * span]


def format_tick(value: float, step: float) -> str:
    """A tick label with as many decimals as the tick step needs (``2.5``, ``10``, ``1e+06``)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.3g}"
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6 * 10**decimals:
        decimals += 1
    return f"{value:.{decimals}f}"


@lru_cache(maxsize=512)
def turned_text(text: str, size: float, anchor: str, angle: float) -> Image.Image:
    """A square mask of ``text`` turned by ``angle`` degrees about its anchor, which sits at the
    centre (kept: the same category labels come back on many panels)."""
    face = font(size)
    left, top, right, bottom = face.getbbox(text, anchor=anchor)  # relative to the anchor point
    reach = math.ceil(math.hypot(max(-left, right), max(-top, bottom))) + 2
    stamp = Image.new("L", (2 * reach, 2 * reach), 0)
    ImageDraw.Draw(stamp).text((reach, reach), text, fill=255, font=face, anchor=anchor)
    return stamp.rotate(angle, resample=Image.Resampling.BICUBIC, center=(reach, reach))


class Canvas:
    """A white image measured in CSS pixels (drawn at ``SCALE`` image pixels per CSS pixel)."""

    def __init__(self, width: float, height: float) -> None:
        self.width, self.height = width, height
        self.image = Image.new("RGB", (round(width * SCALE), round(height * SCALE)), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.frames: list[Frame] = []  # the plot areas drawn on it, in order (where the data sits)

    def rect(self, box: Box, fill: str, outline: str | None = None) -> None:
        """A filled rectangle (``box`` in CSS pixels; empty boxes are skipped)."""
        left, top, right, bottom = (round(v * SCALE) for v in box)
        if right - left < 1 or bottom - top < 1:
            return
        self.draw.rectangle((left, top, right - 1, bottom - 1), fill=fill, outline=outline, width=1)

    def hatch(self, box: Box, color: str, spacing: float = 5.0) -> None:
        """Diagonal lines (rising to the right) across ``box``, like matplotlib's ``//`` hatch."""
        left, top, right, bottom = (v * SCALE for v in box)
        width, height, step = right - left, bottom - top, spacing * SCALE
        if width < 1 or height < 1:
            return
        offset = -height
        while offset < width:
            start, stop = max(0.0, -offset), min(height, width - offset)
            if stop > start:
                self.draw.line(
                    (left + offset + start, bottom - start, left + offset + stop, bottom - stop), fill=color, width=1
                )
            offset += step

    def line(self, points: Sequence[tuple[float, float]], color: str, width: float = 1.0) -> None:
        """A polyline through ``points`` (CSS pixels)."""
        scaled = [(x * SCALE, y * SCALE) for x, y in points]
        self.draw.line(scaled, fill=color, width=max(1, round(width * SCALE)), joint="curve")

    def smooth_lines(self, lines: Sequence[tuple[Sequence[tuple[float, float]], str]], width: float = 1.2,
                     marker: float = 0.0) -> None:
        """Antialiased polylines (each ``(points, colour)``, CSS pixels), with round markers of
        radius ``marker`` at their points: drawn ``SMOOTHING`` times larger and averaged down."""
        if not lines:
            return
        big = (self.image.width * SMOOTHING, self.image.height * SMOOTHING)
        paint, cover = Image.new("RGB", big, "black"), Image.new("L", big, 0)
        pen, mask = ImageDraw.Draw(paint), ImageDraw.Draw(cover)
        factor = SCALE * SMOOTHING
        for points, color in lines:
            scaled = [(x * factor, y * factor) for x, y in points]
            for draw, fill in ((pen, color), (mask, 255)):
                if len(scaled) > 1:
                    draw.line(scaled, fill=fill, width=max(1, round(width * factor)), joint="curve")
                radius = marker * factor
                for x, y in scaled if radius else ():
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
        # ``paint`` holds colour x coverage (black where empty): composite over the image exactly
        alpha = np.asarray(cover.reduce(SMOOTHING), dtype=np.float32)[..., None] / 255.0
        colour = np.asarray(paint.reduce(SMOOTHING), dtype=np.float32)  # already times coverage
        below = np.asarray(self.image, dtype=np.float32)
        mixed = below * (1.0 - alpha) + colour
        self.image.paste(Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8)))

    def text(self, xy: tuple[float, float], text: str, size: float = 10, color: str = INK, anchor: str = "la",
             angle: float = 0) -> None:
        """``text`` at ``xy`` (CSS pixels) with a Pillow ``anchor`` (``la`` left-ascender, ``mm`` middle,
        ``rm`` right-middle...); ``angle`` in degrees turns it counter-clockwise about its anchor."""
        x, y = xy[0] * SCALE, xy[1] * SCALE
        face = font(size)
        if not angle:
            self.draw.text((x, y), text, fill=color, font=face, anchor=anchor)
            return
        turned = turned_text(text, size, anchor, angle)
        reach = turned.width // 2
        self.image.paste(color, (round(x) - reach, round(y) - reach, round(x) + reach, round(y) + reach), turned)

    def text_width(self, text: str, size: float = 10) -> float:
        """Width of ``text`` in CSS pixels."""
        return self.draw.textlength(text, font=font(size)) / SCALE

    def png(self) -> bytes:
        """The image as PNG bytes (see :func:`png_bytes`)."""
        return png_bytes(self.image)

    def data_uri(self) -> str:
        """The image as a ``data:image/png;base64,`` URI for a self-contained page."""
        return "data:image/png;base64," + base64.b64encode(self.png()).decode("ascii")


class Frame:
    """A plot area of a canvas: ``area`` (CSS pixels) shows data ranges ``x`` and ``y``."""

    def __init__(self, canvas: Canvas, area: Box, x: tuple[float, float], y: tuple[float, float]) -> None:
        self.canvas, self.area = canvas, area
        canvas.frames.append(self)
        self.x_range = x if x[1] > x[0] else (x[0] - 0.5, x[0] + 0.5)
        self.y_range = y if y[1] > y[0] else (y[0], y[0] + 1.0)

    def px(self, value: float) -> float:
        """Horizontal CSS pixel of data value ``value``."""
        (low, high), (left, _, right, _) = self.x_range, self.area
        return left + (value - low) / (high - low) * (right - left)

    def py(self, value: float) -> float:
        """Vertical CSS pixel of data value ``value`` (up is larger)."""
        (low, high), (_, top, _, bottom) = self.y_range, self.area
        return bottom - (value - low) / (high - low) * (bottom - top)

    def box(self, x0: float, x1: float, y0: float, y1: float) -> Box:
        """The canvas box of the data rectangle ``[x0, x1] x [y0, y1]``."""
        return self.px(x0), self.py(y1), self.px(x1), self.py(y0)

    def axes(self) -> None:
        """The left and bottom axis lines."""
        left, top, right, bottom = self.area
        self.canvas.line([(left, top), (left, bottom), (right, bottom)], AXIS, width=0.8)

    def y_ticks(self, values: Sequence[float], labels: Sequence[str], size: float = 9) -> None:
        """Ticks and labels on the left axis."""
        left = self.area[0]
        for value, label in zip(values, labels, strict=True):
            y = self.py(value)
            self.canvas.line([(left - 3, y), (left, y)], AXIS, width=0.8)
            self.canvas.text((left - 5, y), label, size=size, color=AXIS, anchor="rm")

    def x_ticks(self, values: Sequence[float], labels: Sequence[str], size: float = 9, angle: float = 0) -> None:
        """Ticks and labels under the bottom axis (turned by ``angle`` degrees, right-aligned)."""
        bottom = self.area[3]
        for value, label in zip(values, labels, strict=True):
            x = self.px(value)
            self.canvas.line([(x, bottom), (x, bottom + 3)], AXIS, width=0.8)
            if angle:
                self.canvas.text((x + 2, bottom + 8), label, size=size, color=AXIS, anchor="rm", angle=angle)
            else:
                self.canvas.text((x, bottom + 5), label, size=size, color=AXIS, anchor="mt")


def png_bytes(image: Image.Image, level: int = PNG_COMPRESSION) -> bytes:
    """An RGB image as a PNG file, encoded with numpy and zlib.

    Every row but the first uses PNG's "Up" filter (the byte-wise difference with the row
    above), which turns the flat colours of a chart into zeros; one numpy subtraction does it,
    where Pillow's encoder tries its filters row by row, at about twice the cost. ``zlib``
    releases the GIL, so images can be encoded in threads.
    """
    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[0, 0], filtered[1:, 0] = 0, 2  # filter types: None for the first row, Up below
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    return b"".join([PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)), _png_chunk(b"IEND", b"")])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
