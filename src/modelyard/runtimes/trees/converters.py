"""One converter per flavor: a loaded native model in, ONNX bytes (with their ``Layout``) out.

A converter refuses what it cannot convert faithfully with ``NotCompilable`` and a reason a
user can act on; whatever it converts is still verified against the native model before it
serves (``verify``), so a converter's silent mistake costs speed, never a wrong answer.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from modelyard.runtimes._common import require
from modelyard.runtimes.base import LoadedModel
from modelyard.runtimes.trees.compiled import TIE, Layout, attach_layout

#: The input name of every converted graph.
INPUT = "input"


class NotCompilable(Exception):
    """The model cannot be compiled; ``str(exc)`` says why, for ``endpoints show``."""


Converter = Callable[[LoadedModel], bytes]

# XGBoost objectives whose inplace_predict answer is one number per row (after the link).
_XGB_SCALAR = {
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:gamma",
    "reg:tweedie",
    "count:poisson",
    "binary:logitraw",
}


def _tools(what: str) -> Any:
    return require(what, "onnxmltools", "compiled trees")


def _float_type(dtype: str) -> Any:
    types = _tools("onnxmltools.convert.common.data_types")
    return types.FloatTensorType if dtype == "float32" else types.DoubleTensorType


def _outputs(proto: Any) -> list[str]:
    return [o.name for o in proto.graph.output]


def _tree_node(proto: Any) -> Any:
    """The graph's one tree-ensemble node (multi-output models have several: not compiled)."""
    nodes = [n for n in proto.graph.node if n.op_type.startswith("TreeEnsemble")]
    if len(nodes) != 1:
        raise NotCompilable(f"{len(nodes)} tree-ensemble nodes (multi-output) are not compiled")
    return nodes[0]


def _input_rules(model: LoadedModel, n_features: int) -> dict[str, bool]:
    """Whether the native model takes NaN and infinity: the compiled one refuses what it does."""
    rules = {}
    for key, value in (("allow_missing", np.nan), ("allow_infinite", np.inf)):
        try:
            with np.errstate(all="ignore"):
                model.predict(np.full((1, n_features), value))
        except Exception:  # the native model refuses it (its own error type)
            rules[key] = False
        else:
            rules[key] = True
    return rules


def xgboost(model: LoadedModel) -> bytes:
    """XGBoost ``gbtree`` boosters, numeric features, the objectives in ``_XGB_SCALAR`` and
    binary/multiclass classification. XGBoost itself predicts in float32, so the graph does.
    """
    booster = model.booster  # type: ignore[attr-defined]
    with warnings.catch_warnings():  # xgboost >= 3.4 warns through a C callback on gblinear
        warnings.simplefilter("ignore")
        config = json.loads(booster.save_config())["learner"]
    kind = config["gradient_booster"]["name"]
    if kind != "gbtree":
        raise NotCompilable(f"{kind} boosters are not compiled (only gbtree)")
    objective = config["objective"]["name"]
    if objective not in _XGB_SCALAR | {"binary:logistic", "multi:softprob", "multi:softmax"}:
        raise NotCompilable(f"objective {objective!r} is not compiled")
    if any(t == "c" for t in booster.feature_types or ()):
        raise NotCompilable("categorical features are not compiled")
    n = int(booster.num_features())
    if booster.feature_names is not None:
        # onnxmltools reads split features as 'f<index>'; named ones are positions all the same
        # (the graph takes a plain array), so convert a copy without the names.
        booster = booster.copy()
        booster.feature_names = None
        booster.feature_types = None
    onnxmltools = _tools("onnxmltools")
    try:
        proto = onnxmltools.convert_xgboost(
            booster, initial_types=[(INPUT, _float_type("float32")([None, n]))]
        )
    except Exception as exc:  # the converter's own refusals: RuntimeError, NotImplementedError …
        raise NotCompilable(f"onnxmltools cannot convert it: {exc}") from exc
    _fold_base_values(_tree_node(proto))
    outputs = _outputs(proto)
    common: dict[str, Any] = {
        "input": INPUT,
        "input_dtype": "float32",
        "n_features": n,
        "dtype": "float32",
        **_input_rules(model, n),
    }
    if objective == "binary:logistic":
        layout = Layout(output="probabilities", column=1, **common)
    elif objective == "multi:softprob":
        layout = Layout(output="probabilities", **common)
    elif objective == "multi:softmax":
        layout = Layout(output="label", ravel=True, classifier=True, **common)
    else:
        layout = Layout(output=outputs[0], ravel=True, **common)
    if layout.output not in outputs:
        raise NotCompilable(f"the converted graph has no {layout.output!r} output ({outputs})")
    return attach_layout(proto, layout)


