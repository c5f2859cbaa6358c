"""The Prometheus metrics a server exposes at ``GET /metrics``: names, types, labels, buckets.

Every series carries ``endpoint``, ``variant`` and ``model_version`` (the number of the model
version that answered) unless said otherwise. Values are the sum over the server's workers
(see ``metrics_files.py``); gauges say how workers combine.

A shadow variant's copies of requests (``shadow.py``) count as requests of its own, under its
variant name and the original request's protocol: their duration runs from when the copy
starts to the shadow's prediction, and they have no body sizes.

=============================================  =========  ==================================
name                                           type       extra labels / meaning
=============================================  =========  ==================================
``modelyard_requests_total``                   counter    ``protocol``
``modelyard_request_errors_total``             counter    ``protocol``, ``status`` (HTTP
                                                          status of the error class),
                                                          ``code`` (modelyard error code)
``modelyard_request_duration_seconds``         histogram  ``protocol``; from choosing the
                                                          variant to the encoded answer
``modelyard_request_size_bytes``               histogram  request body
``modelyard_response_size_bytes``              histogram  response body
``modelyard_inflight_requests``                gauge      sampled each drain; sum of workers
``modelyard_batch_rows``                       histogram  rows per model call
``modelyard_batch_requests``                   histogram  requests per model call
``modelyard_model_load_seconds``               gauge      load and warm-up; slowest worker
``modelyard_request_rows``                     histogram  input rows per request
``modelyard_input_values_total``               counter    ``feature``: present values
``modelyard_input_missing_values_total``       counter    ``feature``: NaN / null values
``modelyard_input_value``                      summary    ``feature``: present numeric values
                                                          (``_count``, ``_sum``; all workers,
                                                          dead ones too; a redacted feature
                                                          has none); mean = rate(_sum) /
                                                          rate(_count)
``modelyard_input_value_min`` / ``_max``       gauge      ``feature``: extremes since start
``modelyard_input_text_length_characters``     histogram  ``feature``: text columns
``modelyard_output_values_total``              counter    ``output``: non-missing predictions
``modelyard_output_missing_values_total``      counter    ``output``: NaN / null predictions
``modelyard_prediction``                       histogram  ``output``: numeric predictions
``modelyard_predicted_class_total``            counter    ``output``, ``class``: label
                                                          predictions of each output
``modelyard_repeated_requests_total``          counter    requests already answered by the
                                                          same worker within its repeat window
``modelyard_process_resident_memory_bytes``    gauge      no labels; sum of live workers
``modelyard_worker_resident_memory_bytes``     gauge      ``pid``; one series per live worker
``modelyard_process_cpu_seconds_total``        counter    no labels; all workers, dead too
``modelyard_workers``                          gauge      no labels; live workers
``modelyard_metrics_dropped_total``            counter    no labels; request records lost
                                                          to a full buffer (should stay 0)
``modelyard_metrics_drain_cpu_seconds_total``  counter    no labels; what these metrics cost
``modelyard_capture_rows_total``               counter    ``outcome`` only: ``captured``
                                                          (queued), ``dropped`` (queue full),
                                                          ``written``, ``failed`` (lost to a
                                                          destination that failed)
``modelyard_capture_files_total``              counter    ``outcome`` only: ``written``,
                                                          ``failed``
``modelyard_capture_queue_rows``               gauge      no labels; captured rows waiting
                                                          to be written, sum of live workers
``modelyard_shadow_dropped_total``             counter    copies of requests a shadow variant
                                                          did not get (the queue was full)
``modelyard_shadow_queue_copies``              gauge      no labels; copies waiting for their
                                                          shadow, sum of live workers
=============================================  =========  ==================================
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.domain.metric_stats import LATENCY_BOUNDS_S

VARIANT = ("endpoint", "variant", "model_version")


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One Prometheus metric family.

    ``mode`` is how a gauge combines over workers (prometheus_client's multiprocess modes:
    ``livesum``, ``min``, ``max``, ``sum``, ``liveall`` …); ``buckets`` a histogram's finite
    upper bounds (``+Inf`` is added).
    """

    name: str
    help: str
    kind: str  # counter | gauge | histogram | summary (no quantiles: _count and _sum)
    labels: tuple[str, ...] = VARIANT
    mode: str = ""
    buckets: tuple[float, ...] = ()

    @property
    def sample(self) -> str:
        """The name of its samples (``_total`` for counters)."""
        return self.name + "_total" if self.kind == "counter" else self.name

    @property
    def family(self) -> str:
        """The family name in the multiprocess files (a counter's without ``_total``)."""
        return self.name


def _counter(name: str, help_: str, labels: tuple[str, ...] = VARIANT) -> MetricDef:
    assert not name.endswith("_total")
    return MetricDef(name, help_, "counter", labels)


def _pow(start: float, factor: float, count: int) -> tuple[float, ...]:
    return tuple(start * factor**i for i in range(count))


