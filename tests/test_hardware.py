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


@pytest.mark.parametrize("flags,expected", [("fpu avx512f amx_bf16 amx_tile", "AMX"),
                                            ("fpu avx512f avx512_bf16", "AVX-512"),
                                            ("fpu avx2 fma", "AVX2"), ("fpu sse4_2", "other")])
def test_cpu_class(flags, expected):
    assert hardware.cpu_class(frozenset(flags.split())) == expected


@pytest.mark.parametrize("onednn,gpu,detour", [(False, False, True), (True, False, False),
                                               (None, False, False), (False, True, False)])
def test_cpu_routes_follow_onednn(monkeypatch, onednn, gpu, detour):
    """The stride-1 detour and the 2D max-pools only where TensorFlow runs its Eigen CPU
    kernels; the fused BatchNorm everywhere; the bfloat16 fallback on every CPU."""
    monkeypatch.setattr(hardware, "onednn_enabled", lambda: onednn)
    monkeypatch.setattr(hardware, "on_gpu", lambda: gpu)
    assert hardware.conv3d_stride1_gradient()[0] is detour
    assert hardware.max_pool3d_as_2d()[0] is detour
    assert hardware.bfloat16_small_conv3d_in_float32()[0] is (not gpu)
    table = {layer: (route, why) for layer, route, why in hardware.routes()}
    assert table["Conv3D, strided"][0] == (
        "stride-1 gradient detour" if detour else "TensorFlow's kernels")
    assert all(why for _, why in table.values())


def test_this_process_runs_what_the_runtime_chose():
    """conftest chose oneDNN before TensorFlow was imported (keras_video.runtime)."""
    import os

    from keras_video import runtime

    value = os.environ.get(runtime.ONEDNN_VARIABLE)
    if value in ("0", "1"):
        assert hardware.onednn_enabled() is (value == "1")
    lines = hardware.describe()
    assert lines[0].startswith("CPU: ") and len(lines) == 1 + len(hardware.routes())