def _fold_base_values(node: Any) -> None:
    """Add each target's base score to the leaves of its first tree, in float32.

    XGBoost starts every row's sum at ``base_score`` and adds the trees in float32; the
    operator adds ``base_values`` after the trees, which rounds differently: up to 2e-5 apart
    on outputs in the tens. With the base inside tree 0, the operator's sum is XGBoost's.
    """
    attrs = {a.name: a for a in node.attribute}
    if "base_values" not in attrs or not any(attrs["base_values"].floats):
        return
    kind = "target" if "target_weights" in attrs else "class"
    trees, nodes = attrs[f"{kind}_treeids"].ints, attrs[f"{kind}_nodeids"].ints
    ids, weights = attrs[f"{kind}_ids"].ints, attrs[f"{kind}_weights"].floats
    leaves: dict[int, list[int]] = {}
    for tree, node_id, mode in zip(
        attrs["nodes_treeids"].ints, attrs["nodes_nodeids"].ints, attrs["nodes_modes"].strings,
        strict=True,
    ):  # fmt: skip
        if mode == b"LEAF":
            leaves.setdefault(tree, []).append(node_id)
    for target, base in enumerate(list(attrs["base_values"].floats)):
        own = [k for k in range(len(ids)) if ids[k] == target]
        if not base or not own:
            continue
        first = min(trees[k] for k in own)
        weighted = {nodes[k]: k for k in own if trees[k] == first}
        for leaf in leaves.get(first, []):
            if leaf not in weighted:  # a leaf worth 0 may have no entry: give it one
                trees.append(first)
                nodes.append(leaf)
                ids.append(target)
                weights.append(0.0)
                weighted[leaf] = len(weights) - 1
        for k in weighted.values():
            weights[k] = float(np.float32(base) + np.float32(weights[k]))
    count = len(attrs["base_values"].floats)
    del attrs["base_values"].floats[:]
    attrs["base_values"].floats.extend([0.0] * count)


def lightgbm(model: LoadedModel) -> bytes:
    """LightGBM boosters. LightGBM compares float64 features against float64 thresholds, so
    the graph does too: onnxmltools writes float32 thresholds, and they are restored to the
    booster's exact doubles (its float64 mode keeps float32 thresholds: a value between the
    two roundings went the wrong way in 1 of 4 rows snapped onto thresholds)."""
    booster = model.booster  # type: ignore[attr-defined]
    dumped = booster.dump_model()
    objective = str(dumped.get("objective", "")).split(" ")[0]
    if not objective or objective in ("custom", "none"):
        raise NotCompilable("a custom objective is not compiled")
    exact = _thresholds(dumped)  # raises NotCompilable for linear trees
    n = int(booster.num_feature())
    classifier = objective in ("binary", "multiclass", "multiclassova")
    onnxmltools = _tools("onnxmltools")
    try:
        proto = onnxmltools.convert_lightgbm(
            booster, initial_types=[(INPUT, _float_type("float32")([None, n]))], zipmap=False
        )
    except Exception as exc:
        raise NotCompilable(f"onnxmltools cannot convert it: {exc}") from exc
    _restore_double_thresholds(proto, exact)
    _restore_double_leaves(_tree_node(proto), _leaves(dumped))
    common: dict[str, Any] = {
        "input": INPUT,
        "input_dtype": "float64",
        "n_features": n,
        "dtype": "float64",
        "zero_below": _LGB_ZERO,
        **_input_rules(model, n),
    }
    if objective == "binary":
        layout = Layout(output="probabilities", column=1, **common)
    elif classifier:
        layout = Layout(output="probabilities", **common)
    else:
        layout = Layout(output=_outputs(proto)[0], ravel=True, **common)
    return attach_layout(proto, layout)


_LGB_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float): smaller magnitudes
# are left out of a row, so they read as 0


