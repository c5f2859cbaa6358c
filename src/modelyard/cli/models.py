"""``modelyard models …``: the registry's read commands, and the sub-app that holds them all.

Each command parses its arguments, makes one call into :class:`RegistryService` and renders the
result; every rule (names, references, protection of aliased versions) lives in the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli import models_change
from modelyard.cli.context import registry
from modelyard.cli.options import pairs, read_json_object
from modelyard.cli.render import (
    console,
    models_table,
    print_json,
    version_detail,
    version_dict,
    versions_table,
)
from modelyard.domain import Trust

app = typer.Typer(
    name="models",
    help="Register, inspect and manage model versions.",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
RefArg = Annotated[
    str, typer.Argument(metavar="REF", help="NAME (latest), NAME:VERSION or NAME@ALIAS.")
]
FLAVORS = "xgboost, lightgbm, sklearn, onnx, pyfunc (or one a plug-in adds)"


@app.command("register")
def register(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Model name; created on its first version.")
    ],
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="Model file or folder in the flavor's format.")
    ],
    flavor: Annotated[
        str, typer.Option("--flavor", "-f", metavar="FLAVOR", help=f"Model format: {FLAVORS}.")
    ],
    input_example: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="CSV/JSON/Parquet rows the model accepts: checked, stored, used to "
            "infer the signature.",
        ),
    ] = None,
    signature: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json", help="JSON file with an explicit signature (wins over inference)."
        ),
    ] = None,
    alias: Annotated[
        list[str] | None, typer.Option(metavar="ALIAS", help="Point this alias at the new version.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="Training parameter.")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="Numeric metric.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE", help="Version tag.")] = None,
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="What this version is.")
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle", help="Accept a pickle/joblib file; loading it can run arbitrary code."
        ),
    ] = False,
    trust_code: Annotated[
        bool,
        typer.Option("--trust-code", help="Accept Python code with the model (pyfunc, --handler)."),
    ] = False,
    handler: Annotated[
        Path | None,
        typer.Option(
            help="Python file with input_fn(body, content_type) and/or output_fn(predictions, "
            "accept), run by the server around predict (needs --trust-code)."
        ),
    ] = None,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(metavar="TYPE", help="Extra type a skops file may contain (repeatable)."),
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Register a model file as the next version of NAME."""
    params, metrics, tags = pairs(param, "--param"), pairs(metric, "--metric"), pairs(tag, "--tag")
    explicit = read_json_object(signature, "signature") if signature is not None else None
    version = registry().register(
        name,
        path,
        flavor=flavor,
        input_example=input_example,
        signature=explicit,
        aliases=tuple(alias or ()),
        params=params,
        metrics=metrics,
        tags=tags,
        description=description,
        trust=Trust(pickle=trust_pickle, user_code=trust_code, types=tuple(trust_type or ())),
        handler=handler,
    )
    if json_:
        print_json(version_dict(version))
        return
    extra = f", aliases {', '.join(version.aliases)}" if version.aliases else ""
    digest = version.artifact_digest[:12]
    console.print(f"Registered {version.ref} ({version.flavor}, sha256 {digest}…{extra})")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="What the model is for.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE", help="Model tag.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Create an empty model (versions are added by 'register')."""
    model = registry().create_model(name, description, pairs(tag, "--tag"))
    if json_:
        print_json(model)
    else:
        console.print(f"Created model {model.name}")


@app.command("list")
def list_models(json_: JsonFlag = False) -> None:
    """List every model with its latest version and aliases."""
    models = registry().list_models()
    if json_:
        print_json(models)
    elif not models:
        console.print("No models yet; add one with 'modelyard models register'.")
    else:
        console.print(models_table(models))


@app.command("show")
def show(ref: RefArg, json_: JsonFlag = False) -> None:
    """Show one version: flavor, status, aliases, params, metrics, signature, digest…"""
    version = registry().get_version(ref)
    if json_:
        print_json(version_dict(version))
    else:
        console.print(version_detail(version))


@app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    json_: JsonFlag = False,
) -> None:
    """List the versions of a model, oldest first."""
    found = registry().list_versions(name)
    if json_:
        print_json([version_dict(v) for v in found])
    else:
        console.print(versions_table(name, found))


@app.command("verify")
def verify(ref: RefArg, json_: JsonFlag = False) -> None:
    """Fetch, checksum and load a version, then predict on its stored input example."""
    version, rows = registry().verify(ref)
    if json_:
        print_json(
            {
                "ref": version.ref,
                "digest": version.artifact_digest,
                "ok": True,
                "predicted_rows": rows,
            }
        )
        return
    checked = f"predicted {rows} example rows" if rows is not None else "no input example stored"
    console.print(
        f"OK {version.ref}: sha256 {version.artifact_digest[:12]}… verified, loaded, {checked}"
    )


for _name, _command in models_change.COMMANDS.items():
    app.command(_name)(_command)
