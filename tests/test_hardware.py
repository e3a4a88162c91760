"""keras_video.hardware: the CPU flags behind the bfloat16 and Conv3D choices."""

import pytest

from keras_video import hardware


@pytest.mark.parametrize("flags,expected", [("fpu avx512f amx_bf16 amx_tile", True),
                                            ("fpu avx512f avx512_bf16", True),
                                            ("fpu avx2 fma", False), (None, None)])
def test_cpu_flags_from_cpuinfo(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\n" + (f"flags\t\t: {flags}\n" if flags else ""))
    assert hardware.cpu_has_bfloat16(cpuinfo=str(cpuinfo)) is expected
    assert hardware.cpu_has_bfloat16(cpuinfo=str(tmp_path / "missing")) is None
    if flags:
        assert hardware.cpu_has_any("avx512f", cpuinfo=str(cpuinfo)) == ("avx512f" in flags)