def _thresholds(dumped: dict[str, Any]) -> dict[tuple[int, int, float], set[float]]:
    """Every numeric split's float64 threshold, by (tree, feature, its float32 rounding)."""
    exact: dict[tuple[int, int, float], set[float]] = {}
    for tree in dumped["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" not in node:
                if node.get("leaf_coeff"):
                    raise NotCompilable("linear trees are not compiled")
                continue
            if node.get("decision_type") == "==":
                # LightGBM truncates a category value to an integer; the operator does not.
                raise NotCompilable("categorical splits are not compiled")
            if node.get("decision_type") == "<=":
                value = float(node["threshold"])
                key = (tree["tree_index"], node["split_feature"], _rounded(value))
                exact.setdefault(key, set()).add(value)
            stack += [node["left_child"], node["right_child"]]
    return exact


def _rounded(value: float) -> float:
    with np.errstate(over="ignore"):  # LightGBM writes 1e300 for "everything goes left"
        return float(np.float32(value))


def _leaves(dumped: dict[str, Any]) -> dict[tuple[int, float], set[float]]:
    """Every leaf's float64 value, by (tree, its float32 rounding)."""
    exact: dict[tuple[int, float], set[float]] = {}
    for tree in dumped["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                stack += [node["left_child"], node["right_child"]]
            else:
                value = float(node["leaf_value"])
                exact.setdefault((tree["tree_index"], _rounded(value)), set()).add(value)
    return exact


def _restore_double_leaves(node: Any, exact: dict[tuple[int, float], set[float]]) -> None:
    """Swap the float32 leaf weights for the booster's float64 leaf values, so the operator
    sums float64 values as LightGBM does (float32 leaves drift by up to 4e-6 over 100 trees).
    Leaves that cannot be told apart (two doubles with one rounding in a tree) keep the graph
    as it was: verification judges it."""
    onnx = require("onnx", "onnx", "compiled trees")
    attrs = {a.name: a for a in node.attribute}
    kind = "target" if "target_weights" in attrs else "class"
    restored = []
    for tree, weight in zip(
        attrs[f"{kind}_treeids"].ints, attrs[f"{kind}_weights"].floats, strict=True
    ):
        found = exact.get((tree, float(weight)), set())
        if len(found) != 1:
            return
        restored.append(next(iter(found)))
    replaced = {f"{kind}_weights", "base_values"}
    base = list(attrs["base_values"].floats) if "base_values" in attrs else []
    kept = [a for a in node.attribute if a.name not in replaced]
    del node.attribute[:]
    node.attribute.extend(kept)
    tensors = {f"{kind}_weights_as_tensor": restored}
    if base:
        tensors["base_values_as_tensor"] = base
    for name, values in tensors.items():
        array = np.asarray(values, dtype=np.float64)
        node.attribute.append(onnx.helper.make_attribute(name, onnx.numpy_helper.from_array(array)))


def _restore_double_thresholds(proto: Any, exact: dict[tuple[int, int, float], set[float]]) -> None:
    """Swap the float32 thresholds of the tree node for the booster's float64 ones.

    Each numeric split is found by (tree, feature, its float32 rounding); a rounding shared by
    two different doubles in one tree cannot be told apart, and the model is not compiled.
    """
    onnx = require("onnx", "onnx", "compiled trees")
    node = _tree_node(proto)
    attrs = {a.name: a for a in node.attribute}
    modes = [m.decode() for m in attrs["nodes_modes"].strings]
    values = []
    for tree, feature, value, mode in zip(
        attrs["nodes_treeids"].ints,
        attrs["nodes_featureids"].ints,
        attrs["nodes_values"].floats,
        modes,
        strict=True,
    ):
        if mode != "BRANCH_LEQ":
            values.append(float(value))  # leaves, and category ids (exact in float32)
            continue
        found = exact.get((tree, feature, float(value)), set())
        if len(found) != 1:
            raise NotCompilable(
                f"tree {tree}: {len(found)} float64 thresholds on feature {feature} round to "
                f"{value!r}; the converter's float32 thresholds cannot be restored"
            )
        values.append(next(iter(found)))
    kept = [a for a in node.attribute if a.name != "nodes_values"]
    del node.attribute[:]
    node.attribute.extend(kept)
    array = np.asarray(values, dtype=np.float64)
    node.attribute.append(
        onnx.helper.make_attribute("nodes_values_as_tensor", onnx.numpy_helper.from_array(array))
    )
    proto.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    for opset in proto.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 3)  # *_as_tensor attributes arrived in ml v3


# scikit-learn estimators that compile. HistGradientBoosting* compare float64 features with
# float64 thresholds, which skl2onnx writes as float32 (and its float64 mode declares a double
# output for a float operator, which onnxruntime refuses), so they stay native.
_SKLEARN = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
}


