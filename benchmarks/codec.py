"""Codec benchmark: encode/decode cost per message, next to numpy's own copy.

    python benchmarks/codec.py [--json results.json] [--repeats 7]

For each payload the table shows the encoded size, the median microseconds to
encode, to decode, and to do both, next to ``np.frombuffer(array.tobytes())``
for the same array (one copy, the floor for getting an array into bytes and
back) and the ratio of the two.  ``copies`` counts copies of the array data
made by encode / decode.  Goals (ARCHITECTURE §4, issue 3): 1080p
enc+dec within 3x of tobytes+frombuffer; 20 ms audio enc+dec under 20 µs.
The machine may be shared: numbers are medians of interleaved repeats, and a
"~" marks a median whose repeats spread over 25%.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

import _bench
from _util import REPEATS, Timing, measure, measure_all, print_table, write_json
from fontus.core import AudioPayload, ImagePayload, Message, ObjectPayload
from fontus.nodes.source.test_pattern import BARS
from fontus.remote import CompressionConfig, decode_message, encode_message
from fontus.remote._arrays import NO_COMPRESSION, normalise

#: Goals this benchmark reports against.
GOAL_1080P_RATIO = 3.0
GOAL_AUDIO_20MS_US = 20.0


@dataclass
class Case:
    name: str
    message: Message[Any]
    array: np.ndarray | None = None
    compression: CompressionConfig = NO_COMPRESSION
    #: Value trees in their MessagePack form (as a session writes them when the peer reads it).
    pack_trees: bool = False


def test_pattern(height: int, width: int, noise: float = 0.0) -> np.ndarray:
    """Colour bars and a gray ramp blended over a 2-D colour gradient, as rgb24.

    Every pixel differs from its neighbours, so compression has real work to do
    (about 36x with zstd, 11x with lz4 at 1080p).  ``noise`` adds Gaussian
    sensor-like noise of that standard deviation, as a camera would.
    """
    bars = BARS.astype(np.float32)  # the test_pattern source's colour bars
    top = height * 3 // 4
    pattern = np.empty((height, width, 3), np.float32)
    pattern[:top] = bars[np.arange(width) * len(bars) // width][None]
    pattern[top:] = (np.arange(width, dtype=np.float32) * 255 / max(width - 1, 1))[None, :, None]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 255
    frame = pattern * 0.7 + gradient * 0.3
    if noise:
        frame += np.random.default_rng(1).normal(0.0, noise, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def twenty_keys() -> dict[str, Any]:
    """The 20-key object of the other benchmarks, as a plain dict (for the json baseline)."""
    return _bench.twenty_keys().to_dict()


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    audio_20ms = rng.uniform(-1, 1, 320).astype(np.float32)
    audio_1s = rng.uniform(-1, 1, 16000).astype(np.float32)
    frame_720 = test_pattern(720, 1280)
    frame_1080 = test_pattern(1080, 1920)

    def message(payload: Any) -> Message[Any]:
        return Message(payload, creator="bench").freeze()

    image_1080 = message(ImagePayload.from_array(frame_1080))
    found = [
        Case("audio 20 ms f32", message(AudioPayload(audio_20ms, 16000)), audio_20ms),
        Case("audio 1 s f32", message(AudioPayload(audio_1s, 16000)), audio_1s),
        Case("720p rgb24", message(ImagePayload.from_array(frame_720)), frame_720),
        Case("1080p rgb24", image_1080, frame_1080),
        Case("object 20 keys", message(ObjectPayload(twenty_keys()))),
        Case("object 20 keys msgpack", message(ObjectPayload(twenty_keys())), pack_trees=True),
    ]
    noisy_1080 = test_pattern(1080, 1920, noise=1.0)
    noisy = message(ImagePayload.from_array(noisy_1080))
    for algorithm in ("zstd", "lz4"):
        compression = CompressionConfig(algorithm)
        found.append(Case(f"1080p rgb24 {algorithm}", image_1080, frame_1080, compression))
        found.append(Case(f"1080p noisy {algorithm}", noisy, noisy_1080, compression))
    return found


def copies(case: Case, data: bytes) -> str:
    """Copies of the array data: encode (a normalising copy, then the final join) / decode."""
    if case.array is None:
        return "-"
    encode = 1 + (normalise(case.array) is not case.array)
    decoded = decode_message(data).payload
    array = decoded.audio if isinstance(decoded, AudioPayload) else decoded.image
    decode = 0 if np.shares_memory(array, np.frombuffer(data, np.uint8)) else 1
    if case.compression.algorithm != "none":
        return f"c+{encode} / d"
    return f"{encode} / {decode}"


def run_cases(found: list[Case], repeats: int) -> list[dict[str, Any]]:
    """Measure every case, all measurements interleaved (see ``measure_all``)."""
    fns: dict[str, Callable[[], Any]] = {}
    encoded: dict[str, bytes] = {}
    for case in found:
        message, compression, name = case.message, case.compression, case.name
        encode = partial(encode_message, message, compression, pack_trees=case.pack_trees)
        data = encoded[name] = encode()
        assert decode_message(data) == message
        fns[f"{name}/encode"] = encode
        fns[f"{name}/decode"] = partial(decode_message, data)
        fns[f"{name}/both"] = partial(_round_trip, encode)
        if case.array is not None:
            fns[f"{name}/baseline"] = partial(_tobytes_frombuffer, case.array)
    timings = measure_all(fns, repeats=repeats)
    results = []
    for case in found:
        name = case.name
        both, baseline = timings[f"{name}/both"], timings.get(f"{name}/baseline")
        results.append(
            {
                "payload": name,
                "compression": case.compression.algorithm,
                "bytes": len(encoded[name]),
                "raw_bytes": case.array.nbytes if case.array is not None else None,
                "encode": timings[f"{name}/encode"],
                "decode": timings[f"{name}/decode"],
                "enc_dec": both,
                "tobytes_frombuffer": baseline,
                "ratio": both.median_s / baseline.median_s if baseline else None,
                "copies": copies(case, encoded[name]),
            }
        )
    return results


def _round_trip(encode: Callable[[], bytes]) -> Message[Any]:
    return decode_message(encode())


def _tobytes_frombuffer(array: np.ndarray) -> np.ndarray:
    return np.frombuffer(array.tobytes(), array.dtype)


def json_baseline(data: dict[str, Any], repeats: int) -> Timing:
    """json.dumps + json.loads of the same object (bytes hex-encoded): a familiar reference."""
    plain = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in data.items()}
    return measure(lambda: json.loads(json.dumps(plain)), repeats=repeats)


def size_cell(result: dict[str, Any]) -> str:
    size = f"{result['bytes']:,}"
    if result["compression"] != "none" and result["raw_bytes"]:
        size += f" ({result['raw_bytes'] / result['bytes']:.1f}x smaller)"
    return size


def us(timing: Timing | None) -> str:
    if timing is None:
        return "-"
    noisy = " ~" if timing.spread > 0.25 else ""
    return f"{timing.us:,.1f}{noisy}"


def goals(results: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {r["payload"]: r for r in results}
    hd = by_name["1080p rgb24"]
    audio = by_name["audio 20 ms f32"]
    return {
        "1080p enc+dec / tobytes+frombuffer": {
            "value": hd["ratio"],
            "goal": f"<= {GOAL_1080P_RATIO}",
            "met": hd["ratio"] <= GOAL_1080P_RATIO,
        },
        "20 ms audio enc+dec µs": {
            "value": audio["enc_dec"].us,
            "goal": f"< {GOAL_AUDIO_20MS_US}",
            "met": audio["enc_dec"].us < GOAL_AUDIO_20MS_US,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="repeats per measurement")
    args = parser.parse_args(argv)

    results = run_cases(cases(), args.repeats)
    object_json = json_baseline(twenty_keys(), args.repeats)
    rows = [
        [
            r["payload"],
            size_cell(r),
            us(r["encode"]),
            us(r["decode"]),
            us(r["enc_dec"]),
            us(r["tobytes_frombuffer"]),
            f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-",
            r["copies"],
        ]
        for r in results
    ]
    reached = goals(results)
    notes = [
        f"object 20 keys for reference: json.dumps + json.loads = {object_json.us:,.1f} µs",
        "ratio = enc+dec / tobytes+frombuffer; copies = copies of the array data made by "
        "encode / decode (c = compress, d = decompress into a new buffer); audio is 16 kHz mono",
        "~ marks a noisy median (repeats spread over 25%)",
        *(
            f"goal {name} {g['goal']}: {g['value']:.2f} -> {'met' if g['met'] else 'MISSED'}"
            for name, g in reached.items()
        ),
    ]
    print_table(
        "fontus.v1 codec: median per message",
        [
            "payload",
            "bytes",
            "encode µs",
            "decode µs",
            "enc+dec µs",
            "tobytes+frombuffer µs",
            "ratio",
            "copies (enc/dec)",
        ],
        rows,
        notes=notes,
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "codec",
                "results": results,
                "object_json": object_json,
                "goals": reached,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
