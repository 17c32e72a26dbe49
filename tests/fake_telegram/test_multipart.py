"""Multipart uploads are split on their boundary (fast) and read as the full email parser reads them."""

from __future__ import annotations

import httpx

from fake_telegram import params


def _encoded(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://fake.invalid/", data=data, files=files)
    return request.headers["content-type"], request.read()


def test_fast_split_reads_what_the_email_parser_reads() -> None:
    binary = bytes(range(256)) * 300 + b"\r\n--not-the-boundary\r\n\r\n"
    content_type, body = _encoded(
        {"chat_id": "42", "caption": "héllo\r\nworld"},
        {"photo": ("p.jpg", binary, "image/jpeg"), "doc": ("a.txt", b"", "text/plain")},
    )

    fast = params.parse_body(content_type, body, "")
    full = params.Params()
    params._parse_multipart_fully(content_type, body, full)

    assert fast.values == full.values == {"chat_id": "42", "caption": "héllo\r\nworld"}
    assert fast.uploads == full.uploads
    assert fast.uploads["photo"].data == binary
    assert fast.uploads["doc"].data == b"" and fast.uploads["doc"].content_type == "text/plain"


def test_a_part_with_a_transfer_encoding_goes_through_the_full_parser() -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"aGVsbG8=\r\n--{boundary}--\r\n"
    ).encode()

    parsed = params.parse_body(f"multipart/form-data; boundary={boundary}", body, "")

    assert parsed.uploads["photo"].data == b"hello"


def test_no_boundary_reads_no_parts() -> None:
    assert params.parse_body("multipart/form-data", b"--x\r\n\r\n", "").uploads == {}
