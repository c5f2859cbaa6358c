"""Compiled inference for tree ensembles: XGBoost, LightGBM and scikit-learn forests converted
to ONNX and run by ONNX Runtime's tree-ensemble operator, verified equal before they serve.

Why ONNX Runtime and not treelite: one row through the serving benchmark's booster (XGBoost,
100 trees, depth 6, 30 features) costs ~7-25 µs in onnxruntime's operator with one thread,
10-24 µs in a tl2cgen-compiled library (which needs a C compiler at load and whose project has
had no release since 2024), and ~240 µs in ``Booster.inplace_predict``. onnxruntime is already a
dependency (the onnx flavor), and the converters (onnxmltools, skl2onnx) are kept by the ONNX
project. ``benchmarks/serving.py`` measures it again on every run.

Layout:
    converters    one function per flavor: a native model in, ONNX bytes plus how to read the
                  outputs back in the native layout (``Layout``); NotCompilable with a reason
    compiled      ``CompiledTrees``, the LoadedModel over an onnxruntime session
    verify        the equality check: input example + seeded sample + split-boundary probes
    select        the choice per served model (auto / native / compiled), cached conversions
"""

from __future__ import annotations

from modelyard.runtimes.trees.select import Choice, choose

__all__ = ["Choice", "choose"]