def sklearn(model: LoadedModel) -> bytes:
    """scikit-learn forests, gradient boosting and single trees (not pipelines).

    scikit-learn's trees compare float32 features with float64 thresholds; a float32 feature
    ``f`` is ``<= t`` exactly when it is ``<=`` the largest float32 not above ``t``, so each
    threshold becomes that value and the float32 graph decides as scikit-learn does. Classes
    come from the probabilities by first maximum, as ``predict`` picks them.
    """
    estimator = model.estimator  # type: ignore[attr-defined]
    name = type(estimator).__name__
    if name not in _SKLEARN:
        raise NotCompilable(f"{name} is not a tree ensemble the compiler takes")
    n = int(estimator.n_features_in_)
    skl2onnx = require("skl2onnx", "skl2onnx", "compiled trees")
    types = require("skl2onnx.common.data_types", "skl2onnx", "compiled trees")
    classes = getattr(estimator, "classes_", None)
    options = {id(estimator): {"zipmap": False}} if classes is not None else None
    try:
        proto = skl2onnx.convert_sklearn(
            estimator, initial_types=[(INPUT, types.FloatTensorType([None, n]))], options=options
        )
    except Exception as exc:
        raise NotCompilable(f"skl2onnx cannot convert it: {exc}") from exc
    _align_with_trees(proto, _sklearn_trees(estimator))
    common: dict[str, Any] = {
        "input": INPUT,
        "input_dtype": "float32",
        "n_features": n,
        **_input_rules(model, n),
    }
    if classes is not None:
        labels = np.asarray(classes)
        if labels.dtype.kind not in "biuU" or labels.ndim != 1:
            raise NotCompilable(f"class labels of type {labels.dtype} are not compiled")
        layout = Layout(
            output="probabilities",
            labels=labels.tolist(),
            dtype=str(labels.dtype),
            classifier=True,
            tie=_tie_window(proto),
            **common,
        )
    else:
        if _sum_in_float64(proto, estimator):
            common.update(input_dtype="float64", round_to_float32=True)
        layout = Layout(output=_outputs(proto)[0], ravel=True, dtype="float64", **common)
    return attach_layout(proto, layout)


def _tie_window(proto: Any) -> float:
    """How close two classes' probabilities from a classifier's graph may be and still be in
    the other order in scikit-learn's float64 arithmetic.

    The graph adds its float32 leaf weights in float32: summing ``n`` terms, each itself
    rounded, errs by at most ``n * eps * S``, where ``S`` bounds the terms' magnitudes summed
    (the base value and each tree's largest leaf, per class). A difference of two classes'
    probabilities moves by at most twice a score's error (the logistic and softmax transforms
    do not stretch it; a forest's probabilities are its sums), and the transform's own last
    bits are within ``TIE``.
    """
    node = _tree_node(proto)
    attrs = {a.name: a for a in node.attribute}
    largest: dict[tuple[int, int], float] = {}
    for tree, cls, weight in zip(
        attrs["class_treeids"].ints,
        attrs["class_ids"].ints,
        attrs["class_weights"].floats,
        strict=True,
    ):
        largest[tree, cls] = max(largest.get((tree, cls), 0.0), abs(float(weight)))
    sums: dict[int, float] = {}
    for (_, cls), weight in largest.items():
        sums[cls] = sums.get(cls, 0.0) + weight
    base = [abs(float(b)) for b in attrs["base_values"].floats] if "base_values" in attrs else []
    bound = max(
        (total + (base[cls] if cls < len(base) else 0.0) for cls, total in sums.items()),
        default=0.0,
    )
    terms = len({tree for tree, _ in largest}) + 1
    return 2 * terms * float(np.finfo(np.float32).eps) * bound + TIE


def _sklearn_trees(estimator: Any) -> list[Any]:
    if hasattr(estimator, "tree_"):
        return [estimator.tree_]
    return [e.tree_ for e in np.asarray(estimator.estimators_, dtype=object).ravel()]


