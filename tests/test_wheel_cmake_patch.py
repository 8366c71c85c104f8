"""scripts/patch_ros_wheel_cmake.py rewrites the wheel builder's include paths, and only those."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from patch_ros_wheel_cmake import patch_prefix

SAMPLE = (
    "set_target_properties(x PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "
    '"/opt/python/cp311-cp311/include/python3.11;'
    '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include;${_IMPORT_PREFIX}/include")\n'
)


def test_patch_rewrites_both_paths_and_is_idempotent(tmp_path):
    cmake = tmp_path / "share" / "pkg" / "cmake" / "export.cmake"
    cmake.parent.mkdir(parents=True)
    cmake.write_text(SAMPLE)
    other = tmp_path / "share" / "pkg" / "package.xml"
    other.write_text("/opt/python/cp311-cp311/include/python3.11")

    assert patch_prefix(tmp_path, "/here/include/python3.11", "/here/numpy/include") == [cmake]
    text = cmake.read_text()
    assert "/opt/python" not in text
    assert "/here/include/python3.11;/here/numpy/include;${_IMPORT_PREFIX}/include" in text
    assert other.read_text() == "/opt/python/cp311-cp311/include/python3.11"  # only CMake files are touched
    assert patch_prefix(tmp_path, "/here/include/python3.11", "/here/numpy/include") == []
