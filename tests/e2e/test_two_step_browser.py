"""Two-step enrolment in a real browser (headless Debian Chromium via Playwright): the QR
code on the enrolment page is read by a real decoder (zxing-cpp) from screenshots at desktop
(1280 px) and phone (390 px) widths, and the code an authenticator would compute from what
it read finishes the enrolment; the recovery codes come next, once.

The UX review of December 2026 found the QR code clipped (a 245 px SVG without a viewBox in
a 200 px box): no decoder read it, at either width.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from tests.helpers import PASSWORD, make_clinician

pytestmark = pytest.mark.e2e

zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (the test extras) is missing")


def _png_gray(png: bytes) -> tuple[bytes, int, int]:
    """(8-bit grayscale pixels, width, height) of an 8-bit RGB(A) non-interlaced PNG, what
    Chromium's screenshots are (PNG, ISO/IEC 15948 §9: filters 0-4). Standard library only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, head = 8, [], None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = head
    assert depth == 8 and colour in (2, 6) and interlace == 0, head
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    prev, gray = bytearray(stride), bytearray()
    for y in range(height):
        row = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        line = _unfilter(row[0], bytearray(row[1:]), prev, bpp)
        gray += bytes(line[1::bpp])  # the green channel: black and white stay apart
        prev = line
    return bytes(gray), width, height


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    for i in range(len(line)) if kind else ():
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 2:
            line[i] = (line[i] + b) & 255
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return line


def _decode_qr(png: bytes) -> list[str]:
    gray, width, height = _png_gray(png)
    image = memoryview(gray).cast("B", (height, width))
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_enrolment_qr_code_scans_at_desktop_and_phone_widths(browser, app, base_url, tmp_path):
    from authserver.auth import totp

    make_clinician(app, totp=False)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    page.goto(base_url + "/login?next=/account")
    page.fill("#username", "drsmith")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#code")
    assert urlsplit(page.url).path == "/login/enrol"
    assert "drsmith" in page.inner_text("#signing-in-as")
    secret = page.text_content("#totp-secret").strip()
    expected = totp.provisioning_uri(secret, "drsmith", app.config["TOTP_ISSUER"])
    decoded = {}
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        box = page.locator(".qr svg").bounding_box()
        assert 160 <= box["width"] <= width - 32 and abs(box["width"] - box["height"]) < 1
        assert box["x"] >= 0 and box["x"] + box["width"] <= width  # nothing cut off
        shot = page.screenshot(full_page=True)
        Path(tmp_path / f"enrol-{width}.png").write_bytes(shot)
        decoded[width] = _decode_qr(shot)
    assert decoded == {1280: [expected], 390: [expected]}, decoded
    # What an authenticator app does with what it scanned: its code finishes enrolment.
    scanned = parse_qs(urlsplit(decoded[390][0]).query)["secret"][0]
    page.fill("#code", pyotp.TOTP(scanned).at(time.time()))
    page.click("form[action='/login/enrol'] button[type=submit]")
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and all(len(c) == 11 and c[5] == "-" for c in codes)
    page.click("#continue")
    page.wait_for_selector("#recovery-remaining")
    assert "10" in page.inner_text("#recovery-remaining")
    assert "on" in page.inner_text("#two-step-status")
    # Lost phone: a saved recovery code signs in once; the same code is refused after that.
    def sign_in_with(code: str) -> None:
        page.goto(base_url + "/logout")
        page.click("form[action='/logout'] button[type=submit]")
        page.goto(base_url + "/login?next=/account")
        page.fill("#username", "drsmith")
        page.fill("#password", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.click("details.recovery summary")
        page.fill("#recovery-code", code)
        page.click("details.recovery button[type=submit]")

    sign_in_with(codes[0].upper().replace("-", " "))  # typed loosely: still the code
    page.wait_for_selector("#recovery-remaining")
    assert "9" in page.inner_text("#recovery-remaining")
    for _ in range(2):
        sign_in_with(codes[0])
        page.wait_for_selector("#recovery-code-error")
        assert urlsplit(page.url).path == "/login/totp"
        assert page.get_attribute("#recovery-code", "aria-invalid") == "true"