def _align_with_trees(proto: Any, trees: list[Any]) -> None:
    """Round thresholds down to float32 and send missing values the way each sklearn node
    does (``missing_go_to_left``; skl2onnx leaves every node's default, which is not it)."""
    node = _tree_node(proto)
    attrs = {a.name: a for a in node.attribute}
    values = attrs["nodes_values"].floats
    missing = attrs["nodes_missing_value_tracks_true"].ints
    for k, (tree, node_id, feature) in enumerate(
        zip(
            attrs["nodes_treeids"].ints,
            attrs["nodes_nodeids"].ints,
            attrs["nodes_featureids"].ints,
            strict=True,
        )
    ):
        source = trees[tree] if tree < len(trees) else None
        if source is None or node_id >= source.node_count:
            raise NotCompilable("the converted trees do not line up with the estimator's")
        if source.children_left[node_id] < 0:
            continue  # a leaf
        if source.feature[node_id] != feature:
            raise NotCompilable("the converted trees do not line up with the estimator's")
        values[k] = _float32_at_most(float(source.threshold[node_id]))
        go_left = getattr(source, "missing_go_to_left", None)  # scikit-learn >= 1.3
        if go_left is not None:
            missing[k] = int(go_left[node_id])  # BRANCH_LEQ: true is the left child


def _sum_in_float64(proto: Any, estimator: Any) -> bool:
    """Make a regressor's graph add its trees in float64, as scikit-learn does.

    In float32, a hundred trees drift apart from scikit-learn's float64 sum by several 1e-6
    on outputs near 3. The leaves become the estimator's own float64 values (scaled as
    skl2onnx scales them: by 1/n_estimators in a forest, by the learning rate in gradient
    boosting) and the input float64, carrying float32-rounded features: the thresholds are
    already float32 values, so every split decides as before. Returns False, leaving the graph
    in float32 for verification to judge, if any leaf does not match its float32 weight.
    """
    onnx = require("onnx", "onnx", "compiled trees")
    node = _tree_node(proto)
    attrs = {a.name: a for a in node.attribute}
    trees = _sklearn_trees(estimator)
    name = type(estimator).__name__
    scale = 1.0
    if name.startswith(("RandomForest", "ExtraTrees")):
        scale = 1.0 / len(trees)
    elif name.startswith("GradientBoosting"):
        scale = float(estimator.learning_rate)
    exact = []
    for tree, node_id, target, weight in zip(
        attrs["target_treeids"].ints,
        attrs["target_nodeids"].ints,
        attrs["target_ids"].ints,
        attrs["target_weights"].floats,
        strict=True,
    ):
        value = float(trees[tree].value[node_id, target, 0]) * scale
        if _rounded(value) != float(weight):
            return False
        exact.append(value)
    tensors: dict[str, list[float]] = {
        "target_weights_as_tensor": exact,
        "nodes_values_as_tensor": [float(v) for v in attrs["nodes_values"].floats],
    }
    if "base_values" in attrs:
        try:  # the constant first guess of gradient boosting, in float64
            zeros = np.zeros((1, int(estimator.n_features_in_)), dtype=np.float32)
            base = np.asarray(estimator._raw_predict_init(zeros))
        except Exception:
            return False
        base = base.ravel()
        if [_rounded(b) for b in base] != [float(b) for b in attrs["base_values"].floats]:
            return False
        tensors["base_values_as_tensor"] = base.tolist()
    replaced = {"target_weights", "nodes_values", "base_values"}
    kept = [a for a in node.attribute if a.name not in replaced]
    del node.attribute[:]
    node.attribute.extend(kept)
    for key, values in tensors.items():
        array = np.asarray(values, dtype=np.float64)
        node.attribute.append(onnx.helper.make_attribute(key, onnx.numpy_helper.from_array(array)))
    proto.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    for opset in proto.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, 3)
    return True


def _float32_at_most(value: float) -> float:
    rounded = np.float32(value)
    if float(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


CONVERTERS: dict[str, Converter] = {"xgboost": xgboost, "lightgbm": lightgbm, "sklearn": sklearn}


#: What our own conversion writes; raised when a cached graph or verdict from an earlier one
#: would answer otherwise (2: a classifier's layout carries its ``tie`` window).
CONVERSION = 2


@functools.cache
def versions() -> str:
    """Our conversion's, the converters' and the libraries' versions a cached conversion
    depends on."""
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"conversion{CONVERSION}"]
    dists = (
        "onnxmltools",
        "skl2onnx",
        "onnx",
        "onnxruntime",
        "xgboost",
        "lightgbm",
        "scikit-learn",
    )
    for dist in dists:
        try:
            parts.append(f"{dist}{version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}-none")
    return "_".join(parts)
