"""Poster rendering speed: cold (never rendered: compose + encode + store) and warm (a content-address hit),
next to a baseline measured in the same run: Pillow opening the bare photo background and saving it as JPEG.

Run: python -m bench.bench_posters [--cold N] [--warm N]
Targets on the 2-core machine: cold < 30 ms per poster (about 6x the baseline), warm < 1 ms."""
from __future__ import annotations

import argparse
import hashlib
import io
import random
import statistics
import tempfile
import time

from PIL import Image, ImageDraw

from posters import PosterInputs, QRPayload, get_or_render, parse_spec
from posters.samples import REFERENCE_SPEC, photo_like_background
from posters.store import LocalDiskStore

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "小明华丽芳静敏强军伟洋勇艳杰娟涛超秀英玲桂兰"


def _avatar(rng: random.Random, size: int = 640) -> bytes:
    """A WeChat-sized (640 px) JPEG avatar, different per partner."""
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randrange(20, 160)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _timed(fn, n: int) -> list[float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return times


def _row(name: str, times: list[float], baseline_ms: float | None) -> str:
    ms = statistics.median(times) * 1000
    rate = len(times) / sum(times)
    ratio = f"{ms / baseline_ms:6.2f}x" if baseline_ms else "   1.00x"
    return f"{name:<34} {rate:>10.1f} {ms:>11.3f} {ratio:>9}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=120)
    parser.add_argument("--warm", type=int, default=2000)
    args = parser.parse_args(argv)

    rng = random.Random(42)
    background = photo_like_background(750, 1334)
    spec = parse_spec({**REFERENCE_SPEC, "background": {"sha256": hashlib.sha256(background).hexdigest()}})
    partners = [
        PosterInputs(
            nickname="".join(rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)) + f"{i}号",
            avatar=_avatar(rng),
            qr=QRPayload("text", f"https://liebian.example.com/s/{rng.getrandbits(64):016x}"),
            placeholders={"store_name": "静安店", "partner_grade": "金牌推广员"},
        )
        for i in range(args.cold + 1)
    ]

    def baseline(_i):
        img = Image.open(io.BytesIO(background))
        img.load()
        img.save(io.BytesIO(), "JPEG", quality=spec.quality)

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalDiskStore(tmp)
        load = lambda: background  # noqa: E731
        # One untimed render first: fonts, the decoded background and the emoji strike load once per process.
        get_or_render(store, spec, partners[-1], load)
        base = _timed(baseline, max(30, args.cold // 2))
        sizes = []

        def cold(i):
            result = get_or_render(store, spec, partners[i], load)
            assert result.rendered
            sizes.append(len(result.data))

        cold_times = _timed(cold, args.cold)

        def warm(i):
            assert not get_or_render(store, spec, partners[i % args.cold], load).rendered

        warm_times = _timed(warm, args.warm)

    base_ms = statistics.median(base) * 1000
    print(f"posters: 750x1334 photo background, CJK nickname, 640 px avatar, QR; JPEG q{spec.quality}; "
          f"median of {args.cold} cold / {args.warm} warm")
    print(f"{'':<34} {'posters/s':>10} {'ms/poster':>11} {'ratio':>9}")
    print(_row("baseline: open + save background", base, None))
    print(_row("cold: render + encode + store", cold_times, base_ms))
    print(_row("warm: content-address hit", warm_times, base_ms))
    cold_ms, warm_ms = statistics.median(cold_times) * 1000, statistics.median(warm_times) * 1000
    print(f"poster size: median {statistics.median(sizes) / 1024:.0f} KB, max {max(sizes) / 1024:.0f} KB (limit 300 KB)")
    print(f"targets: cold < 30 ms {'OK' if cold_ms < 30 else 'MISSED'}, "
          f"warm < 1 ms {'OK' if warm_ms < 1 else 'MISSED'}, "
          f"size < 300 KB {'OK' if max(sizes) < 300 * 1024 else 'MISSED'}")


if __name__ == "__main__":
    main()
