"""Every signing step against every intermediate value of the seed vectors, loaded from the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api_client import signing

_REPO_COPY = Path(__file__).parent / "data" / "signing-vectors.json"
_SHARED_SEED = Path(__file__).parents[3] / "shared" / "seed" / "signing-vectors.json"


def _vectors_path() -> Path:
    """The repo copy, so a clean clone works; the shared seed only if the copy is missing."""
    return _REPO_COPY if _REPO_COPY.exists() else _SHARED_SEED


VECTORS: list[dict[str, Any]] = json.loads(_vectors_path().read_text(encoding="utf-8"))
IDS = [v["name"] for v in VECTORS]


def _query(v: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, val) for k, val in v["query"]]


def _all_headers(v: dict[str, Any]) -> list[tuple[str, str]]:
    """headers_in plus what the signer adds before signing (it signs its own X- headers)."""
    return [*v["headers_in"].items(), ("X-Date", v["x_date"]), ("X-Content-Sha256", v["body_sha256"])]


def test_vectors_loaded() -> None:
    assert len(VECTORS) >= 3
    assert {"V1_submit_task_json", "V2_get_result_local_emulator_port"} <= set(IDS)


@pytest.mark.skipif(not _SHARED_SEED.exists(), reason="shared seed folder not beside the repo")
def test_repo_copy_matches_shared_seed() -> None:
    assert json.loads(_REPO_COPY.read_text("utf-8")) == json.loads(_SHARED_SEED.read_text("utf-8"))


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
class TestVectorSteps:
    def test_body_sha256(self, v: dict[str, Any]) -> None:
        assert signing.body_sha256(v["body"]) == v["body_sha256"]
        assert signing.body_sha256(v["body"].encode("utf-8")) == v["body_sha256"]

    def test_canonical_path(self, v: dict[str, Any]) -> None:
        assert signing.canonical_path(v["path"]) == v["canonical_path"]

    def test_canonical_query(self, v: dict[str, Any]) -> None:
        assert signing.canonical_query(_query(v)) == v["canonical_query"]

    def test_canonical_headers(self, v: dict[str, Any]) -> None:
        assert signing.canonical_headers(_all_headers(v)) == v["canonical_headers"]

    def test_signed_headers(self, v: dict[str, Any]) -> None:
        assert signing.signed_headers(_all_headers(v)) == v["signed_headers"]

    def test_host_signed(self, v: dict[str, Any]) -> None:
        assert signing.headers_to_sign(_all_headers(v))["host"] == v["host_signed"]

    def test_canonical_request(self, v: dict[str, Any]) -> None:
        got = signing.canonical_request(
            v["method"],
            v["canonical_path"],
            v["canonical_query"],
            v["canonical_headers"],
            v["signed_headers"],
            v["body_sha256"],
        )
        assert got == v["canonical_request"]

    def test_hashed_canonical_request(self, v: dict[str, Any]) -> None:
        assert signing.hashed_canonical_request(v["canonical_request"]) == v["hashed_canonical_request"]

    def test_credential_scope(self, v: dict[str, Any]) -> None:
        assert signing.credential_scope(v["x_date"], v["region"], v["service"]) == v["credential_scope"]
        assert signing.credential_scope(v["x_date"][:8], v["region"], v["service"]) == v["credential_scope"]

    def test_string_to_sign(self, v: dict[str, Any]) -> None:
        got = signing.string_to_sign(v["x_date"], v["credential_scope"], v["canonical_request"])
        assert got == v["string_to_sign"]

    def test_signing_key_chain(self, v: dict[str, Any]) -> None:
        key = signing.signing_key(v["secret_key"], v["x_date"], v["region"], v["service"])
        chain = v["signing_key_chain"]
        assert key.k_date.hex() == chain["k_date"]
        assert key.k_region.hex() == chain["k_region"]
        assert key.k_service.hex() == chain["k_service"]
        assert key.k_signing.hex() == chain["k_signing"]

    def test_signature(self, v: dict[str, Any]) -> None:
        k_signing = bytes.fromhex(v["signing_key_chain"]["k_signing"])
        assert signing.signature(k_signing, v["string_to_sign"]) == v["signature"]

    def test_authorization_header(self, v: dict[str, Any]) -> None:
        got = signing.authorization_header(
            v["access_key"], v["credential_scope"], v["signed_headers"], v["signature"]
        )
        assert got == v["authorization"]
        assert got == v["headers_added_by_signer"]["Authorization"]

    def test_format_x_date(self, v: dict[str, Any]) -> None:
        assert signing.format_x_date(1_704_067_200.0) == v["x_date"]

    def test_sign_request_end_to_end(self, v: dict[str, Any]) -> None:
        signed = signing.sign_request(
            method=v["method"],
            path=v["path"],
            query=_query(v),
            headers=_all_headers(v),
            body=v["body"],
            access_key=v["access_key"],
            secret_key=v["secret_key"],
            region=v["region"],
            service=v["service"],
            x_date=v["x_date"],
        )
        for name in (
            "body_sha256",
            "canonical_path",
            "canonical_query",
            "canonical_headers",
            "signed_headers",
            "canonical_request",
            "hashed_canonical_request",
            "credential_scope",
            "string_to_sign",
            "signature",
            "authorization",
        ):
            assert getattr(signed, name) == v[name], name
        assert signed.signing_key.k_signing.hex() == v["signing_key_chain"]["k_signing"]
        assert v["secret_key"] not in repr(signed)
        assert v["signature"] not in repr(signed)


# --- the SDK's rules beyond the vectors (signing.md steps 4-8 and gotchas) ---


@pytest.mark.parametrize(
    ("name", "signed"),
    [
        ("Content-Type", True),
        ("content-type", False),
        ("Content-Md5", True),
        ("Content-MD5", False),
        ("Host", True),
        ("host", False),
        ("X-Foo", True),
        ("x-foo", False),
        ("X-", True),
        ("User-Agent", False),
        ("Content-Length", False),
        ("Accept", False),
    ],
)
def test_header_selection_is_by_exact_spelling(name: str, signed: bool) -> None:
    assert (name.lower() in signing.headers_to_sign([(name, "v")])) is signed


def test_header_values_are_not_trimmed_and_names_sort_by_code_point() -> None:
    headers = [("X-b", " two  spaces "), ("X-A", "\tone"), ("Host", "h")]
    assert signing.canonical_headers(headers) == "host:h\nx-a:\tone\nx-b: two  spaces \n"
    assert signing.signed_headers(headers) == "host;x-a;x-b"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com:80", "example.com"),
        ("example.com:443", "example.com"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("example.com:4430", "example.com:4430"),
        ("example.com", "example.com"),
    ],
)
def test_host_port_80_and_443_dropped_for_signing_only(host: str, expected: str) -> None:
    assert signing.canonical_headers([("Host", host)]) == f"host:{expected}\n"


def test_no_signable_headers_gives_empty_block() -> None:
    assert signing.canonical_headers([("Accept", "*/*")]) == ""
    assert signing.signed_headers([]) == ""


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], ""),
        ([("k", "")], "k="),
        ([("b", "1"), ("B", "2"), ("a", "3")], "B=2&a=3&b=1"),
        ([("a", "z"), ("a", "y"), ("a", "x")], "a=z&a=y&a=x"),
        ([("sp ace", "a+b")], "sp%20ace=a%2Bb"),
        ([("k", "-_.~!*'()/")], "k=-_.~%21%2A%27%28%29%2F"),
        ([("k", "é")], "k=%C3%A9"),
    ],
)
def test_canonical_query_rules(pairs: list[tuple[str, str]], expected: str) -> None:
    assert signing.canonical_query(pairs) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", "/"), ("/", "/"), ("/a b/c*", "/a%20b/c%2A"), ("/中", "/%E4%B8%AD"), ("/~x", "/~x")],
)
def test_canonical_path_rules(path: str, expected: str) -> None:
    assert signing.canonical_path(path) == expected


def test_empty_body_hash() -> None:
    assert signing.body_sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0.0, "19700101T000000Z"),
        (1_704_067_199.999, "20231231T235959Z"),
        (1_718_201_331.5, "20240612T140851Z"),
    ],
)
def test_format_x_date(epoch: float, expected: str) -> None:
    assert signing.format_x_date(epoch) == expected


def test_signing_key_repr_hides_material() -> None:
    v = VECTORS[0]
    key = signing.signing_key(v["secret_key"], v["x_date"], v["region"], v["service"])
    assert v["signing_key_chain"]["k_signing"] not in repr(key)
    assert repr(key.k_signing) not in repr(key)


def test_signing_module_does_not_import_httpx() -> None:
    source = Path(signing.__file__).read_text("utf-8")
    assert "import httpx" not in source and "from httpx" not in source


# --- Signer: the same Authorization as sign_request, with the repeating parts cached ---


def _wire_query(v: dict[str, Any]) -> str:
    return urlencode(_query(v))


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_signer_authorization_matches_the_vector(v: dict[str, Any]) -> None:
    signer = signing.Signer(v["access_key"], v["secret_key"], region=v["region"], service=v["service"])
    for _ in range(2):  # the second time from the caches
        got = signer.authorization(
            method=v["method"], path=v["path"], query=_wire_query(v), headers=_all_headers(v),
            x_date=v["x_date"], payload_hash=v["body_sha256"],
        )
        assert got == v["authorization"]
    assert signer.k_signing(v["x_date"]).hex() == v["signing_key_chain"]["k_signing"]
    assert v["secret_key"] not in repr(signer)


def test_signer_key_follows_the_date() -> None:
    v = VECTORS[0]
    signer = signing.Signer(v["access_key"], v["secret_key"], region=v["region"], service=v["service"])
    for x_date in ("20240101T000000Z", "20240101T235959Z", "20240102T000000Z", "20231231T120000Z"):
        expected = signing.signing_key(v["secret_key"], x_date, v["region"], v["service"]).k_signing
        assert signer.k_signing(x_date) == expected


def test_signer_target_cache_is_bounded_and_right_after_a_clear() -> None:
    signer = signing.Signer("AK", "SK", region="cn-north-1", service="cv")
    for i in range(signing.Signer.MAX_TARGETS * 2 + 1):
        query = f"Action=A{i}&Version=2022-08-31&x=a+b%20c"
        assert signer.canonical_target("/p q", query) == (
            "/p%20q", f"Action=A{i}&Version=2022-08-31&x=a%20b%20c"
        )
        assert len(signer._targets) <= signing.Signer.MAX_TARGETS


@given(
    query=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=5),
    extra=st.lists(
        st.tuples(st.sampled_from(["X-Foo", "x-bar", "Content-Type", "Host", "Accept", "X-Security-Token"]),
                  st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)),
        max_size=5,
    ),
    path=st.text(max_size=10).map(lambda p: "/" + p),
    x_date=st.sampled_from(["20240101T000000Z", "20261206T235959Z"]),
)
def test_signer_agrees_with_sign_request(
    query: list[tuple[str, str]], extra: list[tuple[str, str]], path: str, x_date: str
) -> None:
    headers = [("Host", "visual.volcengineapi.com:443"), *extra, ("X-Date", x_date),
               ("X-Content-Sha256", signing.body_sha256(b"{}"))]
    expected = signing.sign_request(
        method="POST", path=path, query=parse_qsl(urlencode(query), keep_blank_values=True), headers=headers,
        body=b"{}", access_key="AK", secret_key="SK/secret==", region="cn-north-1", service="cv",
        x_date=x_date,
    )
    signer = signing.Signer("AK", "SK/secret==", region="cn-north-1", service="cv")
    got = signer.authorization(method="POST", path=path, query=urlencode(query), headers=headers,
                               x_date=x_date, payload_hash=expected.body_sha256)
    assert got == expected.authorization
