"""``Estimator``: training jobs from Python, in the scikit-learn and SageMaker SDK manner.

    from modelyard import Estimator
    est = Estimator("xgboost", model_name="churn", hyperparameters={"max_depth": 4})
    est.fit(train="data/train.csv", validation="data/val.csv")
    est.model_version_.ref, est.metrics_
    predictor = est.deploy(endpoint_name="churn-api")   # a Predictor, once a server serves it

A thin adapter over ``TrainingService``: the job runs in its own process exactly as
``modelyard train`` runs it; ``fit`` waits for it and returns ``self``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.domain import Job, ModelVersion, Trust
from modelyard.errors import InvalidInput
from modelyard.sdk_instances import sdk_instances
from modelyard.training_job import TrainingJob, shows_logs

if TYPE_CHECKING:
    from modelyard.bootstrap import Platform
    from modelyard.data_capture import DataCaptureConfig
    from modelyard.predictor import Predictor
    from modelyard.serializers import BaseDeserializer, BaseSerializer
    from modelyard.services.registry import PackagedModel

Data = str | os.PathLike[str]
MetricDefinitions = Sequence[str | Mapping[str, str]]
Inputs = Data | Mapping[str, Data]
_CHANNELS = ("train", "validation")

_PARAMS = (
    "algorithm",
    "script",
    "model_name",
    "hyperparameters",
    "target",
    "flavor",
    "metric_definitions",
    "aliases",
    "trust_pickle",
    "trust_code",
)


class Estimator:
    """A training request; ``fit`` runs it as a job and registers the model.

    Learned attributes (set by ``fit``): ``job_``, ``model_version_``, ``metrics_``.
    """

    def __init__(
        self,
        algorithm: str | None = None,
        *,
        script: str | None = None,
        model_name: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        target: str | None = None,
        flavor: str | None = None,
        metric_definitions: MetricDefinitions = (),
        aliases: tuple[str, ...] = (),
        trust_pickle: bool = False,
        trust_code: bool = False,
        platform: Platform | None = None,
        entry_point: str | os.PathLike[str] | None = None,
        source_dir: str | os.PathLike[str] | None = None,
        role: str | None = None,
        instance_count: int | None = None,
        instance_type: str | None = None,
    ) -> None:
        """Our parameters (see the class), and the SageMaker SDK's script-mode ones, so that
        ``Estimator(entry_point="train.py", source_dir="src", role=..., instance_count=1,
        instance_type="ml.m5.xlarge", hyperparameters=...)`` runs as it is.

        Args:
            entry_point: The SDK's name for ``script`` (not with it).
            source_dir: The local folder ``entry_point`` (a file name) is in; the script's
                folder is what the job copies and runs in, as the SDK uploads it.
            role: Taken and not used: a job here runs as the worker's user, not an IAM role.
            instance_count, instance_type: The SDK's training machines: the script runs
                once, on the worker's machine, so a count above 1 or a cloud instance type is
                taken with a warning saying so (``"local"`` and ``"local_cpu"``, the SDK's
                local mode, without).

        Raises:
            InvalidInput: both ``entry_point`` and ``script``; ``source_dir`` without an
                ``entry_point``, not a local folder, or with an ``entry_point`` that is not a
                file name; a count below 1 or an empty instance type.
        """
        sdk_instances(
            instance_count,
            instance_type,
            count_name="instance_count",
            count_unused="the script runs once, on one host (SM_HOSTS is ['algo-1'])",
            type_unused="the job runs on the machine of its worker process",
            stacklevel=3,
        )
        self.algorithm = algorithm
        self.script = _sdk_script(script, entry_point, source_dir)
        self.role = role
        self.instance_count = instance_count  # read as the SDK's are; not used (see above)
        self.instance_type = instance_type
        self.model_name = model_name
        self.hyperparameters = hyperparameters
        self.target = target
        self.flavor = flavor
        self.metric_definitions = metric_definitions
        self.aliases = aliases
        self.trust_pickle = trust_pickle
        self.trust_code = trust_code
        self._platform = platform
        self.latest_training_job: TrainingJob | None = None

    @classmethod
    def attach(
        cls,
        training_job_name: str,
        sagemaker_session: Platform | None = None,
        model_channel_name: str = "model",
    ) -> Estimator:
        """An estimator for an existing training job, as the SageMaker SDK's
        ``Estimator.attach``: its parameters are the job's (algorithm or script, model name,
        hyperparameters, target, flavor, metric definitions, aliases, trust), and once the job
        has completed, its learned attributes are set, so ``deploy()`` serves the model the
        job registered (``model_data`` is its reference). As in the SDK, a job still running
        is waited for, without its log (``logs()`` shows it).

        Args:
            training_job_name: The job's name (a tuning trial's too).
            sagemaker_session: The modelyard :class:`~modelyard.bootstrap.Platform` to use
                (default: built from the settings); the SDK's session, where the job lives.
            model_channel_name: Taken and not used: the SDK reads a pre-trained model from
                the job's channel of that name, and ignores it when the job has none, as a
                modelyard job never has.

        Raises:
            JobNotFound: no job has that name. InvalidInput: it is a tuning or batch job.
            JobFailed: the job failed or was stopped (``job_`` holds it).
        """
        estimator = cls(platform=platform_of(sagemaker_session))
        platform = estimator._get_platform()
        job = platform.training.get(training_job_name)
        estimator.set_params(**params_of(job))
        estimator.latest_training_job = TrainingJob(platform, job.name, estimator._ended)
        estimator.latest_training_job.wait(logs="None")
        return estimator

    @property
    def model_data(self) -> str:
        """The registered model's reference (``churn:3``), where the SageMaker SDK's
        ``model_data`` is the model's S3 location: what ``modelyard.deploy`` and
        ``Model(model_data=...)`` users pass on.

        Raises:
            ValueError: no model registered yet.
        """
        return self._fitted_version().ref

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> Estimator:
        """Change constructor parameters; returns self."""
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValueError(f"unknown parameter {name!r}; known: {', '.join(_PARAMS)}")
            setattr(self, name, value)
        return self

    def _get_platform(self) -> Platform:
        if self._platform is None:
            from modelyard.bootstrap import build

            self._platform = build()
        return self._platform

    def fit(
        self,
        train: Inputs | None = None,
        validation: Data | None = None,
        *,
        inputs: Inputs | None = None,
        wait: bool = True,
        logs: bool | str = "All",
        job_name: str | None = None,
    ) -> Estimator:
        """Submit the training job on ``train`` (and ``validation``) and, by default, wait.

        ``train`` (or ``inputs``, the SageMaker SDK's name) is the training data, or the
        SDK's dict of channels: ``fit({"train": ..., "validation": ...})``. As in the SDK,
        ``logs`` (``"All"``, ``"Training"`` or True; ``"None"``, ``"Rules"`` or False) says
        whether to print the job's log while waiting, and ``job_name`` names the job
        (default: the model's name, a timestamp and a random suffix).

        Raises:
            InvalidInput (bad request, nothing submitted); AlreadyExists (a job has that
            name); JobFailed when the job fails.
        """
        train, validation = channels(train, validation, inputs)
        show_logs = shows_logs(logs)
        platform = self._get_platform()
        name = self.model_name or self.algorithm or "model"
        job = platform.training.submit(
            name,
            train=train,
            validation=validation,
            algorithm=self.algorithm,
            script=self.script,
            target=self.target,
            hyperparameters=sdk_hyperparameters(self.hyperparameters, self.script),
            flavor=self.flavor,
            metric_definitions=metric_definition_texts(self.metric_definitions),
            aliases=self.aliases,
            trust=Trust(pickle=self.trust_pickle, user_code=self.trust_code),
            job_name=job_name,
        )
        self.latest_training_job = TrainingJob(platform, job.name, self._ended)
        if wait:
            self.latest_training_job.wait(logs=show_logs)
        else:
            self._learn(job)
        return self

    def logs(self) -> None:
        """Print the log of the latest training job as it grows, until the job ends, as the
        SageMaker SDK's ``Estimator.logs``; the estimator then learns its model.

        Raises:
            ValueError: no training job yet (``fit`` or ``attach`` first). JobFailed: the
            job failed or was stopped.
        """
        self._latest_job().wait(logs="All")

    def _latest_job(self) -> TrainingJob:
        if self.latest_training_job is None:
            raise ValueError("Estimator is not associated with a training job: fit() first")
        return self.latest_training_job

    def _ended(self, job: Job) -> None:
        """Learn from a job ``wait`` saw end, if it is still the latest (not one an earlier
        ``fit(wait=False)`` started)."""
        if self.latest_training_job is not None and self.latest_training_job.name == job.name:
            self._learn(job)

    def _learn(self, job: Job) -> None:
        self.job_ = job
        from modelyard.services.jobs import failure_of

        failed = failure_of(job)
        if failed is not None:
            raise failed
        version: ModelVersion | None = self._get_platform().training.registered_version(job)
        self.model_version_ = version
        self.metrics_ = dict(job.metrics)

    def deploy(
        self,
        endpoint_name: str | None = None,
        *,
        variant_name: str = "AllTraffic",
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        wait: bool = True,
        timeout: float = 60.0,
        serving_url: str | None = None,
        predictor: str = "auto",
        capture: float = 0.0,
        capture_redact: Sequence[str] = (),
        data_capture_config: DataCaptureConfig | None = None,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
    ) -> Predictor:
        """Serve the registered model at ``endpoint_name`` (created, or updated if it exists;
        default: the model's name) and return a :class:`~modelyard.predictor.Predictor` for it,
        as the SageMaker SDK's ``Estimator.deploy`` does. ``predictor`` (``auto``, ``native``
        or ``compiled``) chooses how the server runs the model, and ``capture`` (a percentage)
        with ``capture_redact`` which requests are recorded (or the SDK's
        ``data_capture_config``), as in :func:`modelyard.predictor.deploy`, which also says
        what the SDK's ``initial_instance_count`` and ``instance_type`` mean here.

        Raises:
            ValueError: ``fit`` has not registered a model yet. Otherwise what
            :func:`modelyard.predictor.deploy` raises: InvalidInput (a ``predictor`` the model
            cannot have), ModelLoadFailed, NoServerRunning (no ``modelyard serve`` reports to
            the store), ModelNotReady (not served in time).
        """
        version = self._fitted_version()
        from modelyard.predictor import deploy

        return deploy(
            version,
            endpoint_name,
            variant_name=variant_name,
            serializer=serializer,
            deserializer=deserializer,
            wait=wait,
            timeout=timeout,
            serving_url=serving_url,
            platform=self._get_platform(),
            predictor=predictor,
            capture=capture,
            capture_redact=capture_redact,
            data_capture_config=data_capture_config,
            initial_instance_count=initial_instance_count,
            instance_type=instance_type,
        )

    def _fitted_version(self) -> ModelVersion:
        version = getattr(self, "model_version_", None)
        if version is None:
            job: Job | None = getattr(self, "job_", None)
            if job is not None and job.parent is not None:
                tuning = self._get_platform().jobs.get(job.parent)
                best = (tuning.artifact or {}).get("best_trial")
                raise ValueError(
                    f"training job {job.name!r} registered no model: only the best trial of "
                    f"tuning job {job.parent!r} has one, once that job ends "
                    + (f"(its best: {best!r})" if best else f"({tuning.status.value} now)")
                )
            raise ValueError("fit() has not registered a model yet")
        return version

    def load(self) -> PackagedModel:
        """The registered model, loaded (call ``unload()`` when done)."""
        return self._get_platform().registry.load(self._fitted_version().ref)


def params_of(job: Job) -> dict[str, Any]:
    """The estimator parameters of a training or tuning job's request (``attach``)."""
    spec = job.spec
    trust = Trust.from_dict(spec.get("trust"))
    script = spec.get("script")
    return {
        "algorithm": spec.get("algorithm"),
        "script": script,
        "model_name": job.model_name,
        "hyperparameters": _given_hyperparameters(job.hyperparameters, script),
        "target": spec.get("target"),
        "flavor": spec.get("flavor"),
        "metric_definitions": list(spec.get("metric_definitions") or ()),
        "aliases": tuple(spec.get("aliases") or ()),
        "trust_pickle": trust.pickle,
        "trust_code": trust.user_code,
    }


def _sdk_script(
    script: str | None,
    entry_point: str | os.PathLike[str] | None,
    source_dir: str | os.PathLike[str] | None,
) -> str | None:
    """The script to run, given as ours or as the SageMaker SDK's ``entry_point`` (in
    ``source_dir``).

    Raises:
        InvalidInput: as :class:`Estimator` says.
    """
    if entry_point is not None and script is not None:
        raise InvalidInput("give entry_point or script (the same thing), not both")
    if source_dir is None:
        return script if entry_point is None else os.fspath(entry_point)
    if entry_point is None:
        raise InvalidInput("source_dir goes with an entry_point: the script's file name in it")
    if not isinstance(source_dir, str | os.PathLike) or "://" in os.fspath(source_dir):
        raise InvalidInput(
            f"source_dir must be a local folder, got {source_dir!r}: copy the code here first"
        )
    name = os.fspath(entry_point)
    if os.path.basename(name) != name:
        raise InvalidInput(
            f"entry_point {name!r} must be a file name in source_dir: the job copies "
            f"the script's own folder and runs it there; give that folder as source_dir"
        )
    if not os.path.isdir(source_dir):  # the SDK's sourcedir.tar.gz too: unpack it first
        raise InvalidInput(f"source_dir {os.fspath(source_dir)!r} is not a folder")
    return os.path.join(source_dir, name)


def platform_of(session: object) -> Platform | None:
    """The platform given as ``sagemaker_session``; a SageMaker SDK session is not one."""
    from modelyard.bootstrap import Platform

    if session is None or isinstance(session, Platform):
        return session
    raise InvalidInput(
        "sagemaker_session must be a modelyard Platform (modelyard.open_platform()) or None, "
        f"got {type(session).__name__}"
    )


def _given_hyperparameters(recorded: Mapping[str, str], script: str | None) -> dict[str, Any]:
    """A job's hyperparameters as an estimator takes them: a built-in algorithm's as
    recorded, a script's decoded from the JSON the Python API sent (text that is not JSON,
    such as the CLI's ``--hp`` sends, stays text), as the SDK's attach decodes them."""
    if script is None:
        return dict(recorded)
    decoded: dict[str, Any] = {}
    for name, text in recorded.items():
        try:
            decoded[name] = json.loads(text)
        except ValueError:
            decoded[name] = text
    return decoded


def sdk_hyperparameters(
    given: Mapping[str, Any] | None, script: str | None
) -> dict[str, Any] | None:
    """Hyperparameters as the SageMaker SDK sends an estimator's: a script-mode estimator's
    each JSON-encoded, strings too (``"123"`` travels as ``'"123"'``, so the script reads the
    string back, not the number the toolkit would decode from bare ``123``); a built-in
    algorithm's as given (the services record them as text)."""
    if given is None or script is None:
        return None if given is None else dict(given)
    return {name: sdk_json(value) for name, value in given.items()}


def sdk_json(value: object) -> str:
    """A script-mode hyperparameter value as the SageMaker SDK sends it: JSON (numpy values as
    the numbers they hold).

    Raises:
        InvalidInput: a value JSON cannot hold.
    """
    return json.dumps(value, default=_plain)


def _plain(value: object) -> object:
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays: the numbers they hold
    if tolist is None:
        raise InvalidInput(
            f"hyperparameter value {value!r} ({type(value).__name__}) cannot be sent to a "
            "script: give a string, number, boolean, list or dict"
        )
    return tolist()


def channels(
    train: Inputs | None, validation: Data | None, inputs: Inputs | None
) -> tuple[str, str | None]:
    """The train and validation data of a ``fit`` call, given as ours or as the SageMaker SDK's
    ``inputs``: one path or URL (the training data) or a dict of channel name to one.

    Raises:
        InvalidInput: no training data, both ``train`` and ``inputs``, a channel other than
            train and validation, validation given twice, or data that is not a path or URL.
    """
    if train is not None and inputs is not None:
        raise InvalidInput("give the training data as inputs or train, not both")
    given = train if inputs is None else inputs
    if given is None:
        raise InvalidInput("give the training data: train='data/train.csv' (or inputs=)")
    named = given if isinstance(given, Mapping) else {"train": given}
    unknown = sorted(str(name) for name in named if name not in _CHANNELS)
    if unknown:
        raise InvalidInput(
            f"a training job takes the channels train and validation; got channel "
            f"{', '.join(repr(n) for n in unknown)}"
        )
    if "train" not in named:
        raise InvalidInput("the inputs have no 'train' channel: the training data")
    if "validation" in named and validation is not None:
        raise InvalidInput("validation twice: in the inputs and as validation=; give it once")
    val = named.get("validation", validation)
    return _data("train", named["train"]), None if val is None else _data("validation", val)


def metric_definition_texts(given: MetricDefinitions) -> tuple[str, ...]:
    """Metric definitions as the services take them (``NAME=REGEX``), from ours or from the
    SageMaker SDK's ``[{"Name": ..., "Regex": ...}]``.

    Raises:
        InvalidInput: not a list, an entry neither a string nor a dict of exactly ``Name``
            and ``Regex`` strings, or a name holding ``=``.
    """
    if isinstance(given, str | Mapping):
        raise InvalidInput(
            f"metric_definitions must be a list of definitions, got {type(given).__name__} "
            f"{given!r}"
        )
    texts = []
    for definition in given:
        if isinstance(definition, str):
            texts.append(definition)
            continue
        if (
            not isinstance(definition, Mapping)
            or set(definition) != {"Name", "Regex"}
            or not all(isinstance(v, str) for v in definition.values())
        ):
            raise InvalidInput(
                "a metric definition is 'NAME=REGEX' or the SageMaker SDK's "
                f"{{'Name': NAME, 'Regex': REGEX}} (strings 'Name' and 'Regex'), got "
                f"{type(definition).__name__} {definition!r}"
            )
        if "=" in definition["Name"]:
            raise InvalidInput(
                f"metric definition {definition['Name']!r}: '=' in the name is not allowed"
            )
        texts.append(f"{definition['Name']}={definition['Regex']}")
    return tuple(texts)


def _data(channel: str, value: object) -> str:
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise InvalidInput(
        f"the {channel} data must be a path or URL, got {type(value).__name__} {value!r}"
    )
