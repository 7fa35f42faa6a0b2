"""The C side of the protocol (firmware/src/proto.c) against the Python side, built for the host
with ASan + UBSan: same CRC, same frames recovered from the same noisy streams, writer output
that Python decodes, and a fuzz run of random bytes through the parser (no crash, bounded).

The harness is a few lines of C written next to the build; the parser under test is the very
file the firmware links.
"""

from __future__ import annotations

import random
import subprocess
import zlib
from pathlib import Path

import pytest
from test_firmware_helpers import FIRMWARE, HOST_CC, NEED_HOST_CC

from hil.protocol import (
    MAX_FRAME,
    MAX_TEXT,
    MSG_TYPES,
    Frame,
    FrameReader,
    Result,
    decode_frame,
    encode_frame,
    parse_message,
    percent_decode,
    percent_encode,
)

pytestmark = NEED_HOST_CC

HARNESS = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ebq_proto.h"

static uint8_t in[1 << 24];

static void out(void *ctx, const uint8_t *b, size_t n) { (void)ctx; fwrite(b, 1, n, stdout); }

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    size_t n = fread(in, 1, sizeof in, stdin);
    if (!strcmp(argv[1], "crc")) {
        printf("%08X\n", (unsigned)ebq_proto_crc32(0, in, n));
    } else if (!strcmp(argv[1], "parse")) {
        static ebq_parser p;
        ebq_parser_init(&p);
        for (size_t i = 0; i < n; i++) {
            ebq_event ev;
            switch (ebq_parser_feed(&p, in[i], &ev)) {
            case EBQ_EV_FRAME:
                printf("F %u %s ", (unsigned)ev.seq, ebq_msg_name(ev.type));
                for (size_t k = 0; k < ev.payload_len; k++) printf("%02X", ev.payload[k]);
                printf("\n");
                break;
            case EBQ_EV_BAD_FRAME: printf("B %u %s\n", (unsigned)ev.seq, ev.reason); break;
            case EBQ_EV_TOO_LONG: printf("T %u\n", (unsigned)ev.seq); break;
            default: break;
            }
        }
    } else if (!strcmp(argv[1], "decode")) {
        long k = ebq_percent_decode(in, n);
        if (k < 0) { printf("ERR\n"); return 0; }
        for (long i = 0; i < k; i++) printf("%02X", in[i]);
        printf("\n");
    } else if (!strcmp(argv[1], "ids")) {
        uint16_t ids[8];
        long k = ebq_parse_ids(in, n, ids, 8);
        printf("%ld", k);
        for (long i = 0; i < k; i++) printf(" %u", ids[i]);
        printf("\n");
    } else if (!strcmp(argv[1], "write")) {
        ebq_writer w;
        const int32_t logits[] = {INT32_MIN, -1, 0, 1, INT32_MAX};
        const uint16_t ids[] = {2, 65535, 0};
        const uint32_t layers[] = {4294967295u, 7};
        ebq_writer_begin(&w, out, NULL, 65535, EBQ_MSG_RESULT);
        ebq_writer_u32(&w, "label", 4);
        ebq_writer_i32_list(&w, "logits", logits, 5);
        ebq_writer_u32(&w, "tokens", 3);
        ebq_writer_u64(&w, "cycles", 18446744073709551615ull);
        ebq_writer_u32_list(&w, "layers", layers, 2);
        ebq_writer_u32(&w, "stack", 0);
        ebq_writer_u32(&w, "arena", 1);
        ebq_writer_u16_list(&w, "ids", ids, 3);
        ebq_writer_end(&w);
        ebq_writer_begin(&w, out, NULL, 0, EBQ_MSG_ERROR);
        ebq_writer_str(&w, "code", ebq_error_name(EBQ_CODE_INTERNAL));
        ebq_writer_text(&w, "reason", in, n);
        ebq_writer_end(&w);
        ebq_writer_begin(&w, out, NULL, 1, EBQ_MSG_CLASSIFY);
        ebq_writer_text(&w, NULL, in, n);
        ebq_writer_end(&w);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("proto_c")
    (d / "harness.c").write_text(HARNESS)
    exe = d / "harness"
    cmd = [str(HOST_CC), "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-I", str(FIRMWARE / "include"), str(d / "harness.c"),
           str(FIRMWARE / "src" / "proto.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run(harness: Path, mode: str, data: bytes) -> bytes:
    proc = subprocess.run([str(harness), mode], input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode(errors="replace")[-3000:]
    return proc.stdout


def c_frames(harness: Path, stream: bytes) -> list[tuple]:
    events = []
    for line in run(harness, "parse", stream).decode().splitlines():
        kind, seq, *rest = line.split(" ", 3)
        if kind == "F":
            events.append(("F", int(seq), rest[0], bytes.fromhex(rest[1]).decode("ascii")))
        else:
            events.append((kind, int(seq)))
    return events


def test_crc_agrees(harness: Path) -> None:
    rng = random.Random(3)
    for n in (0, 1, 7, 64, 1000):
        data = bytes(rng.getrandbits(8) for _ in range(n))
        assert run(harness, "crc", data).decode().strip() == f"{zlib.crc32(data):08X}"


def test_same_frames_from_the_same_noisy_stream(harness: Path) -> None:
    rng = random.Random(5)
    sent: list[Frame] = []
    stream = bytearray()
    for i in range(300):
        roll = rng.random()
        if roll < 0.5:
            payload = percent_encode(bytes(rng.getrandbits(8) for _ in range(rng.randrange(60))))
            fr = Frame(rng.randrange(65536), rng.choice(MSG_TYPES), payload)
            sent.append(fr)
            stream += fr.encode()
        elif roll < 0.7:  # noise without `$`
            stream += bytes(rng.choice(b"abc\x00\xff \r\n*%") for _ in range(rng.randrange(50)))
        elif roll < 0.85:  # a frame cut short, then more
            stream += encode_frame(i, "HELLO")[: rng.randrange(1, 10)]
        else:  # a frame with one byte flipped
            raw = bytearray(encode_frame(i, "STATS", "x=1"))
            raw[rng.randrange(1, len(raw) - 1)] ^= 0x01
            stream += raw.replace(b"\n", b"").replace(b"$", b"") + b"\n"
    ok = [e for e in c_frames(harness, bytes(stream)) if e[0] == "F"]
    py = [e for e in FrameReader().feed(bytes(stream)) if isinstance(e, Frame)]
    assert [(e[1], e[2], e[3]) for e in ok] == [(f.seq, f.type, f.payload) for f in py]
    assert set(py) <= set(sent) and len(py) >= 0.8 * len(sent)


def test_too_long_and_bad_frames(harness: Path) -> None:
    long_frame = b"$42 CLASSIFY " + b"a" * MAX_FRAME + b"*00000000\n"
    assert c_frames(harness, long_frame) == [("T", 42)]
    exact = encode_frame(1, "CLASSIFY", "a" * (MAX_FRAME - len(encode_frame(1, "CLASSIFY", "a"))
                                                + 1))
    assert len(exact) == MAX_FRAME
    assert c_frames(harness, exact)[0][0] == "F"
    assert c_frames(harness, exact[:-1] + b"a\n") == [("T", 1)]
    # a `$` while discarding ends the long frame and starts the next one
    assert c_frames(harness, long_frame[:-1] + encode_frame(2, "OK")) == [("T", 42),
                                                                          ("F", 2, "OK", "")]
    assert c_frames(harness, b"$9 OK*00000000\n") == [("B", 9)]
    # issue #17: MAX_TEXT bytes of `$`, tripled by escaping, still parse as one frame
    worst = encode_frame(65535, "CLASSIFY", percent_encode("$" * MAX_TEXT))
    assert c_frames(harness, worst[:-1] + b"\r\n") == [
        ("F", 65535, "CLASSIFY", percent_encode("$" * MAX_TEXT))]
    assert c_frames(harness, b"$junk\n") == [("B", 0)]


def test_writer_output_decodes_in_python(harness: Path) -> None:
    every = bytes(range(256))
    lines = run(harness, "write", every).splitlines(keepends=True)
    res = parse_message(decode_frame(lines[0]))
    assert isinstance(res, Result) and res.seq == 65535
    assert res.logits == [-(2**31), -1, 0, 1, 2**31 - 1] and res.ids == [2, 65535, 0]
    assert res.cycles == 2**64 - 1 and res.layers == [2**32 - 1, 7]
    err = decode_frame(lines[1])
    assert percent_decode(err.fields()["reason"]) == every and " " not in err.fields()["reason"]
    text = decode_frame(lines[2])
    assert text.payload == percent_encode(every) and percent_decode(text.payload) == every


def test_percent_decode_and_ids_agree(harness: Path) -> None:
    every = bytes(range(256))
    assert bytes.fromhex(run(harness, "decode", percent_encode(every).encode()).decode()) == every
    for bad in (b"%", b"%4", b"%zz", b"a\x00", b"$", b"*"):
        assert run(harness, "decode", bad).strip() == b"ERR"
    assert run(harness, "ids", b"2,10,65535").split() == [b"3", b"2", b"10", b"65535"]
    assert run(harness, "ids", b"").strip() == b"0"
    for bad, code in ((b"1,,2", b"-1"), (b"1,", b"-1"), (b"x", b"-1"), (b"65536", b"-3"),
                      (b"123456", b"-3"), (b",".join([b"1"] * 9), b"-2")):
        assert run(harness, "ids", bad).split()[0] == code, bad


def test_fuzz_random_bytes(harness: Path) -> None:
    """2 MB of adversarial bytes: the parser neither crashes (ASan/UBSan) nor loses sync."""
    rng = random.Random(11)
    alphabet = b"$*\n\r %0123456789ABCDEFHELOKSTUR_ =,\x00\xff"
    chunks = [bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 4000)))
              for _ in range(600)]
    noise = b"".join(chunks) + bytes(rng.getrandbits(8) for _ in range(500_000))
    good = encode_frame(7, "HELLO")
    events = c_frames(harness, noise + b"\n" + good)
    assert events[-1] == ("F", 7, "HELLO", "")
