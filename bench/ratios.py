#!/usr/bin/env python3
"""Turns kernel_bench JSON into the kernel ratio table (docs/benchmark-notes.md).

    build/bench/kernel_bench --benchmark_format=json --benchmark_min_time=0.3 > bench.json
    bench/ratios.py bench.json
"""
import json
import sys


def main(path):
    runs = json.load(open(path))["benchmarks"]
    rate = {b["name"]: b["bytes_per_second"] / 1e9 for b in runs}

    def size_of(name):
        return name.rsplit("/", 1)[1]

    print("| benchmark | GB/s | yardstick | ratio | vs scalar |")
    print("|---|---|---|---|---|")
    for name, gbps in rate.items():
        if not name.endswith(tuple(f"/{s}" for s in ("262144", "8388608", "268435456", "0"))):
            continue
        if "_simd/" not in name and "_pool2/" not in name:
            continue
        size = size_of(name)
        kind = "Normalize" if name.startswith("Normalize") else "Fit"
        if name.startswith("FitSketch/"):  # the fit with sketches against the fit alone
            yard = name.replace("FitSketch/", "Fit/")
        elif name.startswith("FitWeighted/sketch_"):  # against the unweighted fit + sketch
            yard = name.replace("FitWeighted/sketch_", "FitSketch/")
        elif name.startswith("FitWeighted/"):  # the weighted fit against the unweighted one
            yard = name.replace("FitWeighted/mask_", "Fit/").replace("FitWeighted/", "Fit/")
        elif kind == "Fit":
            yard = "BM_ReadOnlySum/" + (size if size != "0" else "268435456")
        elif "/u8_" in name:
            yard = "BM_WidenU8ToF32/" + (size if size != "0" else "268435456")
        else:
            yard = "BM_Memcpy/" + (size if size != "0" else "268435456")
        scalar = name.replace("_simd/", "_scalar/")
        vs_scalar = f"{gbps / rate[scalar]:.1f}x" if "_simd/" in name and scalar in rate else ""
        print(f"| {name} | {gbps:.1f} | {yard} {rate[yard]:.1f} | {gbps / rate[yard]:.2f}x | {vs_scalar} |")


if __name__ == "__main__":
    main(sys.argv[1])
