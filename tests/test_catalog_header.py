"""The safetensors header reader and hostile model files."""

from __future__ import annotations

import json
import struct

import pytest
from helpers_catalog import kohya_metadata, write_lora, write_raw

from stylus_ext.catalog.db import Catalog
from stylus_ext.catalog.scan import scan_folders
from stylus_ext.sdk.cards.header import read_header


def test_reads_kohya_metadata_and_payload_offset(tmp_path):
    path = write_lora(tmp_path / "a.safetensors", kohya_metadata("alpha", ss_network_dim="8"))
    header = read_header(path)
    assert header.problem == ""
    assert header.metadata["ss_output_name"] == "alpha"
    assert header.metadata["ss_network_dim"] == "8"
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert header.payload_offset == 8 + length
    # the digest identifies the header: another header → another digest
    other = write_lora(tmp_path / "b.safetensors", kohya_metadata("beta"))
    assert read_header(other).header_sha != header.header_sha


@pytest.mark.parametrize(
    ("length", "body", "expect"),
    [
        (None, b"\x01\x02\x03", "only 3 bytes"),
        (2**63, b"{}", "exceeds"),
        (500, b'{"__metadata__": {}}', "truncated"),
        (4, b"\xff\xfe\xfd\xfc", "UTF-8"),
        (9, b'{"a": [1,', "not valid JSON"),
        (6, b"[1, 2]", "JSON list"),
        (-1, b'{"__metadata__": [1, 2, 3]}', "__metadata__ is a JSON list"),
        (0, b"", "too small"),
    ],
)
def test_hostile_headers_give_one_line_reasons(tmp_path, length, body, expect):
    path = tmp_path / "x.safetensors"
    if length is None:
        path.write_bytes(body)
    else:
        write_raw(path, len(body) if length == -1 else length, body)
    header = read_header(path)
    assert header.metadata == {}
    assert expect in header.problem
    assert "\n" not in header.problem


def test_non_string_metadata_values_are_tolerated(tmp_path):
    header_obj = {"__metadata__": {"ss_output_name": "x", "ss_network_dim": 4, "nested": {"a": 1}, "none": None}}
    raw = json.dumps(header_obj).encode()
    path = write_raw(tmp_path / "x.safetensors", len(raw), raw)
    header = read_header(path)
    assert header.problem == ""
    assert header.metadata == {"ss_output_name": "x", "ss_network_dim": "4", "nested": '{"a": 1}'}


def test_deeply_nested_json_is_not_a_crash(tmp_path):
    raw = b"[" * 100_000 + b"]" * 100_000
    path = write_raw(tmp_path / "deep.safetensors", len(raw), raw)
    assert read_header(path).problem


def test_scan_of_hostile_files_keeps_going(tmp_path, plugins):
    lora = tmp_path / "lora"
    write_lora(lora / "good.safetensors", kohya_metadata("good_alias"))
    write_raw(lora / "huge.safetensors", 2**63, b"{}")
    write_raw(lora / "trunc.safetensors", 1000, b'{"__metad')
    write_raw(lora / "utf.safetensors", 4, b"\xff\xfe\xfd\xfc")
    (lora / "empty.safetensors").write_bytes(b"")
    (lora / "old.pt").write_bytes(b"not really a pickle")
    catalog = Catalog(tmp_path / "c.db")
    report = scan_folders(catalog, [lora], plugins=plugins)
    assert report.added == 6
    problems = dict(report.problems)
    assert set(problems) == {str(lora / n) for n in ("huge.safetensors", "trunc.safetensors", "utf.safetensors",
                                                      "empty.safetensors")}
    assert all("\n" not in r for r in problems.values())
    names = {a.name for a in catalog.adapters()}
    assert {"good_alias", "huge", "trunc", "utf", "empty", "old"} == names
    good = next(a for a in catalog.adapters() if a.name == "good_alias")
    assert good.card.base_model == "SD1" and good.card.training_tags