ROW_BUCKETS = (1.0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
SIZE_BUCKETS = _pow(64.0, 4.0, 10)  # 64 B .. 16 MiB
TEXT_BUCKETS = (1.0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000)
#: Fixed for every model (a scrape must not depend on the data): fine around [0, 1] for
#: probabilities and scores, by decades beyond for regression outputs.
PREDICTION_BUCKETS = (
    -1e6,
    -1e4,
    -1e3,
    -100.0,
    -10.0,
    -1.0,
    0.0,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
    2.0,
    5.0,
    10.0,
    100.0,
    1e3,
    1e4,
    1e6,
)

PROTOCOL = (*VARIANT, "protocol")
FEATURE = (*VARIANT, "feature")
OUTPUT = (*VARIANT, "output")

REQUESTS = _counter("modelyard_requests", "Requests answered, any status.", PROTOCOL)
ERRORS = _counter(
    "modelyard_request_errors",
    "Requests answered with an error, by status and error code.",
    (*PROTOCOL, "status", "code"),
)
DURATION = MetricDef(
    "modelyard_request_duration_seconds",
    "Time from choosing the variant to the encoded answer.",
    "histogram",
    PROTOCOL,
    buckets=LATENCY_BOUNDS_S,
)
REQUEST_SIZE = MetricDef(
    "modelyard_request_size_bytes", "Request body size.", "histogram", buckets=SIZE_BUCKETS
)
RESPONSE_SIZE = MetricDef(
    "modelyard_response_size_bytes", "Response body size.", "histogram", buckets=SIZE_BUCKETS
)
INFLIGHT = MetricDef(
    "modelyard_inflight_requests", "Requests in flight (sampled).", "gauge", mode="livesum"
)
BATCH_ROWS = MetricDef(
    "modelyard_batch_rows", "Rows per model call.", "histogram", buckets=ROW_BUCKETS
)
BATCH_REQUESTS = MetricDef(
    "modelyard_batch_requests", "Requests per model call.", "histogram", buckets=ROW_BUCKETS
)
LOAD = MetricDef(
    "modelyard_model_load_seconds",
    "Time to fetch, load and warm the model (slowest worker).",
    "gauge",
    mode="max",
)
REQUEST_ROWS = MetricDef(
    "modelyard_request_rows", "Input rows per request.", "histogram", buckets=ROW_BUCKETS
)
INPUT_VALUES = _counter("modelyard_input_values", "Present input values.", FEATURE)
INPUT_MISSING = _counter("modelyard_input_missing_values", "Missing input values.", FEATURE)
INPUT_VALUE = MetricDef(
    "modelyard_input_value",
    "Present numeric input values: their count and sum.",
    "summary",
    FEATURE,
)
INPUT_MIN = MetricDef(
    "modelyard_input_value_min", "Smallest input value seen.", "gauge", FEATURE, mode="min"
)
INPUT_MAX = MetricDef(
    "modelyard_input_value_max", "Largest input value seen.", "gauge", FEATURE, mode="max"
)
TEXT_LENGTH = MetricDef(
    "modelyard_input_text_length_characters",
    "Length of text input values.",
    "histogram",
    FEATURE,
    buckets=TEXT_BUCKETS,
)
OUTPUT_VALUES = _counter("modelyard_output_values", "Non-missing predictions.", OUTPUT)
OUTPUT_MISSING = _counter(
    "modelyard_output_missing_values", "Predictions that are NaN or null.", OUTPUT
)
PREDICTION = MetricDef(
    "modelyard_prediction",
    "Numeric predictions.",
    "histogram",
    OUTPUT,
    buckets=PREDICTION_BUCKETS,
)
CLASSES = _counter(
    "modelyard_predicted_class", "Label predictions by output and class.", (*OUTPUT, "class")
)
REPEATED = _counter(
    "modelyard_repeated_requests", "Requests whose rows the worker answered recently."
)
MEMORY = MetricDef(
    "modelyard_process_resident_memory_bytes",
    "Resident memory of the live workers, summed.",
    "gauge",
    (),
    mode="livesum",
)
WORKER_MEMORY = MetricDef(
    "modelyard_worker_resident_memory_bytes",
    "Resident memory of each live worker.",
    "gauge",
    (),
    mode="liveall",
)
CPU = _counter("modelyard_process_cpu_seconds", "CPU time of the workers, dead ones too.", ())
WORKERS = MetricDef("modelyard_workers", "Live worker processes.", "gauge", (), mode="livesum")
DRAIN_CPU = _counter(
    "modelyard_metrics_drain_cpu_seconds", "CPU time the workers spent updating these metrics.", ()
)
DROPPED = _counter(
    "modelyard_metrics_dropped", "Request records dropped because the buffer was full.", ()
)
CAPTURE_ROWS = _counter(
    "modelyard_capture_rows",
    "Captured input rows by outcome: captured (queued), dropped (the queue was full), "
    "written, failed (lost to a destination that failed).",
    ("outcome",),
)
CAPTURE_FILES = _counter(
    "modelyard_capture_files", "Captured-rows files by outcome: written, failed.", ("outcome",)
)
CAPTURE_QUEUE = MetricDef(
    "modelyard_capture_queue_rows",
    "Captured rows waiting to be written, summed over the live workers.",
    "gauge",
    (),
    mode="livesum",
)
SHADOW_DROPPED = _counter(
    "modelyard_shadow_dropped",
    "Copies of requests a shadow variant did not get: its queue was full (or the worker "
    "was stopping).",
)
SHADOW_QUEUE = MetricDef(
    "modelyard_shadow_queue_copies",
    "Copies of requests waiting for their shadow variant, summed over the live workers.",
    "gauge",
    (),
    mode="livesum",
)
